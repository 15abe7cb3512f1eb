"""Attribution under a steady background load, and per-domain-kind attribution (GPU).

The host is simulated in fake time: a RAPL package whose power follows total host
utilisation (P = P_idle + K * u_total, the simulated-RAPL model), a /proc/stat whose busy
time is the job's plus a steady background on the other CPUs, and a fake /proc/PID/stat
for the job. The real RAPL meter, sampler and accounting read them. The truth is known:
the job's own energy is K * (job CPU-seconds) / n_cpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from benchmark_module import load_benchmark

from alems.accounting import AccountingConfig, account, attribution_modes
from alems.energy.procstat import USER_HZ
from alems.energy.rapl import RaplMeter
from alems.energy.sampler import Sampler
from alems.errors import ConfigError

N_CPUS = 4
P_IDLE, P_MAX = 20.0, 100.0
K = P_MAX - P_IDLE
JOB_UTIL = 0.8  # CPU-seconds per second of the job, on one CPU
DT = 0.01


class Host:
    """Fake time, /proc/stat, /proc/PID/stat and RAPL counter, moved together."""

    def __init__(self, root: Path, powercap, clock, u_bg: float) -> None:
        self.clock = clock
        self.u_bg = u_bg
        self.pc = powercap("amd", package_limit_w=P_MAX * 2)
        self.stat = root / "stat"
        self.proc = root / "proc"
        (self.proc / "4242").mkdir(parents=True)
        self.busy = 100.0
        self.idle = 500.0
        self.job = 0.0
        self._write()

    def _write(self) -> None:
        b, i = round(self.busy * USER_HZ), round(self.idle * USER_HZ)
        lines = [f"cpu  {b} 0 0 {i} 0 0 0 0 0 0"] + [f"cpu{c} 0 0 0 0 0 0 0 0 0 0" for c in range(N_CPUS)]
        self.stat.write_text("\n".join(lines) + "\n")
        ut = round(self.job * USER_HZ)
        fields = ["S", "1"] + ["0"] * 9 + [str(ut), "0", "0", "0"] + ["0"] * 4 + ["77"]
        (self.proc / "4242" / "stat").write_text(f"4242 (job) {' '.join(fields)}\n")

    def step(self, job_util: float) -> None:
        job = job_util * DT
        bg = self.u_bg * (N_CPUS - 1) * DT
        busy = job + bg
        self.busy += busy
        self.idle += N_CPUS * DT - busy
        self.job += job
        self.pc.add_j("package-0", P_IDLE * DT + K * busy / N_CPUS)
        self.clock.advance(DT)
        self._write()


def _run(tmp_path: Path, powercap, clock, u_bg: float, baseline_u_bg: float | None = None):
    """Baseline (3 s, background at ``baseline_u_bg``), then one 2 s goal at JOB_UTIL."""
    host = Host(tmp_path, powercap, clock, u_bg if baseline_u_bg is None else baseline_u_bg)
    meter = RaplMeter(host.pc.root)
    sampler = Sampler(
        meter,
        interval_s=DT,
        clock=clock,
        pid=4242,
        mode="thread",
        proc_stat=str(host.stat),
        proc_root=str(host.proc),
    )
    # the idle baseline: mean power and busy CPU-seconds per second over its window
    a = sampler.boundary_read()
    for _ in range(300):
        host.step(0.0)
        sampler.poll()
    b = sampler.boundary_read()
    idle_w = {"package-0": (b.energy_j["package-0"] - a.energy_j["package-0"]) / (b.t - a.t)}
    idle_busy = (b.sys_cpu_s - a.sys_cpu_s) / (b.t - a.t)
    host.u_bg = u_bg
    for _ in range(50):
        host.step(0.0)
        sampler.poll()
    t0 = sampler.boundary_t()
    for _ in range(200):
        host.step(JOB_UTIL)
        sampler.poll()
    t1 = sampler.boundary_t()
    for _ in range(50):
        host.step(0.0)
        sampler.poll()
    sampler.boundary_read()
    events = [
        {"t": t0, "goal_id": "g", "rep": 0, "mode": "linear", "attempt": 1, "kind": "attempt_start"},
        {"t": t1, "goal_id": "g", "rep": 0, "mode": "linear", "attempt": 1, "kind": "attempt_end"},
    ]
    outcomes = [
        {
            "family": "f",
            "mode": "linear",
            "goal_id": "g",
            "rep": 0,
            "attempt": 1,
            "success": True,
            "final_attempt": True,
            "answer": "",
            "expected": "",
            "error": "",
        }
    ]
    frame = sampler.frame()
    doms = sampler.domains
    new = account(frame, doms, events, outcomes, idle_w, idle_busy_cpu_per_s=idle_busy).goals.iloc[0]
    old = account(frame, doms, events, outcomes, idle_w).goals.iloc[0]  # alpha against all busy time
    return new, old, t1 - t0


@pytest.mark.parametrize("u_bg", [0.5, 0.9])
@pytest.mark.parametrize("baseline_loaded", [True, False])
def test_attributed_energy_does_not_depend_on_steady_background(
    tmp_path, powercap, clock, u_bg, baseline_loaded
):
    """README: "In the test, the same holds through the real RAPL meter and sampler on a fake
    powercap tree ...: within 5 % of the quiet value at 50 % and 90 % background, with the
    baseline taken under the load or quiet"."""
    quiet, _, dt = _run(tmp_path / "quiet", powercap, clock, 0.0)
    truth = K * JOB_UTIL * dt / N_CPUS
    assert quiet["attributed_j"] == pytest.approx(truth, rel=0.02)
    loaded, old, _ = _run(tmp_path / "loaded", powercap, clock, u_bg, None if baseline_loaded else 0.0)
    assert loaded["attributed_j"] == pytest.approx(quiet["attributed_j"], rel=0.05)
    assert "alpha_clipped" not in loaded["flags"]
    if baseline_loaded:
        # what alpha = job CPU / all busy CPU did: the background removed twice
        expected_shrink = JOB_UTIL / (JOB_UTIL + u_bg * (N_CPUS - 1))
        assert old["attributed_j"] == pytest.approx(quiet["attributed_j"] * expected_shrink, rel=0.05)
        # total and dynamic layers: total keeps the background, dynamic removes the baseline's
        assert loaded["raw_j"] == pytest.approx((P_IDLE + K * (JOB_UTIL + u_bg * 3) / N_CPUS) * dt, rel=0.01)
        assert loaded["dynamic_j"] == pytest.approx(truth, rel=0.05)


