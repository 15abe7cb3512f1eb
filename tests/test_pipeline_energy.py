"""Energy through the pipeline's job code: simulated RAPL against the CPU model, and atomicity.

**Simulated RAPL vs cpu-model.** The simulated-RAPL writer integrates
:class:`alems.energy.model.CpuModelProfile` (the function behind the ``cpu-model`` meter)
into a fake powercap tree with a small wrap range. One ``run_family`` job
(:func:`alems.jobs.run_family.run_family`, the code the Snakemake rule runs) reads that tree through
the real RAPL meter *and* the model meter on the same parameters, in one sampler. So the two
energy paths see the same power profile over the very same attempt windows, and any
difference is the RAPL path's (wraps, file reads, writer tick), not run-to-run noise.
Both read utilisation from one ``/proc/stat``-format file that a thread of this test keeps
equal to the CPU time of the job's thread, so the profile follows the job's work and not
whatever else the shared machine is running. Accounting is then done twice, once per
domain, and EpG must agree within 1 %.

**Atomicity.** A ``run_family`` job killed mid-run leaves nothing Snakemake takes for
complete, and a rerun (after ``snakemake --unlock``) finishes the study.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_pipeline import SNAKEFILE, ci_config, snakemake, write_config

#: The fake /proc/stat counts in jiffies SCALE times finer than the kernel's (as if
#: USER_HZ were 100 x 100), so a jiffy is 0.1 ms of CPU and quantization stays far below
#: 1 % of a window; the model's P_max is set so that full load still adds 16 W. A low idle
#: power keeps the writer's tick lag (P_idle x a few ms at each window edge, which a
#: loaded machine stretches) small against the work being measured.
SCALE = 100
P_IDLE_W, P_MAX_W = 0.5, 0.5 + 16.0 / SCALE


class OwnCpuStat:
    """A ``/proc/stat``-format file (2 CPUs) whose busy time is the CPU time of the thread
    that builds it (the job's thread: it runs the executors and the backend's work), so
    the sampler's and this writer's own threads do not move the profile."""

    def __init__(self, path: Path, period_s: float = 0.002, scale: int = SCALE) -> None:
        import threading

        from alems.energy.procstat import USER_HZ

        self.path, self.period_s, self.hz = path, period_s, USER_HZ * scale
        self.clock_id = time.pthread_getcpuclockid(threading.get_ident())
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self.write()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def write(self) -> None:
        busy = int(time.clock_gettime(self.clock_id) * self.hz)
        total = int((time.monotonic() - self.t0) * 2 * self.hz) + busy
        idle = max(0, total - busy)
        text = f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\n"
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.write()

    def __enter__(self) -> OwnCpuStat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _epg_by_cell(goals: pd.DataFrame) -> pd.Series:
    from alems.metrics import MetricsConfig, compute_tables

    epg, _ = compute_tables(goals, MetricsConfig(bootstrap=0), None)
    cells = epg[epg["mode"].isin(["linear", "agentic"])]
    return cells.set_index(["family", "mode"])["epg_j"]


def test_epg_simulated_rapl_matches_cpu_model(tmp_path: Path) -> None:
    from alems.accounting import account
    from alems.baseline import BaselineConfig, measure_baseline
    from alems.contracts import OUTCOME_COLUMNS
    from alems.energy import open_meter
    from alems.energy.composite import CompositeMeter
    from alems.energy.sampler import read_samples
    from alems.energy.simulated import SimulatedRapl
    from alems.jobs.outputs import RunPaths
    from alems.jobs.recording import MeterRecording
    from alems.jobs.run_family import run_family
    from alems.settings import StudySettings

    stat = tmp_path / "stat"
    params = {"p_idle_w": P_IDLE_W, "p_max_w": P_MAX_W, "proc_stat": str(stat)}
    settings = StudySettings.from_config(
        {
            "study": {"families": ["gsm8k_basic_local"], "tasks": 4, "seed": 0},
            "llm": {
                "backend": "scripted",
                "oracle": {"fail_rate": 0.3, "seed": 2, "cost_s_per_token": 0.002, "sleep_s_per_call": 0.1},
            },
            "agents": {"backoff_s": 0.0},
            "energy": {"meter": "rapl", "model": params},
        }
    )
    sim = SimulatedRapl(
        tmp_path / "powercap",
        "intel-1s",
        profile="model",
        range_uj=5_000_000,
        tick_ms=0.5,
        max_power_w=20.0,
        **params,
    )
    with OwnCpuStat(stat), sim:
        assert sim.proc is not None
        # like firmware, the writer should not queue behind a busy machine (needs root)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, sim.proc.pid, -10)
        meter = CompositeMeter(
            [
                open_meter("rapl", powercap_root=str(tmp_path / "powercap")),
                open_meter("model", model_params=params),
            ]
        )
        base = measure_baseline(meter, BaselineConfig(settle_s=0.2, windows=4, window_s=0.5))
        paths = RunPaths.in_dir(tmp_path / "run")
        recording = MeterRecording(meter, settings.energy, settings.accounting, idle_power_w=base.power_w)
        job = run_family(settings, "gsm8k_basic_local", 0, paths, recording, workdir=tmp_path / "w")
    assert job.executions == 8
    samples, domains = read_samples(str(paths.samples))
    events = [json.loads(x) for x in paths.events.read_text().splitlines()]
    outcomes = pd.read_csv(paths.goals)[list(OUTCOME_COLUMNS)]
    # the package counter wrapped several times during the job
    assert samples["package-0"].iloc[-1] > 3 * 5.0
    epg = {}
    for key in ("package-0", "cpu-model"):
        sub = samples[["t", key, "proc_cpu_s", "sys_cpu_s", "boundary"]]
        dom = [d for d in domains if d.key == key]
        res = account(sub, dom, events, outcomes, {key: base.power_w[key]})
        assert (res.goals["energy_j"] > 0).all()
        epg[key] = _epg_by_cell(res.goals)
    assert dom[0].source == "modeled" and [d.source for d in domains if d.key == "package-0"] == ["measured"]
    ratio = epg["package-0"] / epg["cpu-model"]
    assert len(ratio) == 6  # both cells, then the reasoning group and overall
    assert ((ratio - 1.0).abs() < 0.01).all(), ratio.to_dict()


def test_killed_job_leaves_nothing_complete_and_a_rerun_finishes(tmp_path: Path) -> None:
    cfg = ci_config(None, llm={"backend": "scripted", "oracle": {"fail_rate": 0.3, "sleep_s_per_call": 0.4}})
    cfg["study"]["families"] = ["gsm8k_basic_local"]
    cf = write_config(tmp_path / "ci.yaml", cfg)
    run_dir = tmp_path / "results" / "runs" / "gsm8k_basic_local" / "rep0"
    partial = run_dir / ".events.jsonl.partial"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(SNAKEFILE),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(cf),
        "--cores",
        "1",
        "all",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if partial.is_file() and len(partial.read_text().splitlines()) >= 6:
                break
            assert proc.poll() is None, "the pipeline ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("run_family never started")
        os.killpg(proc.pid, signal.SIGKILL)  # the job and Snakemake, mid-run
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for name in ("samples.parquet", "events.jsonl", "goals.csv", "run.json"):
        assert not (run_dir / name).exists(), name
    unlock = snakemake(tmp_path, "--unlock", configfile=cf)
    assert unlock.returncode == 0, unlock.stderr
    dry = snakemake(tmp_path, "-n", "--cores", "1", "all", configfile=cf)
    assert "rule run_family:" in dry.stdout  # not taken for complete
    res = snakemake(tmp_path, "--cores", "1", "all", configfile=cf)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for name in ("samples.parquet", "events.jsonl", "goals.csv", "run.json"):
        assert (run_dir / name).is_file(), name
    assert not partial.exists()
    assert (tmp_path / "results" / "manifest.json").is_file()
    assert yaml.safe_load(cf.read_text())["study"]["families"] == ["gsm8k_basic_local"]
