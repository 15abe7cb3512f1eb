"""The smoke study on a real SLURM cluster, through ``profiles/slurm`` as written.

Runs only under ``make test-cluster`` (marker ``cluster``, deselected by default), which
installs SLURM and the executor plugin and brings up ``tests/slurm/cluster.sh up --nodes 3``:
slurmctld, slurmdbd with MariaDB (job states come from ``sacct`` as on a production
cluster) and three slurmd nodes ``alems-n1..3``, each in its own network and UTS namespace
with its own host name and address, all sharing this machine's file system and CPUs. Here
a cluster that does not answer is a failure with the reason, never a skip; only where
the kernel refused the namespaces (``cluster.sh`` then starts one node and says why) are
the multi-node tests skipped, with that reason.

The first study (any number of nodes):

* every ``run_family`` job (and ``fingerprint``, ``baseline``) is submitted with
  ``sbatch`` and COMPLETED in SLURM's accounting; tables, figures and manifest complete,
  and ``alems verify`` passes on the manifest;
* each run records the node it ran on (``run.json``'s ``host`` = ``sacct``'s NodeList) and
  subtracts that node's baseline, with the origin the rules give: ``reference`` on the
  node the ``baseline`` rule ran on, else ``measured`` (no cache yet), and every node that
  measured has its cache file under ``resources/baseline/hosts/``;
* a job that fails is reported FAILED by SLURM and by Snakemake, which exits instead
  of waiting for ever.

On three nodes also:

* the two ``run_family`` jobs of the first study ran on two different nodes at once
  (``--exclusive``: one measurement per node), and the test prints where every job ran;
* a second study, sharing the first's ``resources/`` as studies in one checkout do,
  reuses the nodes' caches: its ``baseline`` rule (pinned to the first's reference node)
  reuses that node's cache, and its ``run_family`` jobs (there and on another cached node)
  take the reference or their node's cache (``host cache``), within ``baseline.max_age_s``;
  nothing is measured again;
* a ``run.json`` edited to name another host's baseline is refused by the tables rule,
  with both host names in the message;
* a baseline taken on a busy node is ``unstable`` and its rows are flagged: a third
  study, pinned to the one node the second leaves free, runs while CPU burners started
  inside that node's namespaces keep it busy from the start of its ``baseline`` job until
  that job's ``idle.json`` exists. The nodes share the CPUs and ``/proc/stat``, so the load is
  the machine's, exactly as a busy node's load is its own: the test checks that the
  burners ran in that node's namespaces for the whole of the baseline windows (their
  monotonic times), that every attempt was judged busy (``host_util`` above the
  study's ``max_host_util``), and that the tables flag the rows ``baseline_unstable``.
  It runs at the same time as the second study, on the other nodes, whose baselines
  all come from caches and so do not depend on the load.

The studies are the pipeline tests' seconds-long config (scripted oracle backend, the
simulated RAPL writing a fake powercap tree that the jobs on every node read).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_pipeline import FAMILIES, REPO, SNAKEFILE, simulated_study

pytestmark = pytest.mark.cluster

PROFILE = REPO / "profiles" / "slurm"
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
SLURM_DIR = Path(os.environ.get("ALEMS_SLURM_DIR", "/tmp/alems-slurm"))
ALEMS = Path(sys.executable).parent / "alems"
# Snakemake's first status query after a submission (the profile waits 20 s; a job here takes ~15 s).
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "2"]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")
CACHES = Path("resources") / "baseline" / "hosts"
# The machine is shared by the tests, the nodes and the simulated RAPL: the studies that test
# placement and reuse do not judge stability (the busy-node study does, with its own protocol).
LENIENT = {"cv_threshold": 1.0, "max_host_util": 1.0}
BUSY_MAX_HOST_UTIL = 0.75
STUDY_TIMEOUT_S = 420


def _run(cmd: list[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@dataclass(frozen=True)
class Cluster:
    cpus: dict[str, str]  # node -> CPUs, as sinfo reports them

    @property
    def nodes(self) -> list[str]:
        return sorted(self.cpus)


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    """The running cluster's nodes; fails (not skips) with the reason when there is none."""
    for tool in ("sinfo", "sbatch", "sacct"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install SLURM with `make cluster-deps` (make test-cluster does)")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is missing: .venv/bin/pip install -e '.[cluster]'")
    info = _run(["sinfo", "-h", "-N", "-o", "%N %T %c"], timeout=30)
    if info.returncode != 0 or not info.stdout.strip():
        pytest.fail(f"no SLURM cluster answers (start one: tests/slurm/cluster.sh up): {info.stderr.strip()}")
    rows = [line.split() for line in info.stdout.splitlines() if line.strip()]
    for node, state, _ in rows:
        if state.rstrip("*") not in ("idle", "mixed", "allocated"):
            pytest.fail(f"node {node} is {state}; see {CLUSTER_SH} status and its logs")
    acct = _run(["sacct", "-n", "-X", "-o", "JobID"], timeout=30)
    if acct.returncode != 0:
        pytest.fail(f"sacct fails (no accounting storage?): {acct.stderr.strip()}")
    return Cluster({node: cpus for node, _, cpus in rows})