def _gpu_frame(foreign: list[float] | None):
    t = np.round(np.arange(0, 3.0001, 0.01), 6)
    df = pd.DataFrame(
        {
            "t": t,
            "cpu-model": 10.0 * t,  # 10 W, idle 5 W
            "gpu-0": 300.0 * t,  # 300 W, idle 80 W
            "proc_cpu_s": 0.02 * t,  # the job: 2 % of the busy CPU time
            "sys_cpu_s": 1.0 * t,
        }
    )
    if foreign is not None:
        df["gpu_foreign"] = foreign(t)
    return df


def _gpu_domains():
    from alems.energy.base import Domain

    return [
        Domain("cpu-model", "cpu-model", "modeled", "model"),
        Domain("gpu-0", "gpu", "measured", "nvml", info={"stepwise": False}),
    ]


def _attempt(df, attribution="cpu_share"):
    events = [
        {"t": 1.0, "goal_id": "g", "rep": 0, "mode": "linear", "attempt": 1, "kind": "attempt_start"},
        {"t": 2.0, "goal_id": "g", "rep": 0, "mode": "linear", "attempt": 1, "kind": "attempt_end"},
    ]
    outcomes = [
        {
            "family": "f",
            "mode": "linear",
            "goal_id": "g",
            "rep": 0,
            "attempt": 1,
            "success": True,
            "final_attempt": True,
            "answer": "",
            "expected": "",
            "error": "",
        }
    ]
    return account(
        df, _gpu_domains(), events, outcomes, {"cpu-model": 5.0, "gpu-0": 80.0}, attribution=attribution
    ).goals.iloc[0]


