#!/usr/bin/env bash
# End-to-end benchmark of `methvb run` on simulated data (see benches/README.md, section
# "End-to-end run").
#
# For each size in SIZES (number of simulated regions; 3 vs 3 samples, default sites per
# region) it simulates a dataset once, then runs `methvb run` with each thread count in THREADS
# under /usr/bin/time -v and prints a Markdown table: regions, input MB, threads, wall s,
# regions/s, peak RSS MB. At the end it prints how peak RSS changed from the smallest to the
# largest input (the point: memory stays flat, because both passes stream).
#
# Environment:
#   SIZES      region counts               (default "10000 100000 1000000")
#   THREADS    thread counts               (default "1 2")
#   RUN_ARGS   extra arguments of `run`    (default none: the CLI defaults, e.g. --draws 1000)
#   WORK       working directory, kept; datasets in it are reused across invocations
#              (default: a new directory from mktemp, removed at the end unless KEEP=1)
#   NO_BUILD=1 skip `cargo build --release -p methvb-cli`
#   SEED       simulation seed             (default 1)
#   SIM_ARGS   extra arguments of `simulate` (default none; e.g. "--bgzip")
#
# Example: SIZES="10000 100000" benches/run_bench.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZES="${SIZES:-10000 100000 1000000}"
THREADS="${THREADS:-1 2}"
RUN_ARGS="${RUN_ARGS:-}"
SEED="${SEED:-1}"
SIM_ARGS="${SIM_ARGS:-}"

if [[ ! -x /usr/bin/time ]]; then
    echo "run_bench.sh: /usr/bin/time is missing; install it (Debian/Ubuntu: apt-get install -y time)" >&2
    exit 1
fi

if [[ "${NO_BUILD:-0}" != 1 ]]; then
    (cd "$repo" && cargo build --release -p methvb-cli)
fi
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target_dir/release/methvb"
[[ -x "$bin" ]] || { echo "run_bench.sh: $bin not found (build it or unset NO_BUILD)" >&2; exit 1; }

if [[ -n "${WORK:-}" ]]; then
    mkdir -p "$WORK"
    work="$WORK"
else
    work="$(mktemp -d -t methvb-bench.XXXXXX)"
    if [[ "${KEEP:-0}" != 1 ]]; then
        trap 'rm -rf "$work"' EXIT
    fi
fi

echo "# methvb run benchmark: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
echo "# binary: $bin ($("$bin" --version))"
echo "# run arguments: ${RUN_ARGS:-(defaults)}; simulate arguments: ${SIM_ARGS:-(defaults)}; work dir: $work"
echo

# wall-clock "h:mm:ss" or "m:ss.ss" -> seconds
to_seconds() {
    awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<<"$1"
}

results=()
for n in $SIZES; do
    sim="$work/sim_$n"
    if [[ ! -f "$sim/samples.tsv" ]]; then
        echo "simulating $n regions -> $sim" >&2
        # shellcheck disable=SC2086  # SIM_ARGS is a word list on purpose
        "$bin" -q simulate --out "$sim" --regions "$n" --seed "$SEED" $SIM_ARGS
    fi
    input_mb=$(du -cb "$sim"/*.bed* | awk 'END { printf "%.1f", $1 / 1e6 }')
    for t in $THREADS; do
        out="$work/out_${n}_t$t"
        log="$work/time_${n}_t$t.txt"
        rm -rf "$out"
        echo "running $n regions, --threads $t" >&2
        # shellcheck disable=SC2086  # RUN_ARGS is a word list on purpose
        if ! /usr/bin/time -v "$bin" -q --threads "$t" run --samples "$sim/samples.tsv" \
            --out "$out" $RUN_ARGS 2>"$log"; then
            echo "run_bench.sh: methvb run failed for $n regions, $t threads; see $log" >&2
            tail -5 "$log" >&2
            exit 1
        fi
        wall=$(to_seconds "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")")
        rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
        # Regions actually fitted (pass 2), from run.json (pass1 comes before pass2 there).
        fitted=$(grep -o '"regions_used": [0-9]*' "$out/run.json" | tail -1 | grep -o '[0-9]*$')
        # Seconds of pass 1 (learning Theta) and pass 2 (fitting every region), same order.
        secs=($(grep -o '"seconds": [0-9.eE+-]*' "$out/run.json" | grep -o '[0-9.eE+-]*$'))
        p1="${secs[0]:-0}" p2="${secs[1]:-0}"
        cp "$out/run.json" "$work/run_${n}_t$t.json"
        results+=("$n $input_mb $t $wall $rss_kb $fitted $p1 $p2")
        rm -rf "$out"
    done
done

echo "| regions (simulated / fitted) | input MB | threads | wall s | pass 1 / pass 2 s | regions/s | peak RSS MB |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for r in "${results[@]}"; do
    read -r n mb t wall rss fitted p1 p2 <<<"$r"
    awk -v n="$n" -v mb="$mb" -v t="$t" -v w="$wall" -v rss="$rss" -v f="$fitted" -v p1="$p1" -v p2="$p2" \
        'BEGIN { printf "| %d / %d | %s | %d | %.1f | %.1f / %.1f | %.0f | %.0f |\n", n, f, mb, t, w, p1, p2, (w > 0 ? f / w : 0), rss / 1024 }'
done

# Peak RSS of the largest input relative to the smallest, per thread count.
echo
sizes_arr=($SIZES)
if ((${#sizes_arr[@]} > 1)); then
    small="${sizes_arr[0]}"
    large="${sizes_arr[${#sizes_arr[@]}-1]}"
    for t in $THREADS; do
        rs="" rl="" ms="" ml=""
        for r in "${results[@]}"; do
            read -r n mb tt wall rss fitted _ _ <<<"$r"
            [[ "$tt" == "$t" && "$n" == "$small" ]] && { rs=$rss; ms=$mb; }
            [[ "$tt" == "$t" && "$n" == "$large" ]] && { rl=$rss; ml=$mb; }
        done
        awk -v t="$t" -v s="$small" -v l="$large" -v rs="$rs" -v rl="$rl" -v ms="$ms" -v ml="$ml" \
            'BEGIN { printf "peak RSS, %d thread(s): %.0f MB at %d regions (%s MB input) -> %.0f MB at %d regions (%s MB input): x%.2f for x%.1f input\n", t, rs/1024, s, ms, rl/1024, l, ml, rl/rs, ml/ms }'
    done
fi
