"""The Snakemake workflow for real on SLURM: a one-node cluster on this machine.

`scripts/slurm-local.sh start` installs (Debian: slurm-wlm, slurmdbd, munge, mariadb-server)
and starts munged, MariaDB, slurmdbd, slurmctld and slurmd; then the workflow runs with the
SLURM profile of pipelines/profiles/slurm (snakemake-executor-plugin-slurm: every job is an
sbatch job, its state read with sacct) and its gathered table must equal `methvb run`'s.

The cluster needs root (it starts system daemons). Where it cannot be had, the test FAILS with
the reason; only METHVB_SKIP_SLURM=1 turns that into a skip, printed on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Dataset, Run, assert_gathered_equals_run, base_config, snakemake

SLURM_PROFILE = REPO / "pipelines" / "profiles" / "slurm"
SLURM_UP = REPO / "scripts" / "slurm-local.sh"


@pytest.fixture(scope="module")
def cluster() -> None:
    why = None
    if os.geteuid() != 0:
        why = "not root: scripts/slurm-local.sh starts system daemons"
    else:
        proc = subprocess.run([str(SLURM_UP), "start"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            why = f"scripts/slurm-local.sh start failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
    if why is None:
        return
    if os.environ.get("METHVB_SKIP_SLURM") == "1":
        print(f"\nSKIPPED the SLURM workflow test (METHVB_SKIP_SLURM=1): {why}", file=sys.stderr)
        pytest.skip(why)
    pytest.fail(f"no SLURM cluster for the workflow test: {why}\n"
                "(set METHVB_SKIP_SLURM=1 to skip this test on a machine without root)")


@pytest.fixture(scope="module")
def slurm_run(cluster, methvb: Path, dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("slurm")
    config = base_config(methvb, dataset) | {
        "resources": {
            "hyper": {"mem_mb": 1000, "runtime": 10},
            "fit": {"mem_mb": 1000, "runtime": 10},
            "gather": {"mem_mb": 500, "runtime": 5},
        },
    }
    snakemake(
        work, config, "--profile", SLURM_PROFILE,
        # Status by sacct (job accounting), polled often: the jobs take seconds here.
        "--slurm-status-command", "sacct",
        "--slurm-init-seconds-before-status-checks", "5",
        "--seconds-between-status-checks", "5",
        "--slurm-keep-successful-logs",
    )
    return work


def test_workflow_on_slurm_equals_run(slurm_run: Path, dataset: Dataset, reference_run: Run) -> None:
    assert_gathered_equals_run(slurm_run, dataset, reference_run)
    # Every rule ran as a SLURM job: the plugin keeps one log per job, named by its job id.
    logs = slurm_run / ".snakemake" / "slurm_logs"
    ran = {p.parent.name if p.parent.name.startswith("rule_") else p.parent.parent.name
           for p in logs.rglob("*.log")}
    assert ran == {"rule_hyper", "rule_fit", "rule_gather"}, ran
    job_ids = [p.stem for p in logs.rglob("*.log")]
    assert len(job_ids) == 1 + len(dataset.contigs()) + 1
    # And SLURM's accounting knows them as completed.
    proc = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
                          capture_output=True, text=True, check=True)
    states = dict(line.split("|", 1) for line in proc.stdout.split())
    assert states == {j: "COMPLETED" for j in job_ids}, states
