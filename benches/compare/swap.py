"""The reference swap (the posterior issue's symmetry target): two methvb runs of the same data
with the two groups named reference in turn. Prints the share of regions with
|delta_1 + delta_2| > 0.05, the largest |delta_1 + delta_2|, the largest prob_dm difference and
the calls made in one run only, as a Markdown table row.

Usage: python swap.py RUN1/regions.parquet RUN2/regions.parquet
"""

from __future__ import annotations

import sys

import pandas as pd


def main() -> None:
    a = pd.read_parquet(sys.argv[1])
    b = pd.read_parquet(sys.argv[2])
    d = a.merge(b, on="region_id", suffixes=("_1", "_2"))
    s = (d["delta_mean_1"] + d["delta_mean_2"]).abs()
    flips = int((d["called_1"] != d["called_2"]).sum())
    calls = int(d["called_1"].sum() + d["called_2"].sum()) / 2
    print("| regions | abs(d1 + d2) > 0.05 | max abs(d1 + d2) | max abs prob_dm difference | "
          "calls (run 1 / run 2) | called in one run only |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(d)} | {(s > 0.05).mean():.4f} | {s.max():.3g} | "
          f"{(d['prob_dm_1'] - d['prob_dm_2']).abs().max():.3g} | "
          f"{int(d['called_1'].sum())} / {int(d['called_2'].sum())} | "
          f"{flips} ({flips / max(calls, 1):.1%}) |")


if __name__ == "__main__":
    main()
