"""The smoke study on a real SLURM cluster, through ``profiles/slurm`` as written.

Runs only under ``make test-cluster`` (marker ``cluster``, deselected by default), which
installs SLURM and the executor plugin and brings up the one-node cluster of
``tests/slurm/cluster.sh`` (slurmctld, slurmd, slurmdbd with MariaDB: job states come
from ``sacct`` as on a production cluster). Here a cluster that does not answer is a
failure with the reason, never a skip.

* every ``run_family`` job (and ``fingerprint``, ``baseline``) is submitted with
  ``sbatch`` and COMPLETED in SLURM's accounting; tables, figures and manifest complete;
  each run records the node it ran on and subtracts that node's baseline;
* a job that fails is reported FAILED by SLURM and by Snakemake, which exits instead
  of waiting for ever.

The study is the pipeline tests' seconds-long config (scripted oracle backend, the
simulated RAPL writing a fake powercap tree that the jobs on the node read).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_pipeline import FAMILIES, REPO, SNAKEFILE, simulated_study

pytestmark = pytest.mark.cluster

PROFILE = REPO / "profiles" / "slurm"
# Snakemake's first status query after a submission (the profile waits 20 s; a job here takes ~15 s).
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "2"]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")


def _run(cmd: list[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def cluster() -> dict[str, str]:
    """The running cluster's node; fails (not skips) with the reason when there is none."""
    for tool in ("sinfo", "sbatch", "sacct"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install SLURM with `make cluster-deps` (make test-cluster does)")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is missing: .venv/bin/pip install -e '.[cluster]'")
    info = _run(["sinfo", "-h", "-o", "%N %T %c"], timeout=30)
    if info.returncode != 0 or not info.stdout.strip():
        pytest.fail(f"no SLURM cluster answers (start one: tests/slurm/cluster.sh up): {info.stderr.strip()}")
    node, state, cpus = info.stdout.split()[:3]
    if state.rstrip("*") not in ("idle", "mixed", "allocated"):
        pytest.fail(f"node {node} is {state}; see {REPO}/tests/slurm/cluster.sh status and its logs")
    acct = _run(["sacct", "-n", "-X", "-o", "JobID"], timeout=30)
    if acct.returncode != 0:
        pytest.fail(f"sacct fails (no accounting storage?): {acct.stderr.strip()}")
    return {"node": node, "cpus": cpus}


def snakemake_slurm(workdir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--directory",
        str(workdir),
        "--profile",
        str(PROFILE),
        *FAST_STATUS,
    ]
    try:
        return _run([*cmd, *args], timeout=timeout, cwd=workdir)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"snakemake on the cluster hung for {timeout:.0f} s:\n{out[-3000:]}")


def sacct_jobs(ids: list[str]) -> dict[str, dict[str, str]]:
    """SLURM's accounting records of the given allocations: comment (Snakemake's rule), state, exit code, node, CPUs."""
    fields = ["JobID", "Comment", "State", "ExitCode", "NodeList", "AllocCPUS"]
    res = _run(["sacct", "-n", "-X", "-P", "-j", ",".join(ids), "-o", ",".join(fields)], timeout=30)
    assert res.returncode == 0, res.stderr
    rows = [line.split("|") for line in res.stdout.splitlines() if line.strip()]
    return {r[0]: dict(zip(["comment", "state", "exit", "node", "cpus"], r[1:], strict=True)) for r in rows}


@pytest.fixture(scope="module")
def cluster_run(cluster: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("cluster")
    with simulated_study(work) as (cf, _, _):
        res = snakemake_slurm(work, "all", "-s", str(SNAKEFILE), "--configfile", str(cf), timeout=420)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]
    ids = SUBMITTED.findall(log)
    return {"work": work, "log": log, "jobs": sacct_jobs(ids), "ids": ids, **cluster}


