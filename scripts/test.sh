#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of the workspace.
# Tests read the real public data in ../shared/data (beside this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/python-tests.sh
