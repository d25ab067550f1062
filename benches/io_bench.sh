#!/usr/bin/env bash
# Reader throughput and memory: `methvb sites` (decompress + parse + strand-merge + k-way merge
# + Arrow batches + Parquet) against plain decompression (`zcat`) of the same files, for a 1x and
# a 10x simulated input. Peak RSS must stay flat between the two sizes.
#
# Usage: benches/io_bench.sh [BASE_REGIONS]   (default 20000 regions = 1x; 10x is 10 times that)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-20000}
work=${BENCH_DIR:-$(mktemp -d)}
cargo build --release -q -p methvb-cli
bin=target/release/methvb
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

printf '| input | samples | records per sample | input MB (gz) | text MB | zcat s | sites s | records/s | text MB/s | peak RSS MB |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for mult in 1 10; do
  n=$((base * mult))
  dir="$work/x$mult"
  [ -f "$dir/samples.tsv" ] || "$bin" -q simulate --out "$dir" --regions "$n" --seed 7 --split-strands --bgzip \
    --samples-per-group 3,3
  files=("$dir"/*.bed.gz)
  gz_mb=$(du -cm "${files[@]}" | tail -1 | cut -f1)
  text_bytes=$(zcat "${files[@]}" | wc -c)
  zcat_s=$( { /usr/bin/time -f '%e' zcat "${files[@]}" > /dev/null; } 2>&1 )
  log="$dir/time.log"
  /usr/bin/time -v "$bin" -q sites --samples "$dir/samples.tsv" --out "$dir/sites.parquet" 2> "$log"
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  sites=$(zcat "${files[0]}" | wc -l)
  awk -v m="$mult" -v s="${#files[@]}" -v sites="$sites" -v gz="$gz_mb" -v tb="$text_bytes" -v z="$zcat_s" -v w="$wall" -v r="$rss_kb" \
    'BEGIN { printf "| %dx | %d | %d | %d | %.0f | %.2f | %.2f | %.2fM | %.0f | %.0f |\n", m, s, sites, gz, tb/1e6, z, w, sites*s/w/1e6, tb/1e6/w, r/1024 }'
done
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
