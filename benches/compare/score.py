"""Score methvb and DSS against the simulation truth (see benches/compare/README.md).

Usage: python score.py SIZE_DIR

SIZE_DIR is one size's working directory written by run.sh:
  sim/truth.tsv                      truth per region (is_dmr, true_delta_treated)
  methvb/regions.parquet             methvb run output
  methvb_norefit/regions.parquet     methvb run --max-refit 0 output (optional)
  dss_smooth.dml.tsv, .dmr.tsv       DSS DMLtest(smoothing=TRUE) + callDMR
  dss_nosmooth.dml.tsv, .dmr.tsv     DSS DMLtest(smoothing=FALSE) + callDMR
  time_<name>.txt                    /usr/bin/time -v output of each tool run
Prints Markdown table rows (no header) and writes SIZE_DIR/metrics.tsv.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def auroc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties get average ranks)."""
    ranks = pd.Series(score).rank(method="average").to_numpy()
    n_pos = int(label.sum())
    n_neg = len(label) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc(score: np.ndarray, label: np.ndarray) -> float:
    """Average precision as in sklearn: sum over distinct thresholds of (R_n - R_{n-1}) P_n.

    Tied scores enter together (no optimistic tie-breaking)."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    y = label[order].astype(float)
    tp = np.cumsum(y)
    fp = np.cumsum(1.0 - y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct score
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / max(y.sum(), 1.0)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def wall_rss(path: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) from a /usr/bin/time -v log."""
    text = path.read_text()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    parts = [float(p) for p in m.group(1).split(":")] if m else [float("nan")]
    wall = 0.0
    for p in parts:
        wall = wall * 60 + p
    r = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    rss = int(r.group(1)) / 1024 if r else float("nan")
    return wall, rss


def assign_sites(truth: pd.DataFrame, chrom: np.ndarray, pos0: np.ndarray) -> np.ndarray:
    """Row index into `truth` of the region holding each site (0-based pos), or -1."""
    out = np.full(len(pos0), -1, dtype=np.int64)
    for c, reg in truth.groupby("chrom", sort=False):
        reg = reg.sort_values("start")
        starts = reg["start"].to_numpy()
        ends = reg["end"].to_numpy()
        rows = reg.index.to_numpy()
        sel = np.nonzero(chrom == c)[0]
        idx = np.searchsorted(starts, pos0[sel], side="right") - 1
        ok = (idx >= 0) & (pos0[sel] < ends[np.clip(idx, 0, None)])
        out[sel[ok]] = rows[idx[ok]]
    return out


def dmr_overlap(truth: pd.DataFrame, dmr: pd.DataFrame) -> np.ndarray:
    """Whether each truth region overlaps a callDMR region (DSS start/end: 1-based, inclusive)."""
    hit = np.zeros(len(truth), dtype=bool)
    for c, reg in truth.groupby("chrom", sort=False):
        d = dmr[dmr["chr"].astype(str) == c].sort_values("start")
        if d.empty:
            continue
        d_start0 = d["start"].to_numpy() - 1
        d_end0 = d["end"].to_numpy()  # exclusive, 0-based
        j = np.searchsorted(d_start0, reg["end"].to_numpy(), side="left") - 1
        ok = (j >= 0) & (d_end0[np.clip(j, 0, None)] > reg["start"].to_numpy())
        hit[reg.index.to_numpy()] = ok
    return hit


def call_stats(called: np.ndarray, label: np.ndarray) -> str:
    n = int(called.sum())
    tp = int((called & label).sum())
    fdr = (n - tp) / n if n else 0.0
    return f"{n} ({tp} TP, FDR {fdr:.3f}, recall {tp / max(label.sum(), 1):.3f})"


