#!/usr/bin/env bash
# De-novo DMR discovery (issue #17): DSS's callDMR, methvb run's CpG clusters and methvb dmr on
# realistic simulated data, scored at CpG resolution against the simulator's effect windows.
# See benches/compare/README.md, "De-novo DMRs (dmr.sh)", for the scoring rules.
#
# For each dataset in SETS (PER_GROUP:COVERAGE:REGIONS, as run.sh; the same simulate and
# convert commands, so the datasets are interchangeable with run.sh's):
#   1. methvb simulate --mode realistic (truth.tsv with effect_start, effect_end, effect_sites)
#   2. each bedMethyl as a DSS table `chr pos N X` (pos = start + 1, N = col 10, X = col 12)
# then, each under /usr/bin/time -v:
#   dss_smooth       Rscript dss.R SHEET TRUE: DMLtest(group1 = treated, group2 = control,
#                    smoothing = TRUE, ncores = THREADS) + callDMR with its defaults
#   methvb_clusters  methvb --threads THREADS run --samples SHEET --mcmc-check 0 (no --regions:
#                    the default CpG clusters; the baseline before `dmr`)
#   methvb_dmr       methvb --threads THREADS dmr --samples SHEET --out DIR (METHVB_DMR_FLAGS
#                    added); skipped with a message when `methvb dmr --help` fails
# and score_dmr.py prints one Markdown table per dataset (also SET_DIR/dmr_metrics.tsv).
#
# Environment:
#   SETS         datasets                          (default "3:15:2000")
#   THREADS      threads for methvb and DSS ncores (default: nproc)
#   SEED         simulation seed                   (default 1)
#   WORK         working dir, kept; datasets are reused (default /tmp/methvb-dmr)
#   TOOLS        subset of "dss_smooth methvb_clusters methvb_dmr" (default all three)
#   METHVB_DMR_FLAGS  extra flags of methvb dmr    (default none)
#   NO_BUILD=1   skip `cargo build --release -p methvb-cli`
#   PYTHON       python with numpy, pandas, pyarrow (default benches/compare/.venv/bin/python;
#                python3 -m venv benches/compare/.venv &&
#                benches/compare/.venv/bin/pip install pandas pyarrow)
# DSS: Debian/Ubuntu `apt-get install -y r-bioc-dss` (or BiocManager::install("DSS")).
#
# Example (quick): SETS="3:15:500" TOOLS="dss_smooth methvb_dmr" benches/compare/dmr.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SETS="${SETS:-3:15:2000}"
THREADS="${THREADS:-$(nproc)}"
SEED="${SEED:-1}"
TOOLS="${TOOLS:-dss_smooth methvb_clusters methvb_dmr}"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
work="${WORK:-/tmp/methvb-dmr}"
mkdir -p "$work"

for tool in /usr/bin/time Rscript "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "dmr.sh: $tool not found (see the header)" >&2; exit 1; }
done
Rscript -e 'suppressPackageStartupMessages(library(DSS))' \
    || { echo "dmr.sh: R package DSS missing (apt-get install -y r-bioc-dss)" >&2; exit 1; }

if [[ "${NO_BUILD:-0}" != 1 ]]; then
    (cd "$repo" && cargo build --release -p methvb-cli)
fi
bin="${CARGO_TARGET_DIR:-$repo/target}/release/methvb"
[[ -x "$bin" ]] || { echo "dmr.sh: $bin not found" >&2; exit 1; }

has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }
read -r -a dmr_flags <<< "${METHVB_DMR_FLAGS:-}"

tables=""
for set in $SETS; do
    IFS=: read -r per cov n <<< "$set"
    name="${per}v${per}_${cov}x_${n}"
    d="$work/$name"
    mkdir -p "$d"
    # A dataset simulated before truth.tsv had the effect windows is simulated again (same
    # seed: the same counts, so the DSS tables stay valid).
    if [[ ! -f "$d/sim/truth.tsv" ]] || ! head -1 "$d/sim/truth.tsv" | grep -q effect_start; then
        echo "== simulate $name" >&2
        rm -rf "${d:?}/sim"
        "$bin" --quiet simulate --out "$d/sim" --mode realistic --regions "$n" \
            --samples-per-group "$per,$per" --mean-coverage "$cov" --seed "$SEED"
    fi
    if [[ ! -f "$d/dss/sheet.tsv" ]]; then
        "$here/dss_tables.sh" "$d/sim" "$d/dss"
    fi
    if has_tool dss_smooth; then
        echo "== DSS smoothing=TRUE + callDMR, $name, ncores $THREADS" >&2
        /usr/bin/time -v -o "$d/time_dss_smooth.txt" Rscript "$here/dss.R" "$d/dss/sheet.tsv" TRUE \
            "$d/dss_smooth" "$THREADS"
    fi
    if has_tool methvb_clusters; then
        echo "== methvb run (CpG clusters), $name, $THREADS threads" >&2
        rm -rf "${d:?}/methvb_clusters"
        /usr/bin/time -v -o "$d/time_methvb_clusters.txt" "$bin" --quiet --threads "$THREADS" run \
            --samples "$d/sim/samples.tsv" --out "$d/methvb_clusters" --mcmc-check 0
    fi
    if has_tool methvb_dmr; then
        if "$bin" dmr --help >/dev/null 2>&1; then
            echo "== methvb dmr, $name, $THREADS threads" >&2
            rm -rf "${d:?}/methvb_dmr"
            /usr/bin/time -v -o "$d/time_methvb_dmr.txt" "$bin" --quiet --threads "$THREADS" dmr \
                --samples "$d/sim/samples.tsv" --out "$d/methvb_dmr" "${dmr_flags[@]}"
        else
            echo "== methvb dmr: skipped ($bin has no dmr command)" >&2
            rm -rf "${d:?}/methvb_dmr" "$d/time_methvb_dmr.txt"
        fi
    fi
    tables+="$("$PYTHON" "$here/score_dmr.py" "$d" "$name")"$'\n\n'
done

echo
echo "# de-novo DMRs: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc $(nproc);" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//');" \
    "$("$bin" --version); DSS $(Rscript -e 'cat(as.character(packageVersion("DSS")))')"
printf '%s' "$tables"
