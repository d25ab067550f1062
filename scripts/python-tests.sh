#!/usr/bin/env bash
# Python tests: downstream use of methvb's Parquet output (pyarrow, DuckDB) and the Snakemake
# workflow of pipelines/. Creates .venv (if missing) with the pinned packages of
# tests/python/requirements.txt, then runs pytest on tests/python against the methvb binary
# $METHVB (default: target/debug/methvb, which `cargo build -p methvb-cli` brings up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

venv="$repo/.venv"
req="$repo/tests/python/requirements.txt"
stamp="$venv/.methvb-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --progress-bar off -r "$req"
    echo "$want" > "$stamp"
fi

if [[ -z "${METHVB:-}" ]]; then
    # The binary of this checkout, rebuilt if stale (a no-op after the caller's cargo build).
    cargo build -p methvb-cli --locked --quiet
    export METHVB="${CARGO_TARGET_DIR:-$repo/target}/debug/methvb"
elif [[ ! -x "$METHVB" ]]; then
    echo "python-tests: METHVB=$METHVB is not an executable" >&2
    exit 1
fi
export METHVB

# No .pytest_cache or __pycache__ in the checkout.
export PYTHONDONTWRITEBYTECODE=1
status=0
"$venv/bin/python" -m pytest "$repo/tests/python" -q -s -p no:cacheprovider "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "python-tests: pytest collected no tests" >&2
    exit 1
fi
exit $status
