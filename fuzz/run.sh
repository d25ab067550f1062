#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and prints the executions count of each.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, all targets)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain for the sanitizer flags;
# on a stable-only machine RUSTC_BOOTSTRAP=1 lets stable rustc accept them. Crashes are written to
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/ (both git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(line_parsers sample_reader sample_sheet bed_regions)
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    tc=(+nightly)
else
    tc=()
    export RUSTC_BOOTSTRAP=1
fi
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    # Seed the corpus with the hand-written bad inputs (small plain-text files only).
    case "$t" in
        line_parsers|sample_reader) cp ../test-data/bad/*.txt ../test-data/bad/*.bed ../test-data/bad/*.cov "corpus/$t/" 2>/dev/null || true ;;
        sample_sheet) cp ../test-data/bad/*.tsv ../test-data/bad/*.csv ../test-data/samples.tsv "corpus/$t/" 2>/dev/null || true ;;
        bed_regions) cp ../test-data/bad/regions_*.bed ../test-data/regions.bed "corpus/$t/" 2>/dev/null || true ;;
    esac
    log="artifacts/$t/last_run.log"
    if cargo "${tc[@]}" fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096 -dict=methylation.dict \
        -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
    fi
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)
    echo "$t: $result, ${execs:-?} executions in ${secs} s (log: fuzz/$log)"
done
exit $status
