#!/usr/bin/env bash
# BAM pileup throughput: reads/s and CpG calls/s of `methvb pileup` with 1 and 2 threads, next to
# `samtools view -c` on the same file (BGZF decode + record parse: the decode limit).
#
# Input: N copies (default 40) of the PacBio HiFi modBAM from /work/shared/data/modkit
# (150 reads, 2-22 kb, legacy Mm/Ml C+m on every CpG, all within chr20:60-170 kb), copy k shifted
# by k x 250 kb along chr20 so the reads span 10 Mb (regions for the parallel path), sorted and
# indexed in a temporary directory (40 copies: 6,000 reads, ~90 Mbases).
#
# Usage: benches/bam_bench.sh [COPIES]
#   METHVB=/path/to/methvb   binary to time (default: target/release/methvb, built if missing)
#   DATA=/work/shared/data   test-data folder
# Needs samtools (apt-get install samtools). Prints one line per run; nothing is asserted.
set -euo pipefail
copies=${1:-40}
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$here/../shared/data}
src=$data/modkit/HG002_small.ch20._other.sorted.bam
[ -f "$src" ] || { echo "missing $src (see shared/data/README.md)" >&2; exit 1; }
command -v samtools >/dev/null || { echo "samtools not found (apt-get install samtools)" >&2; exit 1; }
methvb=${METHVB:-$here/target/release/methvb}
if [ ! -x "$methvb" ]; then
  (cd "$here" && cargo build --release -p methvb-cli)
fi
"$methvb" pileup --help >/dev/null 2>&1 || { echo "$methvb has no 'pileup' subcommand" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  samtools view -H "$src"
  for k in $(seq 0 $((copies - 1))); do
    samtools view "$src" | awk -v off=$((k * 250000)) -v k="$k" 'BEGIN { OFS = "\t" }
      { $1 = $1 "_" k; $4 += off; if ($8 > 0) $8 += off; print }'
  done
} | samtools sort -o "$tmp/in.bam" - 2>/dev/null
samtools index "$tmp/in.bam"
reads=$(samtools view -c "$tmp/in.bam")
echo "input: $copies x $(basename "$src") = $reads records, $(du -h "$tmp/in.bam" | cut -f1)"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }

t0=$(now); samtools view -c "$tmp/in.bam" >/dev/null; t1=$(now)
dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
echo "samtools view -c (1 thread): ${dt}s, $(rate "$reads" "$dt") reads/s"
t0=$(now); samtools view -c -@ 2 "$tmp/in.bam" >/dev/null; t1=$(now)
dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
echo "samtools view -c -@ 2:       ${dt}s, $(rate "$reads" "$dt") reads/s"

for threads in 1 2; do
  for mode in "--cpg --combine-strands" ""; do
    t0=$(now)
    "$methvb" --threads "$threads" pileup "$tmp/in.bam" --no-filtering $mode -o "$tmp/out.bed" 2>"$tmp/log"
    t1=$(now)
    dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    calls=$(sed -n 's/.* records ([0-9]* with calls), \([0-9]*\) calls,.*/\1/p' "$tmp/log")
    echo "methvb pileup --threads $threads ${mode:-(all C)}: ${dt}s, $(rate "$reads" "$dt") reads/s, $(rate "$calls" "$dt") calls/s, $(wc -l < "$tmp/out.bed") rows"
  done
done