@pytest.fixture(scope="module")
def three_nodes(cluster: Cluster) -> Cluster:
    """The cluster, if it has the three nodes the multi-node tests need; else skip, saying why."""
    if len(cluster.nodes) >= 3:
        return cluster
    refused = SLURM_DIR / "multinode.refused"
    if refused.exists():
        pytest.skip(refused.read_text().strip())
    pytest.skip(
        f"the cluster has {len(cluster.nodes)} node(s) ({', '.join(cluster.nodes)}); "
        f"`{CLUSTER_SH} up --nodes 3` starts the three these tests need (make test-cluster does)"
    )


# --------------------------------------------------------------------------- running studies
class SlurmSnakemake:
    """Snakemake through ``profiles/slurm`` in ``workdir``, in the background; its output in a file."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.out = workdir.parent / f"{workdir.name}.snakemake.log"
        # --workflow-profile, not --profile: with --profile, Snakemake also loads profiles/default
        # as the workflow profile, and its energy_meter=1 would win over this profile's 8.
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--directory",
            str(workdir),
            "--workflow-profile",
            str(PROFILE),
        ]
        with self.out.open("w") as fh:
            self.proc = subprocess.Popen(
                [*cmd, *FAST_STATUS, *args], stdout=fh, stderr=subprocess.STDOUT, cwd=workdir
            )
        self.deadline = time.monotonic() + STUDY_TIMEOUT_S

    def poll(self) -> bool:
        """Still running; fails the test (stopping Snakemake) past the deadline."""
        if self.proc.poll() is not None:
            return False
        if time.monotonic() > self.deadline:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"snakemake on the cluster hung for {STUDY_TIMEOUT_S} s:\n{self.log()[-3000:]}")
        return True

    def wait(self, *, ok: bool = True) -> str:
        while self.poll():
            time.sleep(0.2)
        log = self.log()
        if ok:
            assert self.proc.returncode == 0, log[-4000:]
        return log

    def log(self) -> str:
        return self.out.read_text()


def sacct_jobs(ids: list[str]) -> dict[str, dict[str, str]]:
    """SLURM's accounting records of the given allocations: comment (Snakemake's rule), state,
    exit code, node, CPUs, start and end (ISO times, to the second)."""
    fields = ["JobID", "Comment", "State", "ExitCode", "NodeList", "AllocCPUS", "Start", "End"]
    res = _run(["sacct", "-n", "-X", "-P", "-j", ",".join(ids), "-o", ",".join(fields)], timeout=30)
    assert res.returncode == 0, res.stderr
    rows = [line.split("|") for line in res.stdout.splitlines() if line.strip()]
    return {
        r[0]: dict(zip(["comment", "state", "exit", "node", "cpus", "start", "end"], r[1:], strict=True))
        for r in rows
    }


def host_caches(work: Path) -> dict[str, dict[str, Any]]:
    """The host caches under ``work``'s ``resources/baseline/hosts/``, by the host each names."""
    out = {}
    for p in sorted((work / CACHES).glob("*.json")):
        base = json.loads(p.read_text())
        out[base["host"]] = {**base, "_file": str(p.relative_to(work))}
    return out


