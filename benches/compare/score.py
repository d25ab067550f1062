"""Score methvb and DSS against the simulation truth (see benches/compare/README.md).

Usage: python score.py SIZE_DIR [LABEL]

SIZE_DIR is one dataset's working directory written by run.sh:
  sim/truth.tsv                      truth per region (is_dmr, true_delta_treated)
  methvb/regions.parquet             methvb run output
  methvb_norefit/regions.parquet     methvb run --max-refit 0 output (optional)
  methvb_old/regions.parquet         another methvb version's output (optional)
  dss_smooth.dml.tsv, .dmr.tsv       DSS DMLtest(smoothing=TRUE) + callDMR (optional)
  dss_nosmooth.dml.tsv, .dmr.tsv     DSS DMLtest(smoothing=FALSE) + callDMR
  time_<name>.txt                    /usr/bin/time -v output of each tool run (optional)
Prints Markdown table rows (no header, see HEADER) and writes SIZE_DIR/metrics.tsv.

Metrics (the posterior issue's definitions):
  AUPRC        true DMR (is_dmr) vs not; methvb ranked by prob_dm, DSS by the Stouffer sum
               |sum stat| / sqrt(J) of its DMLtest statistics over the region's CpGs
  AUPRC any    the same, methvb ranked by 1 - p_null (the posterior probability of any
               difference, DSS's question; prob_dm asks |delta| > 0.1); DSS as above
  RMSE         of the region's delta on true DMRs (methvb delta_mean; DSS the mean per-CpG
               diff)
  shrink       mean of |true| - sign(true) * estimate over DMRs with |true delta| > 0.2
               (positive: effects come out smaller)
  coverage     share of true DMRs / of nulls whose true delta is inside the 95% interval
               (methvb delta_q025..q975; DSS mean diff +- 1.96 sqrt(sum se^2) / J)
  calls        methvb `called` (Bayesian FDR 0.05); DSS regions overlapped by callDMR:
               realised FDR (share of calls that are not DMRs), recall of DMRs with
               |true delta| > 0.1
  flagged      methvb regions with reliable = false
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HEADER = (
    "| data | tool | wall s | CPU s | peak RSS MB | AUPRC | AUPRC any | RMSE DMRs | shrink >0.2 | "
    "coverage DMRs / nulls | calls | realised FDR | recall >0.1 | flagged |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


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


def time_log(path: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MB) from a /usr/bin/time -v log (NaN if absent)."""
    if not path.exists():
        return float("nan"), float("nan"), float("nan")
    text = path.read_text()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    parts = [float(p) for p in m.group(1).split(":")] if m else [float("nan")]
    wall = 0.0
    for p in parts:
        wall = wall * 60 + p
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): (\S+)", text))
    r = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    rss = int(r.group(1)) / 1024 if r else float("nan")
    return wall, cpu, rss


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


def metrics(score, est, lo, hi, called, truth, score_any=None) -> dict:
    label = truth["is_dmr"].to_numpy()
    true_delta = truth["true_delta_treated"].to_numpy()
    big = np.abs(true_delta) > 0.1
    large = label & (np.abs(true_delta) > 0.2)
    covered = (lo <= true_delta) & (true_delta <= hi)
    n_calls = int(called.sum())
    return dict(
        auprc=auprc(score, label),
        auprc_any=auprc(score if score_any is None else score_any, label),
        rmse=float(np.sqrt(np.nanmean((est[label] - true_delta[label]) ** 2))),
        shrink=float(np.nanmean(np.abs(true_delta[large]) - np.sign(true_delta[large]) * est[large])),
        cover_dmr=float(np.mean(covered[label])),
        cover_null=float(np.mean(covered[~label])),
        calls=n_calls,
        fdr=float((called & ~label).sum() / n_calls) if n_calls else 0.0,
        recall=float((called & big).sum() / max(big.sum(), 1)),
    )


