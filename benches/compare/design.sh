#!/usr/bin/env bash
# methvb and DSS with and without the experimental design, on realistic simulated data whose
# samples carry a batch or a donor. See benches/compare/README.md, "Designs".
#
# Datasets (`methvb simulate --mode realistic`, 4 vs 4, REGIONS regions, 10% DMRs, SEED):
#   confounded  --batch A,A,A,B,A,B,B,B (controls, then cases): batch B is mostly cases; 30% of
#               regions, independently of DMR status, get |e| ~ U(0.15, 0.35) with a random
#               sign on the probability scale in batch B
#   paired      --paired --donor-sd DONOR_SD: sample k of each group is donor_k; every region
#               draws one logit-scale effect per donor
# The true delta is the group difference alone (at batch A, at donor effect 0).
# Tools, each under /usr/bin/time -v:
#   dss_nodesign    DMLfit.multiFactor(~ group) + DMLtest.multiFactor(coef = "grouptreated")
#   dss_design      the same with ~ group + batch (confounded) or ~ group + donor (paired)
#   methvb_nodesign methvb run --regions regions.bed
#   methvb_design   the same plus METHVB_CONFOUNDED_FLAGS / METHVB_PAIRED_FLAGS; skipped, with
#                   a message, when this methvb rejects those flags
# then score_design.py prints one table per dataset and writes it as DIR/design_metrics.tsv.
#
# Environment:
#   SETS        datasets, a subset of "confounded paired"             (default both)
#   TOOLS       subset of "dss_nodesign dss_design methvb_nodesign methvb_design" (default all)
#   REGIONS     regions per dataset                                   (default 2000)
#   DONOR_SD    sd of the donor effect, logit scale                   (default 0.5)
#   SEED        simulation seed                                       (default 1)
#   THREADS     threads for methvb                                    (default: nproc)
#   MCMC_CHECK  regions of methvb's NUTS audit                        (default 0)
#   METHVB_CONFOUNDED_FLAGS  methvb run flags of the batch design     (default "--covariates batch")
#   METHVB_PAIRED_FLAGS      methvb run flags of the paired design    (default "--pair-by donor")
#   WORK        working dir, kept; datasets are reused                (default /tmp/methvb-design)
#   NO_BUILD=1  skip `cargo build --release -p methvb-cli`
#   PYTHON      python with numpy, pandas, pyarrow (default benches/compare/.venv/bin/python)
# DSS: Debian/Ubuntu `apt-get install -y r-bioc-dss` (or BiocManager::install("DSS")).
#
# Example (quick): REGIONS=500 SETS=paired TOOLS="dss_design methvb_nodesign" benches/compare/design.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SETS="${SETS:-confounded paired}"
TOOLS="${TOOLS:-dss_nodesign dss_design methvb_nodesign methvb_design}"
REGIONS="${REGIONS:-2000}"
DONOR_SD="${DONOR_SD:-0.5}"
SEED="${SEED:-1}"
THREADS="${THREADS:-$(nproc)}"
MCMC_CHECK="${MCMC_CHECK:-0}"
METHVB_CONFOUNDED_FLAGS="${METHVB_CONFOUNDED_FLAGS:---covariates batch}"
METHVB_PAIRED_FLAGS="${METHVB_PAIRED_FLAGS:---pair-by donor}"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
work="${WORK:-/tmp/methvb-design}"
mkdir -p "$work"

for tool in /usr/bin/time Rscript "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "design.sh: $tool not found (see the header)" >&2; exit 1; }
done
Rscript -e 'suppressPackageStartupMessages(library(DSS))' \
    || { echo "design.sh: R package DSS missing (apt-get install -y r-bioc-dss)" >&2; exit 1; }

if [[ "${NO_BUILD:-0}" != 1 ]]; then
    (cd "$repo" && cargo build --release -p methvb-cli)
fi
bin="${CARGO_TARGET_DIR:-$repo/target}/release/methvb"
[[ -x "$bin" ]] || { echo "design.sh: $bin not found" >&2; exit 1; }

has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

for set in $SETS; do
    case "$set" in
        confounded)
            sim_flags=(--batch A,A,A,B,A,B,B,B --batch-fraction 0.3 --batch-effect 0.15,0.35)
            formula="~ group + batch"
            read -r -a design_flags <<< "$METHVB_CONFOUNDED_FLAGS" ;;
        paired)
            sim_flags=(--paired --donor-sd "$DONOR_SD")
            formula="~ group + donor"
            read -r -a design_flags <<< "$METHVB_PAIRED_FLAGS" ;;
        *) echo "design.sh: unknown dataset $set (SETS: confounded paired)" >&2; exit 1 ;;
    esac
    d="$work/$set"
    mkdir -p "$d"
    if [[ ! -f "$d/sim/truth.tsv" ]]; then
        echo "== simulate $set" >&2
        "$bin" --quiet simulate --out "$d/sim" --mode realistic --regions "$REGIONS" \
            --samples-per-group 4,4 --dmr-fraction 0.1 --seed "$SEED" "${sim_flags[@]}"
    fi
    if [[ ! -f "$d/dss/sheet.tsv" ]]; then
        "$here/dss_tables.sh" "$d/sim" "$d/dss"
    fi
    for cfg in dss_nodesign dss_design; do
        has_tool "$cfg" || continue
        f="~ group"; [[ "$cfg" == dss_design ]] && f="$formula"
        echo "== DSS multiFactor $f, $set" >&2
        /usr/bin/time -v -o "$d/time_$cfg.txt" Rscript "$here/dss_design.R" "$d/dss/sheet.tsv" \
            "$f" "$d/$cfg"
    done
    for cfg in methvb_nodesign methvb_design; do
        has_tool "$cfg" || continue
        extra=(); [[ "$cfg" == methvb_design ]] && extra=("${design_flags[@]}")
        echo "== methvb run ${extra[*]}, $set, $THREADS threads" >&2
        rm -rf "${d:?}/$cfg" "$d/time_$cfg.txt"
        rc=0
        /usr/bin/time -v -o "$d/time_$cfg.txt.tmp" "$bin" --quiet --threads "$THREADS" run \
            --samples "$d/sim/samples.tsv" --regions "$d/sim/regions.bed" --out "$d/$cfg" \
            --mcmc-check "$MCMC_CHECK" "${extra[@]}" 2> "$d/$cfg.stderr" || rc=$?
        if [[ $rc == 2 ]] && grep -q "unexpected argument" "$d/$cfg.stderr"; then
            # clap's usage error: this methvb has no such flag yet.
            echo "design.sh: skipping $cfg on $set: $bin does not take '${extra[*]}':" >&2
            grep -m1 "error:" "$d/$cfg.stderr" >&2
            rm -rf "${d:?}/$cfg" "$d/time_$cfg.txt.tmp"
            continue
        fi
        cat "$d/$cfg.stderr" >&2
        [[ $rc == 0 ]] || { echo "design.sh: methvb run failed ($cfg, $set)" >&2; exit 1; }
        mv "$d/time_$cfg.txt.tmp" "$d/time_$cfg.txt"
    done
done

echo
echo "# designs, methvb vs DSS: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc $(nproc);" \
    "$("$bin" --version); DSS $(Rscript -e 'cat(as.character(packageVersion("DSS")))')"
for set in $SETS; do
    flags="$METHVB_CONFOUNDED_FLAGS"; [[ "$set" == paired ]] && flags="$METHVB_PAIRED_FLAGS"
    echo
    "$PYTHON" "$here/score_design.py" "$work/$set" "$set" "$flags"
done