@dataclass
class Study:
    """A finished study: its directory, Snakemake's log, its SLURM jobs, and what it wrote."""

    work: Path
    log: str
    jobs: dict[str, dict[str, str]]
    ids: list[str]
    families: list[str]
    started: float  # wall clock
    caches_before: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def collect(
        cls, work: Path, log: str, families: list[str], started: float, caches_before: dict[str, Any]
    ) -> Study:
        ids = SUBMITTED.findall(log)
        return cls(work, log, sacct_jobs(ids), ids, families, started, caches_before)

    @property
    def results(self) -> Path:
        return self.work / "results"

    def node_of(self, rule: str) -> str:
        nodes = [j["node"] for j in self.jobs.values() if j["comment"] == f"rule_{rule}"]
        assert len(nodes) == 1, (rule, self.jobs)
        return nodes[0]

    def family_node(self, family: str) -> str:
        return self.node_of(f"run_family_wildcards_{family}_0")

    def run(self, family: str) -> dict[str, Any]:
        return json.loads((self.results / "runs" / family / "rep0" / "run.json").read_text())

    @property
    def reference(self) -> dict[str, Any]:
        return json.loads((self.results / "baseline" / "idle.json").read_text())

    def placement(self) -> str:
        where = [f"fingerprint->{self.node_of('fingerprint')}", f"baseline->{self.node_of('baseline')}"]
        where += [f"run_family {f}->{self.family_node(f)}" for f in self.families]
        return ", ".join(where)


