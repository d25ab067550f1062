"""The Snakemake workflow (pipelines/Snakefile): hyper -> fit per chromosome -> gather.

Runs it with the local profile on the simulated dataset and checks that the gathered table
equals the one of a single `methvb run` with the same seed, row for row and column for column.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml  # PyYAML, a dependency of snakemake

from conftest import REPO, RUN_SEED, Dataset, Run, run_cmd

SNAKEFILE = REPO / "pipelines" / "Snakefile"
LOCAL_PROFILE = REPO / "pipelines" / "profiles" / "local"


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


@pytest.fixture(scope="module")
def workflow_run(methvb: Path, dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("workflow")
    snakemake(work, base_config(methvb, dataset), "--profile", LOCAL_PROFILE, "--cores", "2")
    return work


def test_gathered_table_equals_run(workflow_run: Path, dataset: Dataset, reference_run: Run) -> None:
    assert dataset.contigs() == ["chr1", "chr2", "chr3"]
    for chrom in dataset.contigs():
        shard = pq.read_table(workflow_run / "results" / "shards" / f"{chrom}.parquet")
        assert shard.num_rows > 0 and set(shard.column("chrom").to_pylist()) == {chrom}
    gathered = pq.read_table(workflow_run / "results" / "regions.parquet")
    reference = pq.read_table(reference_run.regions)
    assert gathered.schema.equals(reference.schema)
    assert gathered.num_rows == reference.num_rows == reference_run.info()["pass2"]["pass"]["regions_used"]
    for name in reference.column_names:
        assert gathered.column(name).equals(reference.column(name)), name
    assert gathered.equals(reference)
    # The file metadata differs only in the command line.
    meta_g = pq.read_metadata(workflow_run / "results" / "regions.parquet").metadata
    meta_r = pq.read_metadata(reference_run.regions).metadata
    strip = lambda m: {k: v for k, v in m.items() if k.startswith(b"methvb.") and k != b"methvb.command"}
    assert strip(meta_g) == strip(meta_r)
    assert b" gather " in meta_g[b"methvb.command"]


def test_hyper_json_equals_run(workflow_run: Path, reference_run: Run) -> None:
    wf = json.loads((workflow_run / "results" / "hyper.json").read_text())
    ref = reference_run.hyper_info()
    assert wf["theta"] == ref["theta"] == reference_run.info()["theta"]
    assert wf["seed"] == ref["seed"] == RUN_SEED


def test_logs_and_rerun_is_a_no_op(workflow_run: Path, methvb: Path, dataset: Dataset) -> None:
    logs = workflow_run / "results" / "logs"
    assert "Theta learned" in (logs / "hyper.log").read_text()
    for chrom in dataset.contigs():
        assert "regions fitted" in (logs / "fit" / f"{chrom}.log").read_text()
    assert "methvb gather" in (logs / "gather.log").read_text()
    proc = snakemake(workflow_run, base_config(methvb, dataset), "--cores", "1")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_dry_run_with_tiles_and_contig_index(methvb: Path, dataset: Dataset, tmp_path: Path) -> None:
    fai = tmp_path / "genome.fa.fai"
    fai.write_text("chr1\t50000000\t6\t60\t61\nchr2\t50000000\t0\t60\t61\nchr3\t50000000\t0\t60\t61\n")
    config = base_config(methvb, dataset) | {
        "regions": {"bed": "", "tile": 1000},
        "chromosomes": [],
        "contigs": str(fai),
        "extra": "--min-cov 2",
        "outdir": "out",
    }
    proc = snakemake(tmp_path, config, "--dry-run", "--printshellcmds", "--cores", "1")
    text = proc.stdout + proc.stderr
    for chrom in ("chr1", "chr2", "chr3"):
        assert f"--chrom {chrom} --out out/shards/{chrom}.parquet" in text
    assert "--tile 1000" in text and f"--contigs {fai}" in text and "--min-cov 2" in text
    assert "--regions" not in text
    assert "gather --threads 1 --fdr 0.05 --out out/regions.parquet out/shards/chr1.parquet " \
           "out/shards/chr2.parquet out/shards/chr3.parquet" in text


def test_config_with_both_bed_and_tile_is_refused(methvb: Path, dataset: Dataset, tmp_path: Path) -> None:
    config = base_config(methvb, dataset) | {"regions": {"bed": str(dataset.regions), "tile": 500}}
    proc = snakemake(tmp_path, config, "--dry-run", "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "regions.bed or regions.tile, not both" in proc.stdout + proc.stderr


def test_slurm_profile_is_valid_yaml_with_resources() -> None:
    profile = yaml.safe_load((REPO / "pipelines" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
    assert int(profile["jobs"]) > 0
    text = SNAKEFILE.read_text()
    for resource in ("mem_mb=", "runtime=", "cpus_per_task="):
        assert text.count(resource) == 3, resource  # hyper, fit and gather
