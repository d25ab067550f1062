#!/usr/bin/env bash
# DSS input from a `methvb simulate` folder: each sample's bedMethyl as a table `chr pos N X`
# (awk: pos = start + 1, N = column 10 N_valid_cov, X = column 12 N_mod, rows with N = 0
# dropped), and a sheet naming them that keeps the simulated sheet's other columns (batch,
# donor). Used by run.sh, design.sh and dmr.sh; not timed.
#
# Usage: dss_tables.sh SIM_DIR DSS_DIR    (writes DSS_DIR/<sample>.txt and DSS_DIR/sheet.tsv)
set -euo pipefail
sim="$1"
out="$2"
mkdir -p "$out"
head -n 1 "$sim/samples.tsv" > "$out/sheet.tsv.tmp"
tail -n +2 "$sim/samples.tsv" | while IFS=$'\t' read -r sample group path rest; do
    src="$sim/$path"
    cat_cmd=cat; [[ "$src" == *.gz ]] && cat_cmd=zcat
    $cat_cmd "$src" | awk 'BEGIN { OFS = "\t"; print "chr", "pos", "N", "X" }
        $4 == "m" && $10 > 0 { print $1, $2 + 1, $10, $12 }' > "$out/$sample.txt"
    printf '%s\t%s\t%s' "$sample" "$group" "$out/$sample.txt"
    [[ -n "$rest" ]] && printf '\t%s' "$rest"
    printf '\n'
done >> "$out/sheet.tsv.tmp"
mv "$out/sheet.tsv.tmp" "$out/sheet.tsv"
