"""Score de-novo DMR calls against the simulation's effect windows (benches/compare/README.md,
"De-novo DMRs (dmr.sh)"; issue #17).

Usage: python score_dmr.py SET_DIR [LABEL]

SET_DIR is one dataset's working directory written by dmr.sh:
  sim/truth.tsv, sim/samples.tsv     truth per region (is_dmr, effect_start, effect_end) and
                                     the bedMethyl files (the CpG universe)
  dss_smooth.dmr.tsv                 DSS DMLtest(smoothing=TRUE) + callDMR (chr, start, end:
                                     1-based positions of the first and last CpG, inclusive)
  methvb_clusters/regions.parquet    methvb run on its default CpG clusters (rows with called)
  methvb_dmr/dmrs.parquet            methvb dmr (rows with called)
  time_<name>.txt                    /usr/bin/time -v output of each tool run
Any tool whose output is missing is left out. Prints a Markdown table (header included) and
writes SET_DIR/dmr_metrics.tsv.

Everything is counted in CpGs of the universe: the union of the CpG positions of every
sample's bedMethyl (sim/samples.tsv). That is every simulated CpG but those with no read in any
sample (at 15x with 5% missing cells about 1e-8 of them), i.e. the CpGs any tool can see. A
call or window [start, end) (0-based half-open) covers the universe's CpGs p with
start <= p < end.

  true DMR   a truth row with is_dmr and an effect window (effect_start..effect_end, the
             CpGs whose true level differs between the groups, outliers included)
  recall     share of true DMRs FOUND: one call covers >= 50% of the window's CpGs
  precision  share of calls RIGHT: >= 50% of the call's CpGs lie in true windows
  Jaccard    |CpGs in calls & CpGs in windows| / |CpGs in calls | CpGs in windows|
  boundary   for each found DMR and its best-overlapping call (most shared CpGs; the first
             in genome order on ties), the mean over the two ends of the number of CpGs
             between the call's end and the window's (|index difference| in the universe);
             averaged over the found DMRs
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score import time_log  # noqa: E402

HEADER = (
    "| data | tool | wall s | peak RSS MB | calls | recall | precision | CpG Jaccard | "
    "boundary error (CpGs) |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def universe(sim: Path) -> dict[str, np.ndarray]:
    """Sorted unique 0-based CpG positions per contig, over every sample's bedMethyl."""
    sheet = pd.read_csv(sim / "samples.tsv", sep="\t")
    parts = [
        pd.read_csv(sim / p, sep="\t", header=None, usecols=[0, 1], names=["chrom", "pos"],
                    dtype={"chrom": str, "pos": np.int64})
        for p in sheet["path"]
    ]
    allpos = pd.concat(parts, ignore_index=True)
    return {c: np.unique(g["pos"].to_numpy()) for c, g in allpos.groupby("chrom", sort=False)}


def spans(cpgs: dict[str, np.ndarray], chrom, start, end) -> pd.DataFrame:
    """Index ranges [lo, hi) into the contig's universe of half-open intervals [start, end)."""
    rows = []
    for c, s, e in zip(chrom, start, end):
        p = cpgs.get(str(c), np.empty(0, np.int64))
        rows.append((str(c), int(np.searchsorted(p, s, "left")), int(np.searchsorted(p, e, "left"))))
    return pd.DataFrame(rows, columns=["chrom", "lo", "hi"])


