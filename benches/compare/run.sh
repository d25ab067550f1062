#!/usr/bin/env bash
# methvb vs DSS on realistic simulated data (and vs NumPyro on a few regions), side by side.
# See benches/compare/README.md for what every number means and the scoring rules.
#
# For each dataset in SETS (PER_GROUP:COVERAGE:REGIONS; `methvb simulate --mode realistic`:
# effects on the probability scale over a contiguous 60-100% of a region's CpGs, 3% outlier
# CpGs, log-normal dispersion, bimodal baselines, smooth site levels, NB coverage with zeros,
# library sizes, 10% DMRs):
#   1. methvb simulate (18-column modkit bedMethyl, one record per CpG)
#   2. convert each bedMethyl to a DSS table `chr pos N X` (awk: pos = start + 1, N = col 10
#      N_valid_cov, X = col 12 N_mod; rows with N = 0 dropped)
#   3. DSS DMLtest(smoothing=FALSE) + callDMR (and smoothing=TRUE with TOOLS containing
#      dss_smooth) (dss.R)
#   4. methvb run --regions regions.bed (defaults, with a NUTS audit of MCMC_CHECK regions),
#      and with TOOLS containing methvb_norefit the same with --max-refit 0; with OLD_METHVB
#      set, that binary too (tool methvb_old: a previous version, for the CPU comparison)
#   each tool under /usr/bin/time -v; then score.py prints one Markdown table.
# Then the reference swap on the real RRBS files of ../shared/data/dss (swap.py), and (unless
# NUMPYRO=0) numpyro_compare.py on NPY_REGIONS regions of the first dataset.
#
# Environment:
#   SETS         datasets                          (default "3:15:2000 2:8:2000")
#   THREADS      threads for methvb and DSS ncores (default: nproc)
#   SEED         simulation seed                   (default 1)
#   WORK         working dir, kept; datasets are reused (default /tmp/methvb-compare)
#   TOOLS        subset of "methvb methvb_norefit dss_nosmooth dss_smooth"
#                (default "methvb dss_nosmooth")
#   MCMC_CHECK   regions of methvb's NUTS audit per dataset (default 100)
#   OLD_METHVB   path of another methvb binary to run as tool methvb_old (optional)
#   SHARED       the shared data folder (default ../shared/data beside the checkout)
#   NUMPYRO=0    skip the NumPyro part (default: skipped unless NUMPYRO=1); NPY_REGIONS (50);
#                NPY_NUTS_REGIONS: NumPyro NUTS on only the first N of them
#   NO_BUILD=1   skip `cargo build --release -p methvb-cli`
#   PYTHON       python with numpy, pandas, pyarrow (and numpyro, jax for the NumPyro part)
#                (default benches/compare/.venv/bin/python; create it with
#                 python3 -m venv benches/compare/.venv &&
#                 benches/compare/.venv/bin/pip install pandas pyarrow numpyro 'jax[cpu]')
# DSS: Debian/Ubuntu `apt-get install -y r-bioc-dss` (or BiocManager::install("DSS")).
#
# Example (quick): SETS="3:15:500" MCMC_CHECK=20 benches/compare/run.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SETS="${SETS:-3:15:2000 2:8:2000}"
THREADS="${THREADS:-$(nproc)}"
SEED="${SEED:-1}"
TOOLS="${TOOLS:-methvb dss_nosmooth}"
MCMC_CHECK="${MCMC_CHECK:-100}"
NPY_REGIONS="${NPY_REGIONS:-50}"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
SHARED="${SHARED:-$repo/../shared/data}"
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

table=""
first=""
for set in $SETS; do
    IFS=: read -r per cov n <<< "$set"
    name="${per}v${per}_${cov}x_${n}"
    d="$work/$name"
    mkdir -p "$d"
    first="${first:-$d}"
    if [[ ! -f "$d/sim/truth.tsv" ]]; then
        echo "== simulate $name" >&2
        "$bin" --quiet simulate --out "$d/sim" --mode realistic --regions "$n" \
            --samples-per-group "$per,$per" --mean-coverage "$cov" --seed "$SEED"
    fi
    if [[ ! -f "$d/dss/sheet.tsv" ]]; then
        "$here/dss_tables.sh" "$d/sim" "$d/dss"
    fi
    for cfg in methvb methvb_norefit methvb_old; do
        case "$cfg" in
            methvb_old) [[ -n "${OLD_METHVB:-}" ]] || continue; exe="$OLD_METHVB" ;;
            *) has_tool "$cfg" || continue; exe="$bin" ;;
        esac
        extra=(); [[ "$cfg" == methvb_norefit ]] && extra=(--max-refit 0)
        audit=(--mcmc-check "$MCMC_CHECK"); [[ "$cfg" == methvb ]] || audit=(--mcmc-check 0)
        echo "== $cfg run, $name, $THREADS threads" >&2
        rm -rf "${d:?}/$cfg"
        /usr/bin/time -v -o "$d/time_$cfg.txt" "$exe" --quiet --threads "$THREADS" run \
            --samples "$d/sim/samples.tsv" --regions "$d/sim/regions.bed" --out "$d/$cfg" \
            "${audit[@]}" "${extra[@]}"
    done
    for cfg in dss_nosmooth dss_smooth; do
        has_tool "$cfg" || continue
        smooth=FALSE; [[ "$cfg" == dss_smooth ]] && smooth=TRUE
        echo "== DSS smoothing=$smooth, $name, ncores $THREADS" >&2
        /usr/bin/time -v -o "$d/time_$cfg.txt" Rscript "$here/dss.R" "$d/dss/sheet.tsv" "$smooth" \
            "$d/$cfg" "$THREADS"
    done
    table+="$("$PYTHON" "$here/score.py" "$d" "$name")"$'\n'
done

echo
echo "# methvb vs DSS: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc $(nproc);" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//');" \
    "$("$bin" --version); DSS $(Rscript -e 'cat(as.character(packageVersion("DSS")))')"
"$PYTHON" -c "import sys; sys.path.insert(0, '$here'); import score; print(score.HEADER)"
printf '%s' "$table"

echo
echo "== reference swap on the real RRBS data of $SHARED/dss" >&2
swap="$work/swap"
mkdir -p "$swap"
printf 'sample\tgroup\tpath\n' > "$swap/sheet.tsv"
for s in cond1_1 cond1_2 cond2_1 cond2_2; do
    printf '%s\t%s\t%s\n' "$s" "${s%_*}" "$SHARED/dss/$s.txt" >> "$swap/sheet.tsv"
done
for ref in cond1 cond2; do
    rm -rf "${swap:?}/$ref"
    "$bin" --quiet --threads "$THREADS" run --samples "$swap/sheet.tsv" --reference-group "$ref" \
        --out "$swap/$ref" --mcmc-check 0
done
"$PYTHON" "$here/swap.py" "$swap/cond1/regions.parquet" "$swap/cond2/regions.parquet"

if [[ "${NUMPYRO:-0}" == 1 ]]; then
    echo
    echo "== NumPyro vs methvb on $NPY_REGIONS regions of $first" >&2
    "$PYTHON" "$here/numpyro_compare.py" --dir "$first" --bin "$bin" --regions "$NPY_REGIONS" \
        --nuts-regions "${NPY_NUTS_REGIONS:-$NPY_REGIONS}" \
        --seed "$SEED"
fi