def main() -> None:
    d = Path(sys.argv[1])
    truth = pd.read_csv(d / "sim" / "truth.tsv", sep="\t")
    truth["is_dmr"] = truth["is_dmr"].astype(str).str.lower() == "true"
    label = truth["is_dmr"].to_numpy()
    true_delta = truth["true_delta_treated"].to_numpy()
    # second truth: the effect size methvb's calls target, |true delta| > delta0 = 0.1
    big = np.abs(true_delta) > 0.1
    rows = []

    for name, label_txt in (("methvb", "methvb run (structured VB)"),
                            ("methvb_norefit", "methvb run --max-refit 0")):
        mv_path = d / name / "regions.parquet"
        if not mv_path.exists():
            continue
        mv = pd.read_parquet(mv_path)
        mv = truth[["region_id"]].merge(mv, on="region_id", how="left")
        missing = int(mv["prob_dm"].isna().sum())
        p = mv["prob_dm"].fillna(0.0).to_numpy()
        # any-difference evidence, the analogue of DSS's Wald test of delta = 0
        sign = 1.0 - mv["lfsr"].fillna(0.5).to_numpy()
        ok = mv["delta_mean"].notna().to_numpy()
        rmse = float(np.sqrt(np.mean((mv["delta_mean"].to_numpy()[ok] - true_delta[ok]) ** 2)))
        cover = float(np.mean((mv["delta_q025"].to_numpy()[ok] <= true_delta[ok])
                              & (true_delta[ok] <= mv["delta_q975"].to_numpy()[ok])))
        flagged = float(np.mean(~mv["reliable"].fillna(False).to_numpy(bool)))
        wall, rss = wall_rss(d / f"time_{name}.txt")
        rows.append(dict(tool=label_txt, wall_s=wall, rss_mb=rss,
                         auroc=auroc(sign, label), auprc=auprc(sign, label),
                         auprc_alt=auprc(p, label), auroc_big=auroc(p, big),
                         auprc_big=auprc(p, big), rmse=rmse, coverage=cover,
                         calls=call_stats(mv["called"].fillna(False).to_numpy(bool), label),
                         note=(f"score 1-lfsr (alt and big-effect truth: prob_dm); "
                               f"{missing} regions not fitted; {flagged:.0%} flagged by k-hat")))

    for name, label_txt in (("dss_smooth", "DSS DMLtest(smoothing=TRUE)+callDMR"),
                            ("dss_nosmooth", "DSS DMLtest(smoothing=FALSE)+callDMR")):
        dml_path = d / f"{name}.dml.tsv"
        if not dml_path.exists():
            continue
        dml = pd.read_csv(dml_path, sep="\t", dtype={"chr": str})
        region = assign_sites(truth, dml["chr"].to_numpy(), dml["pos"].to_numpy() - 1)
        dml = dml.assign(region=region)
        dml = dml[dml["region"] >= 0]
        stat = dml["stat"].fillna(0.0)
        g = dml.assign(abs_stat=stat.abs(), stat0=stat).groupby("region")
        n_sites = g.size()
        max_abs = g["abs_stat"].max().reindex(range(len(truth)), fill_value=0.0).to_numpy()
        stouffer = (g["stat0"].sum() / np.sqrt(n_sites)).abs()
        stouffer = stouffer.reindex(range(len(truth)), fill_value=0.0).to_numpy()
        mean_diff = g["diff"].mean().reindex(range(len(truth)))
        ok = mean_diff.notna().to_numpy()
        rmse = float(np.sqrt(np.mean((mean_diff.to_numpy()[ok] - true_delta[ok]) ** 2)))
        dmr = pd.read_csv(d / f"{name}.dmr.tsv", sep="\t", dtype={"chr": str})
        hit = dmr_overlap(truth, dmr)
        wall, rss = wall_rss(d / f"time_{name}.txt")
        timing = pd.read_csv(d / f"{name}.timing.tsv", sep="\t").set_index("step")["seconds"]
        rows.append(dict(tool=label_txt, wall_s=wall, rss_mb=rss,
                         auroc=auroc(max_abs, label), auprc=auprc(max_abs, label),
                         auprc_alt=auprc(stouffer, label), auroc_big=auroc(max_abs, big),
                         auprc_big=auprc(max_abs, big), rmse=rmse, coverage=float("nan"),
                         calls=f"{len(dmr)} DMRs; regions hit: " + call_stats(hit, label),
                         note=(f"score max|stat| (alt: Stouffer |sum stat|/sqrt(J)); "
                               f"read {timing['read']:.0f} s, DMLtest {timing['DMLtest']:.0f} s, "
                               f"callDMR {timing['callDMR']:.0f} s")))

    out = pd.DataFrame(rows)
    out.insert(0, "regions", len(truth))
    out.to_csv(d / "metrics.tsv", sep="\t", index=False)
    for r in out.itertuples():
        cov = "-" if np.isnan(r.coverage) else f"{r.coverage:.3f}"
        print(f"| {r.regions} | {r.tool} | {r.wall_s:.1f} | {r.rss_mb:.0f} | {r.auroc:.4f} | "
              f"{r.auprc:.4f} | {r.auprc_alt:.4f} | {r.auroc_big:.4f} | {r.auprc_big:.4f} | {r.rmse:.4f} | {cov} | {r.calls} | {r.note} |")


if __name__ == "__main__":
    main()