def show(config: pytest.Config, line: str) -> None:
    """A line in the output of ``make test-cluster``, past pytest's capture (as ``capsys.disabled()``)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(f"\n[cluster] {line}", flush=True)


def check_origins(study: Study) -> dict[str, str]:
    """Each run's baseline, checked against the rules; the origin of each family's.

    The run's ``host`` is the node SLURM ran it on, and its baseline is that host's: the
    reference where the ``baseline`` rule ran there; else the host's cache, reused if it
    was there before the study (stable, younger than ``max_age_s``), else measured now
    and written to that cache.
    """
    ref = study.reference
    assert ref["host"] == study.node_of("baseline")
    after = host_caches(study.work)
    max_age_s = ref["config"]["max_age_s"]
    origins = {}
    for fam in study.families:
        meta, node = study.run(fam), study.family_node(fam)
        base = meta["baseline"]
        assert meta["host"] == node and base["host"] == node, (fam, meta["host"], base)
        assert base["hw_hash"] == ref["hw_hash"]  # one node type
        before = study.caches_before.get(node)
        if node == ref["host"]:
            want = "reference"
            assert (base["baseline_id"], base["path"]) == (ref["baseline_id"], None)
        elif before and before["status"] == "stable" and study.started - before["created_unix"] < max_age_s:
            want = "host cache"
            assert base["baseline_id"] == before["baseline_id"] and base["path"] == before["_file"], base
        else:
            want = "measured"
            assert before is None or base["baseline_id"] != before["baseline_id"]
            assert after[node]["created_unix"] >= study.started, after[node]
        assert base["origin"] == want, (fam, node, base, ref["host"])
        if want != "reference":  # the host's cache file holds the baseline the run used
            assert base["path"] == after[node]["_file"] and after[node]["baseline_id"] == base["baseline_id"]
        origins[fam] = want
    # every node that measured or ran a measurement job has its cache file
    ran = {study.node_of("baseline")} | {study.family_node(f) for f in study.families}
    assert ran <= set(after), (ran, sorted(after))
    return origins


# --------------------------------------------------------------------------- the first study
@pytest.fixture(scope="module")
def cluster_run(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Study:
    work = tmp_path_factory.mktemp("cluster")
    started = time.time()
    with simulated_study(work, baseline=LENIENT) as (cf, _, _):
        log = SlurmSnakemake(work, "all", "-s", str(SNAKEFILE), "--configfile", str(cf)).wait()
    study = Study.collect(work, log, FAMILIES, started, {})
    show(pytestconfig, f"first study ({len(cluster.nodes)} node(s)): {study.placement()}")
    return study


def test_every_measurement_job_ran_through_sbatch(cluster: Cluster, cluster_run: Study) -> None:
    jobs = cluster_run.jobs
    assert sorted(jobs) == sorted(cluster_run.ids), "sacct lacks a submitted job"
    comments = sorted(j["comment"] for j in jobs.values())
    want = sorted(
        ["rule_fingerprint", "rule_baseline"] + [f"rule_run_family_wildcards_{f}_0" for f in FAMILIES]
    )
    assert comments == want
    for j in jobs.values():
        assert (j["state"], j["exit"]) == ("COMPLETED", "0:0") and j["node"] in cluster.cpus, j
        if j["comment"].startswith(("rule_baseline", "rule_run_family")):  # --exclusive: the whole node
            assert j["cpus"] == cluster.cpus[j["node"]], j
    log = cluster_run.log
    for rule in ("fingerprint", "baseline", "run_family"):
        assert f"localrule {rule}:" not in log  # nothing measured or probed outside SLURM
    for rule in ("tables", "figures", "manifest"):
        assert f"localrule {rule}:" in log


def test_outputs_complete_and_each_run_used_its_nodes_baseline(cluster: Cluster, cluster_run: Study) -> None:
    r = cluster_run.results
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
    verify = _run(
        [str(ALEMS), "verify", "--manifest", "results/manifest.json"], timeout=120, cwd=cluster_run.work
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    ref = cluster_run.reference
    assert ref["meter"] == "rapl"
    if len(cluster.nodes) == 1:  # the one node is this machine
        assert ref["host"] == socket.gethostname()
    origins = check_origins(cluster_run)  # no cache before: "reference" or "measured"
    if len(cluster.nodes) == 1:
        assert set(origins.values()) == {"reference"}
    for fam in FAMILIES:
        meta = cluster_run.run(fam)
        # the profile's 4 threads, capped by the job's Snakemake at this machine's cores
        assert (
            meta["executions"] == 6
            and meta["meter"] == "rapl"
            and meta["threads"] == min(4, os.cpu_count() or 1)
        )
    for name in ("epg", "ooi"):
        assert "host" not in (r / "tables" / f"{name}.csv").read_text()  # no baseline_*host flag


def test_run_family_jobs_spread_over_nodes(three_nodes: Cluster, cluster_run: Study) -> None:
    nodes = {f: cluster_run.family_node(f) for f in FAMILIES}
    assert len(set(nodes.values())) >= 2, f"all run_family jobs on one node: {nodes}"
    # at the same time: profiles/slurm lets 8 measurement jobs run at once, one per node
    spans = [(j["start"], j["end"]) for j in cluster_run.jobs.values() if "run_family" in j["comment"]]
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"run_family jobs one after another: {spans}"
    assert {f: cluster_run.run(f)["host"] for f in FAMILIES} == nodes
    # one of them measured its own node's baseline, the other used the reference
    assert "measured" in check_origins(cluster_run).values()


# --------------------------------------------------------------------------- refusal
def test_a_baseline_from_another_host_is_refused(
    three_nodes: Cluster, cluster_run: Study, tmp_path: Path
) -> None:
    """A run.json edited to name another node's cached baseline: the tables rule refuses it."""
    work = tmp_path / "edited"
    shutil.copytree(cluster_run.work, work, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    fam = FAMILIES[0]
    host = cluster_run.family_node(fam)
    caches = host_caches(work)
    other = next(h for h in sorted(caches) if h != host)
    meta_path = work / "results" / "runs" / fam / "rep0" / "run.json"
    meta = json.loads(meta_path.read_text())
    theirs = caches[other]
    meta["baseline"].update(
        host=other,
        baseline_id=theirs["baseline_id"],
        path=theirs["_file"],
        origin="host cache",
        power_w=theirs["power_w"],
    )
    meta_path.write_text(json.dumps(meta, indent=2))
    res = _run(
        [
            *(sys.executable, "-m", "snakemake", "results/tables/epg.csv", "-s", str(SNAKEFILE)),
            *("--directory", str(work), "--configfile", str(work / "ci.yaml"), "--cores", "1"),
            *("--forcerun", "tables"),
        ],
        timeout=240,
        cwd=work,
    )
    tables_log = work / "logs" / "tables" / "tables.log"
    out = res.stdout + res.stderr + (tables_log.read_text() if tables_log.exists() else "")
    assert res.returncode != 0, out[-3000:]
    assert "idle baseline from another host" in out, out[-3000:]
    assert f"{fam}/rep0 ran on {host} with the idle baseline of {other}" in out, out[-3000:]


# --------------------------------------------------------------------------- reuse, and a busy node
class Burner:
    """One CPU-bound loop per CPU, inside ``node``'s network and UTS namespaces.

    At nice 19: the CPUs are all busy (``/proc/stat`` counts nice time as busy) while the
    jobs' own processes still get them first, so the study is not slowed much.
    """

    def __init__(self, node: str) -> None:
        holder = int((SLURM_DIR / "pids" / f"holder@{node}").read_text())
        n = os.cpu_count() or 1
        loops = f"for i in $(seq {n}); do (while :; do :; done) & done; wait"
        argv = [str(CLUSTER_SH), "exec", node, "nice", "-n", "19", "sh", "-c", loops]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, start_new_session=True)
        self.t1: float | None = None
        self.cpu_s = 0.0
        want = {ns: os.readlink(f"/proc/{holder}/ns/{ns}") for ns in ("net", "uts")}
        end = time.monotonic() + 10
        while {ns: _readlink(f"/proc/{self.proc.pid}/ns/{ns}") for ns in want} != want:
            assert time.monotonic() < end and self.proc.poll() is None, f"the burner did not enter {node}"
            time.sleep(0.02)
        # the loops are children of this process, so in the node's namespaces too

    def stop(self) -> None:
        if self.t1 is not None:
            return
        self.t1 = time.monotonic()
        tick = os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # its process group
                self.cpu_s += (int(fields[11]) + int(fields[12])) / tick
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _when(ready: Callable[[], bool], action: Callable[[], None]) -> Callable[[], bool]:
    """A check that runs ``action`` once ``ready()``; it says whether it has."""
    done = False

    def check() -> bool:
        nonlocal done
        if not done and ready():
            action()
            done = True
        return done

    return check


