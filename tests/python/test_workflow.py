"""The Snakemake workflow (pipelines/Snakefile): hyper -> fit per chromosome -> gather.

Runs it with the local profile on the simulated dataset and checks that the gathered table
equals the one of a single `methvb run` with the same seed, row for row and column for column.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml  # PyYAML, a dependency of snakemake

from conftest import (
    REPO, RUN_SEED, SNAKEFILE, Dataset, Run, assert_gathered_equals_run, base_config, run_cmd,
    snakemake,
)

LOCAL_PROFILE = REPO / "pipelines" / "profiles" / "local"


@pytest.fixture(scope="module")
def workflow_run(methvb: Path, dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("workflow")
    snakemake(work, base_config(methvb, dataset), "--profile", LOCAL_PROFILE, "--cores", "2")
    return work


def test_gathered_table_equals_run(workflow_run: Path, dataset: Dataset, reference_run: Run) -> None:
    assert_gathered_equals_run(workflow_run, dataset, reference_run)


def test_hyper_json_equals_run(workflow_run: Path, reference_run: Run) -> None:
    wf = json.loads((workflow_run / "results" / "hyper.json").read_text())
    ref = reference_run.hyper_info()
    assert wf["theta"] == ref["theta"] == reference_run.info()["theta"]
    assert wf["seed"] == ref["seed"] == RUN_SEED
    # The amortised start of the fits is learned with Theta: every shard starts from the same.
    assert wf.get("start") == ref.get("start")


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
        assert text.count(resource) == 4, resource  # hyper, fit, dmr and gather


def test_dmr_mode_gathers_the_dmrs_of_one_dmr_run(methvb: Path, dataset: Dataset, tmp_path: Path) -> None:
    """mode: dmr: hyper once, `methvb dmr --chrom` per chromosome, gather; the gathered
    dmrs.parquet equals the one of a single `methvb dmr` with the same seed."""
    config = base_config(methvb, dataset) | {"mode": "dmr", "regions": {"bed": "", "tile": None}}
    snakemake(tmp_path, config, "--profile", LOCAL_PROFILE, "--cores", "2")
    single = tmp_path / "single"
    run_cmd([methvb, "--quiet", "dmr", "--samples", dataset.samples, "--seed", str(RUN_SEED),
             "--fdr", "0.05", "--out", single])
    gathered = pq.read_table(tmp_path / "results" / "dmrs.parquet")
    reference = pq.read_table(single / "dmrs.parquet")
    assert reference.num_rows > 0
    assert gathered.schema.equals(reference.schema)
    assert gathered.equals(reference)
    for chrom in dataset.contigs():
        shard = tmp_path / "results" / "dmr_shards" / chrom
        assert (shard / "cpgs.parquet").is_file() and (shard / "dmrs.bed").is_file()
    wf = json.loads((tmp_path / "results" / "hyper.json").read_text())
    ref = json.loads((single / "hyper.json").read_text())
    assert wf["theta"] == ref["theta"]


def test_dmr_mode_with_regions_is_refused(methvb: Path, dataset: Dataset, tmp_path: Path) -> None:
    config = base_config(methvb, dataset) | {"mode": "dmr"}
    proc = snakemake(tmp_path, config, "--dry-run", "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "mode dmr scans CpG clusters" in proc.stdout + proc.stderr