def test_every_measurement_job_ran_through_sbatch(cluster_run: dict[str, Any]) -> None:
    jobs = cluster_run["jobs"]
    assert sorted(jobs) == sorted(cluster_run["ids"]), "sacct lacks a submitted job"
    comments = sorted(j["comment"] for j in jobs.values())
    want = sorted(
        ["rule_fingerprint", "rule_baseline"] + [f"rule_run_family_wildcards_{f}_0" for f in FAMILIES]
    )
    assert comments == want
    for j in jobs.values():
        assert (j["state"], j["exit"], j["node"]) == ("COMPLETED", "0:0", cluster_run["node"]), j
        if j["comment"].startswith(("rule_baseline", "rule_run_family")):  # --exclusive: the whole node
            assert j["cpus"] == cluster_run["cpus"], j
    log = cluster_run["log"]
    for rule in ("fingerprint", "baseline", "run_family"):
        assert f"localrule {rule}:" not in log  # nothing measured or probed outside SLURM
    for rule in ("tables", "figures", "manifest"):
        assert f"localrule {rule}:" in log


def test_outputs_complete_and_each_run_used_its_nodes_baseline(cluster_run: dict[str, Any]) -> None:
    r = cluster_run["work"] / "results"
    manifest = json.loads((r / "manifest.json").read_text())
    listed = json.dumps(manifest)
    for name in ("tables/goals.csv", "tables/epg.csv", "tables/ooi.csv", "baseline/idle.json"):
        assert (r / name).stat().st_size > 0 and name in listed
    for stem in (
        "fig1_epg",
        "fig2_ooi_forest",
        "fig3_phases",
        "fig4_power_timeline",
        "fig5_success_vs_energy",
        "fig6_idle_baseline",
    ):
        for ext in ("png", "pdf"):
            assert (r / "figures" / f"{stem}.{ext}").stat().st_size > 0 and f"figures/{stem}.{ext}" in listed
    host = socket.gethostname()  # the one node is this machine
    ref = json.loads((r / "baseline" / "idle.json").read_text())
    assert ref["host"] == host and ref["meter"] == "rapl"
    for fam in FAMILIES:
        meta = json.loads((r / "runs" / fam / "rep0" / "run.json").read_text())
        assert meta["host"] == host and meta["baseline"]["host"] == host
        assert (
            meta["baseline"]["origin"] == "reference"
            and meta["baseline"]["baseline_id"] == ref["baseline_id"]
        )
        # the profile's 4 threads, capped by the job's Snakemake at this machine's cores
        assert (
            meta["executions"] == 6
            and meta["meter"] == "rapl"
            and meta["threads"] == min(4, os.cpu_count() or 1)
        )
    for name in ("epg", "ooi"):
        assert "host" not in (r / "tables" / f"{name}.csv").read_text()  # no baseline_*host flag


FAILING = """
rule all:
    input:
        "ok.txt",
        "fail.txt",


rule ok:
    output:
        "ok.txt",
    shell:
        "echo fine > {output}"


rule fail:
    output:
        "fail.txt",
    shell:
        "echo failing on purpose; exit 3"
"""


def test_a_failing_job_is_reported_failed_not_hung(cluster: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(FAILING)
    res = snakemake_slurm(tmp_path, "-s", str(tmp_path / "Snakefile"), "--keep-going", "all", timeout=240)
    log = res.stdout + res.stderr
    assert res.returncode != 0, log[-3000:]
    assert "Error in rule fail" in log and "SLURM status is: 'FAILED'" in log, log[-3000:]
    assert (tmp_path / "ok.txt").read_text() == "fine\n"  # the other job finished on the cluster
    jobs = sacct_jobs(SUBMITTED.findall(log))
    assert {j["comment"]: (j["state"], j["exit"]) for j in jobs.values()} == {
        "rule_ok": ("COMPLETED", "0:0"),
        "rule_fail": ("FAILED", "1:0"),  # the job step (Snakemake) exits 1 when its rule fails
    }