def _job_running(node: str, rule: str) -> bool:
    """SLURM runs the job of ``rule`` (Snakemake's comment ``rule_<rule>``) on ``node``."""
    res = _run(["squeue", "-h", "-w", node, "-t", "R", "-o", "%k"], timeout=30)
    return f"rule_{rule}" in res.stdout.split()


def _pin(fingerprint: str, baseline: str, run_family: str) -> list[str]:
    """The profile's resources, with the jobs placed by extra ``sbatch`` options."""
    return [
        "--set-resources",
        f"fingerprint:slurm_extra='{fingerprint}'",
        f"baseline:slurm_extra='--exclusive {baseline}'",
        f"run_family:slurm_extra='--exclusive {run_family}'",
        "run_family:cpus_per_task=4",
    ]


@dataclass
class LaterStudies:
    reuse: Study
    busy: Study
    reuse_node: str
    busy_node: str
    burner: Burner


@pytest.fixture(scope="module")
def later_studies(
    three_nodes: Cluster,
    cluster_run: Study,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[LaterStudies]:
    """The second study (reuse) and, at the same time on the node it leaves free, the busy one.

    Second study: the first study's ``resources/`` (its host caches), a new seed; its
    ``baseline`` job on the first study's reference node, its ``run_family`` jobs there and
    on another cached node, so every baseline it takes comes from a cache. Busy study: one
    family, every job on the remaining node, CPU burners in that node's
    namespaces from the start of its ``baseline`` job until its ``idle.json`` exists.
    """
    caches = host_caches(cluster_run.work)
    ref = cluster_run.reference["host"]
    others = [n for n in three_nodes.nodes if n in caches and n != ref]
    uncached = [n for n in three_nodes.nodes if n not in caches]
    busy_node = uncached[0] if uncached else others.pop()
    reuse_node = others[0]
    reuse_work = tmp_path_factory.mktemp("reuse")
    (reuse_work / "resources").symlink_to(cluster_run.work / "resources", target_is_directory=True)
    busy_work = tmp_path_factory.mktemp("busy")
    busy_families = FAMILIES[:1]
    started = time.time()
    with (
        simulated_study(reuse_work, baseline=LENIENT, study={"seed": 1}) as (reuse_cf, _, _),
        simulated_study(
            busy_work,
            # 3 windows of 0.5 s: enough CPU time to judge the load on 2 CPUs (MIN_JUDGED_CPU_S);
            # 1 s to settle: more time for the burners to start
            baseline={"max_host_util": BUSY_MAX_HOST_UTIL, "window_s": 0.5, "settle_s": 1},
            study={"families": busy_families},
        ) as (busy_cf, _, _),
    ):
        reuse = SlurmSnakemake(
            reuse_work,
            *("results/tables/epg.csv", "-s", str(SNAKEFILE), "--configfile", str(reuse_cf)),
            *_pin(f"--exclude={busy_node}", f"--nodelist={ref}", f"--exclude={busy_node}"),
        )
        busy = SlurmSnakemake(
            busy_work,
            *("results/tables/epg.csv", "-s", str(SNAKEFILE), "--configfile", str(busy_cf)),
            *_pin(*[f"--nodelist={busy_node}"] * 3),
        )
        burners: list[Burner] = []
        # from the start of the baseline job (its Snakemake takes seconds to reach the windows)
        # until its idle.json exists
        start = _when(lambda: _job_running(busy_node, "baseline"), lambda: burners.append(Burner(busy_node)))
        stop = _when((busy_work / "results" / "baseline" / "idle.json").exists, lambda: burners[0].stop())
        try:
            while busy.poll():
                if start():
                    stop()
                time.sleep(0.2)
        finally:
            for b in burners:
                b.stop()
        busy_log, reuse_log = busy.wait(), reuse.wait()
    assert burners, "the busy study's baseline job never ran"
    out = LaterStudies(
        Study.collect(reuse_work, reuse_log, FAMILIES, started, caches),
        Study.collect(busy_work, busy_log, busy_families, started, {}),
        reuse_node,
        busy_node,
        burners[0],
    )
    show(pytestconfig, f"second study (reuses host caches): {out.reuse.placement()}")
    show(pytestconfig, f"busy-node study (burners in {busy_node}'s namespaces): {out.busy.placement()}")
    yield out


def test_a_second_study_reuses_the_host_caches(later_studies: LaterStudies) -> None:
    study = later_studies.reuse
    ref = study.reference
    before = study.caches_before[ref["host"]]
    # the baseline rule reused its node's cache: the reference is the first study's measurement
    assert ref["baseline_id"] == before["baseline_id"] and ref["created_unix"] == before["created_unix"]
    assert study.started - before["created_unix"] < ref["config"]["max_age_s"]
    nodes = {study.family_node(f) for f in FAMILIES}
    assert nodes <= {ref["host"], later_studies.reuse_node}, nodes
    origins = check_origins(study)
    # on the reference node: the reference, itself the node's cache; on the other: its cache
    assert "host cache" in origins.values() and set(origins.values()) <= {"reference", "host cache"}, origins
    assert host_caches(study.work) == study.caches_before  # nothing measured again
    for name in ("epg", "ooi"):
        flags = pd.read_csv(study.results / "tables" / f"{name}.csv")["flags"].fillna("")
        assert not flags.str.contains("baseline_").any(), flags.tolist()


def test_a_baseline_on_a_busy_node_is_unstable_and_flagged(
    later_studies: LaterStudies, pytestconfig: pytest.Config
) -> None:
    study, node, burner = later_studies.busy, later_studies.busy_node, later_studies.burner
    ref = study.reference
    assert ref["host"] == node and study.family_node(study.families[0]) == node
    # the burners ran inside the node for the whole of the baseline's windows
    assert burner.t1 is not None
    assert burner.t0 < ref["windows"][0]["t0"] and ref["windows"][-1]["t1"] < burner.t1, (
        burner.t0,
        ref["windows"],
        burner.t1,
    )
    utils = [a["host_util"] for a in ref["attempts"]]
    show(
        pytestconfig,
        f"busy node {node}: burners used {burner.cpu_s:.1f} CPU-s in {burner.t1 - burner.t0:.1f} s; "
        f"baseline attempts' host_util {utils} (max_host_util {BUSY_MAX_HOST_UTIL})",
    )
    assert ref["status"] == "unstable"
    assert len(ref["attempts"]) == 1 + ref["config"]["max_retries"]  # re-measured, then given up
    assert all(a["busy"] and a["host_util"] > BUSY_MAX_HOST_UTIL for a in ref["attempts"]), ref["attempts"]
    assert check_origins(study) == {study.families[0]: "reference"}
    meta = study.run(study.families[0])
    assert meta["baseline"]["status"] == "unstable"
    epg = pd.read_csv(study.results / "tables" / "epg.csv")
    assert epg["flags"].fillna("").str.contains("baseline_unstable").all(), epg[["family", "flags"]]
    # an unstable baseline is never reused: the node's cache says so
    assert host_caches(study.work)[node]["status"] == "unstable"


# --------------------------------------------------------------------------- failure
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


def test_a_failing_job_is_reported_failed_not_hung(cluster: Cluster, tmp_path: Path) -> None:
    work = tmp_path / "failing"
    work.mkdir()
    (work / "Snakefile").write_text(FAILING)
    run = SlurmSnakemake(work, "-s", str(work / "Snakefile"), "--keep-going", "all")
    log = run.wait(ok=False)
    assert run.proc.returncode != 0, log[-3000:]
    assert "Error in rule fail" in log and "SLURM status is: 'FAILED'" in log, log[-3000:]
    assert (work / "ok.txt").read_text() == "fine\n"  # the other job finished on the cluster
    jobs = sacct_jobs(SUBMITTED.findall(log))
    assert {j["comment"]: (j["state"], j["exit"]) for j in jobs.values()} == {
        "rule_ok": ("COMPLETED", "0:0"),
        "rule_fail": ("FAILED", "1:0"),  # the job step (Snakemake) exits 1 when its rule fails
    }