def score(cpgs: dict[str, np.ndarray], windows: pd.DataFrame, calls: pd.DataFrame) -> dict:
    found, ends, right = 0, [], 0
    inter = union = 0
    for c, p in cpgs.items():
        w = windows[windows["chrom"] == c]
        k = calls[calls["chrom"] == c].sort_values("lo")
        in_w = np.zeros(len(p), bool)
        in_k = np.zeros(len(p), bool)
        for lo, hi in zip(w["lo"], w["hi"]):
            in_w[lo:hi] = True
        for lo, hi in zip(k["lo"], k["hi"]):
            in_k[lo:hi] = True
        inter += int((in_w & in_k).sum())
        union += int((in_w | in_k).sum())
        klo, khi = k["lo"].to_numpy(), k["hi"].to_numpy()
        for lo, hi in zip(w["lo"], w["hi"]):
            if hi <= lo:
                continue
            ov = np.minimum(khi, hi) - np.maximum(klo, lo)
            if len(ov) == 0 or ov.max() <= 0:
                continue
            b = int(np.argmax(ov))
            if 2 * ov[b] >= hi - lo:
                found += 1
                ends.append((abs(int(klo[b]) - lo) + abs(int(khi[b]) - hi)) / 2)
        cum = np.r_[0, np.cumsum(in_w)]
        inside = cum[khi] - cum[klo]
        right += int(((khi > klo) & (2 * inside >= khi - klo)).sum())
    n_calls = len(calls)
    return dict(
        calls=n_calls,
        dmrs=len(windows),
        found=found,
        recall=found / max(len(windows), 1),
        precision=right / n_calls if n_calls else float("nan"),
        jaccard=inter / union if union else float("nan"),
        boundary=float(np.mean(ends)) if ends else float("nan"),
    )


def main() -> None:
    d = Path(sys.argv[1])
    data_label = sys.argv[2] if len(sys.argv) > 2 else d.name
    cpgs = universe(d / "sim")
    truth = pd.read_csv(d / "sim" / "truth.tsv", sep="\t", dtype={"chrom": str})
    if "effect_start" not in truth:
        sys.exit(f"score_dmr.py: {d}/sim/truth.tsv has no effect_start column (simulated by an "
                 "older methvb; remove the dataset to re-simulate it)")
    truth["is_dmr"] = truth["is_dmr"].astype(str).str.lower() == "true"
    t = truth[truth["is_dmr"] & truth["effect_start"].notna()]
    windows = spans(cpgs, t["chrom"], t["effect_start"].astype(np.int64),
                    t["effect_end"].astype(np.int64))

    tools = []
    dss = d / "dss_smooth.dmr.tsv"
    if dss.exists():
        k = pd.read_csv(dss, sep="\t", dtype={"chr": str})
        # callDMR: start, end = 1-based positions of the first and last CpG; as 0-based
        # half-open that is [start - 1, end), covering the CpGs at 0-based start - 1 .. end - 1.
        tools.append(("DSS DMLtest(smoothing=TRUE) + callDMR", "dss_smooth",
                      spans(cpgs, k["chr"], k["start"] - 1, k["end"])))
    for name, file, label in (("methvb_clusters", "regions.parquet", "methvb run (CpG clusters)"),
                              ("methvb_dmr", "dmrs.parquet", "methvb dmr")):
        path = d / name / file
        if not path.exists():
            continue
        k = pd.read_parquet(path, columns=["chrom", "start", "end", "called"])
        k = k[k["called"].fillna(False).astype(bool)]
        tools.append((label, name, spans(cpgs, k["chrom"], k["start"], k["end"])))

    print(HEADER)
    out = []
    for label, name, calls in tools:
        m = score(cpgs, windows, calls)
        wall, cpu, rss = time_log(d / f"time_{name}.txt")
        print(f"| {data_label} | {label} | {wall:.1f} | {rss:.0f} | {m['calls']} | "
              f"{m['recall']:.3f} ({m['found']}/{m['dmrs']}) | {m['precision']:.3f} | "
              f"{m['jaccard']:.3f} | {m['boundary']:.2f} |")
        out.append(dict(data=data_label, tool=label, wall_s=wall, cpu_s=cpu, rss_mb=rss, **m))
    pd.DataFrame(out).to_csv(d / "dmr_metrics.tsv", sep="\t", index=False)


if __name__ == "__main__":
    main()
