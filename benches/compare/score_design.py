"""Score the design comparison of design.sh against the simulation truth (README.md, "Designs").

Usage: python score_design.py SET_DIR [LABEL [DESIGN_FLAGS]]

SET_DIR is one dataset's working directory written by design.sh:
  sim/truth.tsv                          truth per region (is_dmr, true_delta_treated, and for
                                         a batch design has_batch_effect)
  dss_nodesign.dml.tsv, .dmr.tsv         DSS DMLtest.multiFactor with ~ group (+ callDMR)
  dss_design.dml.tsv, .dmr.tsv           the same with ~ group + batch / ~ group + donor
  methvb_nodesign/regions.parquet        methvb run
  methvb_design/regions.parquet          methvb run with the design flags (optional)
  time_<name>.txt                        /usr/bin/time -v of each tool (optional)
DESIGN_FLAGS names methvb_design's flags in the table (default --covariates batch or
--pair-by donor, by the dataset's truth). Prints a Markdown table and writes
SET_DIR/design_metrics.tsv.

Metrics (score.py's definitions where they exist):
  AUPRC        true DMR (is_dmr) vs not; methvb ranked by prob_dm, DSS by the Stouffer sum
               |sum stat| / sqrt(J) of its per-CpG statistics of the group coefficient
  AUPRC any    methvb ranked by 1 - p_null (any difference); DSS as above
  calls        methvb `called`; DSS regions overlapped by a callDMR region (defaults)
  FDR          realised FDR of the calls (share that are not DMRs)
  recall       share of DMRs with |true delta| > 0.1 called
  batch FP     calls on null regions with a batch effect (batch design only)
  coverage     methvb: share of true DMRs whose true delta is in [delta_q025, delta_q975]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from score import assign_sites, auprc, dmr_overlap, time_log

HEADER = (
    "| data | tool | wall s | CPU s | AUPRC | AUPRC any | calls | FDR | recall >0.1 | batch FP | "
    "coverage DMRs |\n|---|---|---|---|---|---|---|---|---|---|---|"
)

TOOLS = (
    ("dss_nodesign", "DSS multiFactor ~ group"),
    ("dss_design", "DSS multiFactor ~ group + {term}"),
    ("methvb_nodesign", "methvb run"),
    ("methvb_design", "methvb run {flags}"),
)


def call_metrics(called: np.ndarray, truth: pd.DataFrame) -> dict:
    label = truth["is_dmr"].to_numpy()
    big = label & (np.abs(truth["true_delta_treated"].to_numpy()) > 0.1)
    n_calls = int(called.sum())
    out = dict(
        calls=n_calls,
        fdr=float((called & ~label).sum() / n_calls) if n_calls else 0.0,
        recall=float((called & big).sum() / max(big.sum(), 1)),
        batch_fp=float("nan"),
    )
    if "has_batch_effect" in truth:
        out["batch_fp"] = int((called & ~label & truth["has_batch_effect"].to_numpy()).sum())
    return out


def dss(d: Path, name: str, truth: pd.DataFrame) -> dict | None:
    path = d / f"{name}.dml.tsv"
    if not path.exists():
        return None
    dml = pd.read_csv(path, sep="\t", dtype={"chr": str})
    region = assign_sites(truth, dml["chr"].to_numpy(), dml["pos"].to_numpy() - 1)
    dml = dml.assign(region=region, stat0=dml["stat"].fillna(0.0))
    g = dml[dml["region"] >= 0].groupby("region")
    stouffer = (g["stat0"].sum() / np.sqrt(g.size())).abs()
    score = stouffer.reindex(range(len(truth)), fill_value=0.0).to_numpy()
    label = truth["is_dmr"].to_numpy()
    dmr_path = d / f"{name}.dmr.tsv"
    dmr = pd.read_csv(dmr_path, sep="\t", dtype={"chr": str}) if dmr_path.exists() else pd.DataFrame()
    called = dmr_overlap(truth, dmr) if len(dmr) else np.zeros(len(truth), dtype=bool)
    return dict(auprc=auprc(score, label), auprc_any=auprc(score, label), coverage=float("nan"),
                **call_metrics(called, truth))


def methvb(d: Path, name: str, truth: pd.DataFrame) -> dict | None:
    path = d / name / "regions.parquet"
    if not path.exists():
        return None
    mv = truth[["region_id"]].merge(pd.read_parquet(path), on="region_id", how="left")
    label = truth["is_dmr"].to_numpy()
    true_delta = truth["true_delta_treated"].to_numpy()
    covered = (mv["delta_q025"].to_numpy() <= true_delta) & (true_delta <= mv["delta_q975"].to_numpy())
    return dict(
        auprc=auprc(mv["prob_dm"].fillna(0.0).to_numpy(), label),
        auprc_any=auprc((1.0 - mv["p_null"]).fillna(0.0).to_numpy(), label),
        coverage=float(np.mean(covered[label])),
        **call_metrics(mv["called"].fillna(False).to_numpy(bool), truth),
    )


def main() -> None:
    d = Path(sys.argv[1])
    data_label = sys.argv[2] if len(sys.argv) > 2 else d.name
    truth = pd.read_csv(d / "sim" / "truth.tsv", sep="\t")
    for col in ("is_dmr", "has_batch_effect"):
        if col in truth:
            truth[col] = truth[col].astype(str).str.lower() == "true"
    term = "batch" if "has_batch_effect" in truth else "donor"
    default_flags = "--covariates batch" if term == "batch" else "--pair-by donor"
    flags = sys.argv[3] if len(sys.argv) > 3 else default_flags
    print(HEADER)
    out = []
    for name, label_txt in TOOLS:
        m = (dss if name.startswith("dss") else methvb)(d, name, truth)
        if m is None:
            continue
        label_txt = label_txt.format(term=term, flags=flags)
        wall, cpu, _ = time_log(d / f"time_{name}.txt")
        batch_fp = "-" if np.isnan(m["batch_fp"]) else f"{m['batch_fp']:.0f}"
        coverage = "-" if np.isnan(m["coverage"]) else f"{m['coverage']:.3f}"
        print(
            f"| {data_label} | {label_txt} | {wall:.1f} | {cpu:.1f} | {m['auprc']:.3f} | "
            f"{m['auprc_any']:.3f} | {m['calls']} | {m['fdr']:.3f} | {m['recall']:.3f} | "
            f"{batch_fp} | {coverage} |"
        )
        out.append(dict(data=data_label, tool=label_txt, wall_s=wall, cpu_s=cpu, **m))
    pd.DataFrame(out).to_csv(d / "design_metrics.tsv", sep="\t", index=False)


if __name__ == "__main__":
    main()