def main() -> None:
    d = Path(sys.argv[1])
    data_label = sys.argv[2] if len(sys.argv) > 2 else d.name
    truth = pd.read_csv(d / "sim" / "truth.tsv", sep="\t")
    truth["is_dmr"] = truth["is_dmr"].astype(str).str.lower() == "true"
    rows = []

    for name, label_txt in (("methvb", "methvb run"), ("methvb_norefit", "methvb run --max-refit 0"),
                            ("methvb_old", "methvb (OLD_METHVB)")):
        path = d / name / "regions.parquet"
        if not path.exists():
            continue
        mv = truth[["region_id"]].merge(pd.read_parquet(path), on="region_id", how="left")
        m = metrics(
            mv["prob_dm"].fillna(0.0).to_numpy(),
            mv["delta_mean"].to_numpy(),
            mv["delta_q025"].to_numpy(),
            mv["delta_q975"].to_numpy(),
            mv["called"].fillna(False).to_numpy(bool),
            truth,
            (1.0 - mv["p_null"]).fillna(0.0).to_numpy() if "p_null" in mv else None,
        )
        m["flagged"] = float(np.mean(~mv["reliable"].fillna(False).to_numpy(bool)))
        rows.append((label_txt, name, m))

    for name, label_txt in (("dss_nosmooth", "DSS DMLtest(smoothing=FALSE)"),
                            ("dss_smooth", "DSS DMLtest(smoothing=TRUE)")):
        dml_path = d / f"{name}.dml.tsv"
        if not dml_path.exists():
            continue
        dml = pd.read_csv(dml_path, sep="\t", dtype={"chr": str})
        region = assign_sites(truth, dml["chr"].to_numpy(), dml["pos"].to_numpy() - 1)
        dml = dml.assign(region=region)
        dml = dml[dml["region"] >= 0]
        g = dml.assign(stat0=dml["stat"].fillna(0.0), se2=dml["diff.se"] ** 2).groupby("region")
        n_sites = g.size()
        idx = range(len(truth))
        stouffer = (g["stat0"].sum() / np.sqrt(n_sites)).abs().reindex(idx, fill_value=0.0).to_numpy()
        mean_diff = g["diff"].mean().reindex(idx).to_numpy()
        se = (np.sqrt(g["se2"].sum()) / n_sites).reindex(idx).to_numpy()
        dmr_path = d / f"{name}.dmr.tsv"
        dmr = pd.read_csv(dmr_path, sep="\t", dtype={"chr": str}) if dmr_path.exists() else pd.DataFrame()
        called = dmr_overlap(truth, dmr) if len(dmr) else np.zeros(len(truth), dtype=bool)
        m = metrics(stouffer, mean_diff, mean_diff - 1.96 * se, mean_diff + 1.96 * se, called, truth)
        m["flagged"] = float("nan")
        rows.append((label_txt + " + callDMR", name, m))

    out = []
    for label_txt, name, m in rows:
        wall, cpu, rss = time_log(d / f"time_{name}.txt")
        flagged = "-" if np.isnan(m["flagged"]) else f"{m['flagged']:.3f}"
        print(
            f"| {data_label} | {label_txt} | {wall:.1f} | {cpu:.1f} | {rss:.0f} | {m['auprc']:.3f} | "
            f"{m['auprc_any']:.3f} | "
            f"{m['rmse']:.4f} | {m['shrink']:+.4f} | {m['cover_dmr']:.3f} / {m['cover_null']:.3f} | "
            f"{m['calls']} | {m['fdr']:.3f} | {m['recall']:.3f} | {flagged} |"
        )
        out.append(dict(data=data_label, tool=label_txt, wall_s=wall, cpu_s=cpu, rss_mb=rss, **m))
    pd.DataFrame(out).to_csv(d / "metrics.tsv", sep="\t", index=False)
    # The NUTS audit of the methvb run, against the issue's agreement targets.
    run_json = d / "methvb" / "run.json"
    if run_json.exists():
        import json

        v = (json.loads(run_json.read_text()).get("mcmc_check") or {}).get("verdict")
        if v:
            print(f"| {data_label} | NUTS audit of {v['n_regions']} regions | abs(z) of delta <= 0.3: "
                  f"{v['frac_delta_z_within_0_3']:.3f}; abs(prob_dm diff) <= 0.05: "
                  f"{v['frac_prob_dm_within_0_05']:.3f}; off (abs z > 0.5 or prob_dm off by > 0.1): "
                  f"{v['regions_off']}, of them flagged {v['regions_off_flagged']}; flagged "
                  f"{v['regions_flagged']} | | | | | | | | | | | |")


if __name__ == "__main__":
    main()
