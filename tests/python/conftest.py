"""Shared fixtures: the methvb binary, one simulated dataset and one `methvb run` on it.

The binary is $METHVB (default: target/debug/methvb of this checkout). The dataset is the first
of: the directory $METHVB_TEST_DATA; the checkout's test-data/ (written by `methvb simulate`,
BGZF bedMethyl with both strands) when it holds samples.tsv, regions.bed and truth.tsv; else a
dataset simulated into a temporary directory with a fixed seed.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "pipelines" / "Snakefile"

# Settings of the simulated dataset and of the reference run. The workflow test fits the same
# data with the same seed and options, so its gathered table must equal this run's.
SIM_REGIONS = 300
SIM_SEED = 20261125
RUN_SEED = 7


def run_cmd(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs a command, failing the test with its output if it exits non-zero."""
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(map(str, args))}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


@dataclass(frozen=True)
class Dataset:
    """A methvb input dataset."""

    dir: Path
    samples: Path
    regions: Path
    truth: Path

    def groups(self) -> dict[str, list[str]]:
        """Group -> sample names, groups in sheet order (the reference group first)."""
        groups: dict[str, list[str]] = {}
        with open(self.samples, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                groups.setdefault(row["group"], []).append(row["sample"])
        return groups

    def contigs(self) -> list[str]:
        """Contigs of the regions BED in file order."""
        seen: list[str] = []
        with open(self.regions) as fh:
            for line in fh:
                chrom = line.split("\t", 1)[0]
                if line.strip() and chrom not in seen:
                    seen.append(chrom)
        return seen


@dataclass(frozen=True)
class Run:
    """Outputs of one `methvb run`."""

    dir: Path
    regions: Path
    hyper: Path
    run_json: Path

    def info(self) -> dict:
        return json.loads(self.run_json.read_text())

    def hyper_info(self) -> dict:
        return json.loads(self.hyper.read_text())


@pytest.fixture(scope="session")
def methvb() -> Path:
    path = Path(os.environ.get("METHVB", REPO / "target" / "debug" / "methvb"))
    if not path.is_absolute():
        path = (REPO / path).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"methvb binary not found at {path}: build it with `cargo build -p methvb-cli` "
            "or set METHVB"
        )
    return path


@pytest.fixture(scope="session")
def dataset(methvb: Path, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    given = os.environ.get("METHVB_TEST_DATA")
    shipped = REPO / "test-data"
    if given:
        d = Path(given).resolve()
    elif all((shipped / f).is_file() for f in ("samples.tsv", "regions.bed", "truth.tsv")):
        d = shipped
    else:
        d = tmp_path_factory.mktemp("sim")
        run_cmd([methvb, "--quiet", "simulate", "--out", d, "--regions", SIM_REGIONS, "--seed", SIM_SEED])
    ds = Dataset(dir=d, samples=d / "samples.tsv", regions=d / "regions.bed", truth=d / "truth.tsv")
    for f in (ds.samples, ds.regions, ds.truth):
        if not f.is_file():
            pytest.fail(f"test dataset incomplete: {f} is missing")
    return ds


@pytest.fixture(scope="session")
def reference_run(methvb: Path, dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("run")
    run_cmd(
        [methvb, "--quiet", "run", "--samples", dataset.samples, "--regions", dataset.regions,
         "--out", out, "--seed", RUN_SEED]
    )
    run = Run(dir=out, regions=out / "regions.parquet", hyper=out / "hyper.json", run_json=out / "run.json")
    for f in (run.regions, run.hyper, run.run_json):
        assert f.is_file(), f"methvb run did not write {f}"
    return run


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True):
    """Runs snakemake on the workflow with a config written into `workdir`."""
    cfg = workdir / "config.yaml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    cmd = [sys.executable, "-m", "snakemake", "-s", SNAKEFILE, "--configfile", cfg,
           "--directory", workdir, *args]
    if check:
        return run_cmd(cmd)
    return subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL, capture_output=True, text=True)


def base_config(methvb: Path, dataset: Dataset) -> dict:
    return {
        "methvb": str(methvb),
        "samples": str(dataset.samples),
        "regions": {"bed": str(dataset.regions), "tile": None},
        "chromosomes": dataset.contigs(),
        "seed": RUN_SEED,
        "threads": 2,
    }


def assert_gathered_equals_run(workdir: Path, dataset: Dataset, reference_run: Run) -> None:
    """The workflow's shards and gathered table in `workdir/results` against `methvb run`'s."""
    assert dataset.contigs() == ["chr1", "chr2", "chr3"]
    for chrom in dataset.contigs():
        shard = pq.read_table(workdir / "results" / "shards" / f"{chrom}.parquet")
        assert shard.num_rows > 0 and set(shard.column("chrom").to_pylist()) == {chrom}
    gathered = pq.read_table(workdir / "results" / "regions.parquet")
    reference = pq.read_table(reference_run.regions)
    assert gathered.schema.equals(reference.schema)
    assert gathered.num_rows == reference.num_rows == reference_run.info()["pass2"]["pass"]["regions_used"]
    for name in reference.column_names:
        assert gathered.column(name).equals(reference.column(name)), name
    assert gathered.equals(reference)
    # The file metadata differs only in the command line.
    meta_g = pq.read_metadata(workdir / "results" / "regions.parquet").metadata
    meta_r = pq.read_metadata(reference_run.regions).metadata
    strip = lambda m: {k: v for k, v in m.items() if k.startswith(b"methvb.") and k != b"methvb.command"}
    assert strip(meta_g) == strip(meta_r)
    assert b" gather " in meta_g[b"methvb.command"]
