#!/usr/bin/env bash
# methvb vs DSS (and vs NumPyro on a few regions), on identical simulated inputs.
# See benches/compare/README.md for what every number means and the scoring rules.
#
# For each size in SIZES (simulated regions, 3 vs 3 samples, `methvb simulate` defaults:
# 5-30 CpGs per region, ~15x coverage, 10% DMRs, model mode):
#   1. methvb simulate (18-column modkit bedMethyl, one record per CpG)
#   2. convert each bedMethyl to a DSS table `chr pos N X` (awk: pos = start + 1, N = col 10
#      N_valid_cov, X = col 12 N_mod; rows with N = 0 dropped)
#   3. DSS DMLtest(smoothing=TRUE) + callDMR, and DMLtest(smoothing=FALSE) + callDMR (dss.R)
#   4. methvb run --regions regions.bed (all defaults, incl. the 16-region NUTS audit), and
#      with TOOLS containing methvb_norefit the same with --max-refit 0
#   each tool under /usr/bin/time -v; then score.py prints one Markdown table.
# Then (unless NUMPYRO=0) numpyro_compare.py fits NPY_REGIONS regions of the first size with
# NumPyro NUTS and SVI (AutoNormal), Theta fixed to methvb's hyper.json, and compares with
# methvb VB and methvb NUTS on the same regions.
#
# Environment:
#   SIZES        region counts                     (default "20000 200000")
#   THREADS      threads for methvb and DSS ncores (default: nproc)
#   SEED         simulation seed                   (default 1)
#   WORK         working dir, kept; datasets are reused (default /tmp/methvb-compare)
#   TOOLS        subset of "methvb methvb_norefit dss_smooth dss_nosmooth" (default: all but
#                methvb_norefit, which is methvb run --max-refit 0)
#   NUMPYRO=0    skip the NumPyro part; NPY_REGIONS (default 50); NPY_NUTS_REGIONS: NumPyro
#                NUTS on only the first N of them (default all; ~1-2 min per region here)
#   NO_BUILD=1   skip `cargo build --release -p methvb-cli`
#   PYTHON       python with numpy, pandas, pyarrow, numpyro, jax
#                (default benches/compare/.venv/bin/python; create it with
#                 python3 -m venv benches/compare/.venv &&
#                 benches/compare/.venv/bin/pip install numpyro 'jax[cpu]' pandas pyarrow)
# DSS: Debian/Ubuntu `apt-get install -y r-bioc-dss` (or BiocManager::install("DSS")).
#
# Example (quick): SIZES="2000 20000" benches/compare/run.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SIZES="${SIZES:-20000 200000}"
THREADS="${THREADS:-$(nproc)}"
SEED="${SEED:-1}"
TOOLS="${TOOLS:-methvb dss_smooth dss_nosmooth}"
NPY_REGIONS="${NPY_REGIONS:-50}"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
work="${WORK:-/tmp/methvb-compare}"
mkdir -p "$work"

for tool in /usr/bin/time Rscript "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (see the header)" >&2; exit 1; }
done
Rscript -e 'suppressPackageStartupMessages(library(DSS))' \
    || { echo "run.sh: R package DSS missing (apt-get install -y r-bioc-dss)" >&2; exit 1; }

if [[ "${NO_BUILD:-0}" != 1 ]]; then
    (cd "$repo" && cargo build --release -p methvb-cli)
fi
bin="${CARGO_TARGET_DIR:-$repo/target}/release/methvb"
[[ -x "$bin" ]] || { echo "run.sh: $bin not found" >&2; exit 1; }

has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

header="| regions | tool / config | wall s | peak RSS MB | AUROC | AUPRC | AUPRC alt | AUROC big | AUPRC big | RMSE delta | 95% coverage | calls | scoring / notes |
|---|---|---|---|---|---|---|---|---|---|---|---|---|"
table=""
first=""
for n in $SIZES; do
    d="$work/n$n"
    mkdir -p "$d"
    first="${first:-$d}"
    if [[ ! -f "$d/sim/truth.tsv" ]]; then
        echo "== simulate $n regions" >&2
        # the default contigs (3 x 50 Mb) hold ~60k regions; lengthen them for larger sizes
        # (~1.7 kb per region on average; 2.5 kb leaves room)
        "$bin" --quiet simulate --out "$d/sim0" --regions 3 --seed "$SEED"
        python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); n = int(sys.argv[2])
c["n_regions"] = n
need = (n // len(c["contigs"]) + 1) * 2500
c["contigs"] = [[name, max(length, need)] for name, length in c["contigs"]]
json.dump(c, open(sys.argv[3], "w"), indent=1)' "$d/sim0/sim.json" "$n" "$d/sim-config.json"
        rm -rf "$d/sim0"
        "$bin" --quiet simulate --out "$d/sim" --config "$d/sim-config.json" --seed "$SEED"
    fi
    if [[ ! -f "$d/dss/sheet.tsv" ]]; then
        mkdir -p "$d/dss"
        printf 'sample\tgroup\tpath\n' > "$d/dss/sheet.tsv.tmp"
        tail -n +2 "$d/sim/samples.tsv" | while IFS=$'\t' read -r sample group path _; do
            src="$d/sim/$path"
            cat_cmd=cat; [[ "$src" == *.gz ]] && cat_cmd=zcat
            $cat_cmd "$src" | awk 'BEGIN { OFS = "\t"; print "chr", "pos", "N", "X" }
                $4 == "m" && $10 > 0 { print $1, $2 + 1, $10, $12 }' > "$d/dss/$sample.txt"
            printf '%s\t%s\t%s\n' "$sample" "$group" "$d/dss/$sample.txt" >> "$d/dss/sheet.tsv.tmp"
        done
        mv "$d/dss/sheet.tsv.tmp" "$d/dss/sheet.tsv"
    fi
    for cfg in methvb methvb_norefit; do
        has_tool "$cfg" || continue
        extra=(); [[ "$cfg" == methvb_norefit ]] && extra=(--max-refit 0)
        echo "== $cfg run, $n regions, $THREADS threads" >&2
        rm -rf "${d:?}/$cfg"
        /usr/bin/time -v -o "$d/time_$cfg.txt" "$bin" --quiet --threads "$THREADS" run \
            --samples "$d/sim/samples.tsv" --regions "$d/sim/regions.bed" --out "$d/$cfg" \
            "${extra[@]}"
    done
    for cfg in dss_smooth dss_nosmooth; do
        has_tool "$cfg" || continue
        smooth=TRUE; [[ "$cfg" == dss_nosmooth ]] && smooth=FALSE
        echo "== DSS smoothing=$smooth, $n regions, ncores $THREADS" >&2
        /usr/bin/time -v -o "$d/time_$cfg.txt" Rscript "$here/dss.R" "$d/dss/sheet.tsv" "$smooth" \
            "$d/$cfg" "$THREADS"
    done
    table+="$("$PYTHON" "$here/score.py" "$d")"$'\n'
done

echo
echo "# methvb vs DSS: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc $(nproc);" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//');" \
    "$("$bin" --version); DSS $(Rscript -e 'cat(as.character(packageVersion("DSS")))')"
echo "$header"
printf '%s' "$table"

if [[ "${NUMPYRO:-1}" != 0 ]]; then
    echo
    echo "== NumPyro vs methvb on $NPY_REGIONS regions of $first" >&2
    "$PYTHON" "$here/numpyro_compare.py" --dir "$first" --bin "$bin" --regions "$NPY_REGIONS" \
        --nuts-regions "${NPY_NUTS_REGIONS:-$NPY_REGIONS}" \
        --seed "$SEED"
fi