def test_gpu_goes_whole_to_the_job_and_cpu_by_share():
    row = _attempt(_gpu_frame(lambda t: np.zeros_like(t)))
    assert row["alpha"] == pytest.approx(0.02)
    assert row["attributed_j"] == pytest.approx(0.02 * 5.0 + 220.0)
    assert "gpu_shared" not in row["flags"]
    assert row["energy_source"] == "mixed"


def test_another_process_on_the_gpu_is_flagged_gpu_shared():
    row = _attempt(_gpu_frame(lambda t: np.where(t >= 1.5, 1.0, 0.0)))
    assert "gpu_shared" in row["flags"].split(";")
    # a process that came and went before the window does not flag it
    row = _attempt(_gpu_frame(lambda t: np.where(t < 0.5, 1.0, 0.0)))
    assert "gpu_shared" not in row["flags"]


def test_per_kind_attribution_config_and_the_old_switch():
    assert attribution_modes("cpu_share") == ("cpu_share", "exclusive")
    assert attribution_modes("none") == ("none", "none")
    assert attribution_modes({"gpu": "cpu_share"}) == ("cpu_share", "cpu_share")
    assert AccountingConfig.from_dict({"attribution": {"cpu": "none", "gpu": "exclusive"}}).modes == (
        "none",
        "exclusive",
    )
    with pytest.raises(ConfigError, match="gpu"):
        AccountingConfig.from_dict({"attribution": {"gpu": "half"}})
    df = _gpu_frame(None)
    assert _attempt(df, "none")["attributed_j"] == pytest.approx(5.0 + 220.0)
    assert _attempt(df, {"cpu": "cpu_share", "gpu": "cpu_share"})["attributed_j"] == pytest.approx(
        0.02 * 225.0
    )


def test_gpu_process_check_in_the_sampler(fake_pynvml, clock):
    import os

    from alems.energy.nvml import NvmlMeter

    fake_pynvml.clock = clock
    gpu = fake_pynvml.add_gpu(watts=80.0)
    meter = NvmlMeter(pynvml_module=fake_pynvml.module, clock=clock)
    sampler = Sampler(meter, clock=clock, mode="thread", sleep=clock.advance)
    gpu.processes = [os.getpid()]
    sampler.boundary_read()  # checks the GPUs: only this process
    gpu.processes = [os.getpid(), 999_999_999]
    clock.advance(0.1)
    sampler.boundary_read()  # within gpu_check_s: no new check
    clock.advance(1.0)
    sampler.boundary_read()
    assert sampler.check_gpu_processes() == 1
    assert sampler.gpu_foreign_pids == {999_999_999}
    assert list(sampler.frame()["gpu_foreign"].dropna().unique()) == [0.0, 1.0]
    meter.close()


@pytest.mark.parametrize(
    ("u_bg", "old_ratio"), [(0.0, 1.000), (0.1, 0.727), (0.5, 0.348), (0.9, 0.229), (0.95, 0.219)]
)
def test_the_readme_background_table(u_bg, old_ratio):
    """README, "Energy layers": "steady background on 3 of 4 CPUs, baseline under the same load":
    attributed ÷ quiet truth, old α 1.000 / 0.727 / 0.348 / 0.229 / 0.219, new α 1.000 throughout.
    By hand, the old α divides by the background's busy time too: 0.8 / (0.8 + 3 u_bg)."""
    old, new = load_benchmark("energy_estimators").background(u_bg)
    assert round(old, 3) == old_ratio and old == pytest.approx(0.8 / (0.8 + 3 * u_bg), rel=1e-9)
    assert new == pytest.approx(1.0, abs=5e-4)
