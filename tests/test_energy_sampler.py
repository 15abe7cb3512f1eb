"""The sampler: background rows, boundary reads, the samples contract, files, CPU time."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alems.energy.base import Domain, Meter
from alems.energy.procstat import ProcessTreeCpu
from alems.energy.rapl import RaplMeter
from alems.energy.sampler import Sample, Sampler, read_samples, write_samples
from alems.errors import CounterReadError


class RampMeter(Meter):
    """Counters that rise with real time (a fake of any meter), optionally wrapping."""

    name = "ramp"

    def __init__(self, watts: dict[str, float], rng: float | None = None, max_w: float | None = None) -> None:
        self.watts = watts
        self.t0 = time.monotonic()
        self.rng = rng
        self.max_w = max_w
        self.fail: set[str] = set()

    def domains(self) -> list[Domain]:
        return [
            Domain(
                k,
                "package" if k.startswith("package") else "dram",
                "measured",
                "ramp",
                max_range_j=self.rng,
                max_power_w=self.max_w,
            )
            for k in self.watts
        ]

    def read_raw(self) -> dict[str, float]:
        dt = time.monotonic() - self.t0
        for k in self.fail:
            from alems.energy.wrap import counter_error

            raise counter_error(k, "simulated read failure")
        out = {k: w * dt for k, w in self.watts.items()}
        return {k: (v % self.rng if self.rng else v) for k, v in out.items()}


def test_background_rows_follow_the_samples_contract() -> None:
    meter = RampMeter({"package-0": 20.0, "dram-0": 2.0}, rng=2.0, max_w=20.0)
    s = Sampler(meter, interval_s=0.005)
    assert s.mode == "thread"  # a meter with no spec cannot be re-opened in a child
    first = s.start()
    assert (
        isinstance(first, Sample) and first.boundary and first.energy_j == {"package-0": 0.0, "dram-0": 0.0}
    )
    time.sleep(0.5)
    mid = s.boundary_read()
    time.sleep(0.1)
    last = s.stop()
    df = s.frame()
    assert list(df.columns) == ["t", "package-0", "dram-0", "proc_cpu_s", "sys_cpu_s", "boundary"]
    assert str(df["boundary"].dtype) == "bool" and str(df["t"].dtype) == "float64"
    assert len(df) > 20  # ~60 expected; a loaded machine may skip some
    for col in ("t", "package-0", "dram-0", "proc_cpu_s", "sys_cpu_s"):
        assert df[col].is_monotonic_increasing, col
    assert df["boundary"].sum() == 3 and bool(df["boundary"].iloc[0]) and bool(df["boundary"].iloc[-1])
    assert mid.t in set(df.loc[df["boundary"], "t"])
    # 20 W for (last.t - first.t) s, through ~6 wraps of the 2 J counter
    span = last.t - first.t
    assert last.energy_j["package-0"] == pytest.approx(20.0 * span, rel=0.02)
    assert s.trackers.wraps()["package-0"] >= 5
    assert s.errors == []


def test_boundary_t_returns_the_recorded_t(clock) -> None:
    meter = RampMeter({"package-0": 1.0})
    s = Sampler(meter, clock=clock)
    clock.advance(1.0)
    t = s.boundary_t()
    assert t == clock.now
    assert s.latest() == Sample(t, s.latest().energy_j, s.latest().proc_cpu_s, s.latest().sys_cpu_s, True)


def test_interval_is_capped_at_the_safe_poll_interval(caplog) -> None:
    meter = RampMeter({"package-0": 1.0}, rng=1.0, max_w=100.0)  # can wrap every 10 ms
    with caplog.at_level("WARNING", logger="alems.energy"):
        s = Sampler(meter, interval_s=0.05)
    assert s.interval_s == pytest.approx(0.005)
    assert s.warnings == [
        "sampling interval 50 ms is longer than the safe poll interval 5 ms "
        "(a counter could wrap twice between reads); using 5 ms"
    ]
    assert "safe poll interval 5 ms" in caplog.text


def test_read_errors_in_the_thread_are_kept_not_zeroed() -> None:
    meter = RampMeter({"package-0": 5.0})
    s = Sampler(meter, interval_s=0.005)
    s.start()
    time.sleep(0.05)
    meter.fail = {"package-0"}
    time.sleep(0.05)
    with pytest.raises(CounterReadError, match="package-0: simulated read failure"):
        s.boundary_read()
    meter.fail = set()
    time.sleep(0.05)
    s.stop()
    assert s.errors and all(e.domain == "package-0" for e in s.errors)
    df = s.frame()
    assert df["package-0"].is_monotonic_increasing
    # no zero rows were recorded during the failure: the gap shows as missing rows
    assert (df["package-0"].iloc[1:] > 0).all()
    assert df["t"].diff().max() >= 0.04


def test_write_and_read_samples(tmp_path: Path, powercap) -> None:
    fake = powercap("intel-2s")
    with RaplMeter(fake.root) as m:
        s = Sampler(m)
        s.boundary_read()
        fake.add_j("package-1", 3.5)
        s.boundary_read()
        df = s.frame()
        path = tmp_path / "runs" / "samples.parquet"
        write_samples(df, m.domains(), str(path))
    assert sorted(p.name for p in path.parent.iterdir()) == ["samples.parquet"]  # nothing half-written left
    df2, doms = read_samples(str(path))
    assert df2.equals(df)
    assert doms == m.domains()
    assert doms[0].info["constraints"]["long_term"]["power_limit_uw"] == 65_000_000
    with pytest.raises(ValueError, match=r"samples table has no column for domains \['gpu-0'\]"):
        write_samples(df, [Domain("gpu-0", "gpu", "measured", "nvml")], str(tmp_path / "x.parquet"))
    df.to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="is not an A-LEMS samples file"):
        read_samples(str(tmp_path / "plain.parquet"))


def test_process_tree_cpu_counts_live_and_finished_children() -> None:
    tree = ProcessTreeCpu()
    before = tree.read()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\n"
            "print('done', flush=True)\ntime.sleep(5)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "done\n"  # >= 0.3 s of CPU burnt
        assert tree.read() - before < 0.25  # not seen before a rescan
        tree.rescan()
        assert child.pid in tree.members
        live = tree.read() - before
        assert live >= 0.25
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    # waited for: its time is now in our cutime; the total does not drop
    assert tree.read() - before >= live - 1e-9


def test_process_tree_cpu_of_another_pid() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        tree = ProcessTreeCpu(child.pid)
        assert tree.pid == child.pid and not tree._self
        last = tree.read()
        assert last >= 0.0
    finally:
        child.kill()
        child.wait()
    # once gone, its CPU time no longer changes: the last value stands
    assert tree.read() == last and tree.gone
    from alems.errors import MeterError

    with pytest.raises(MeterError, match=f"cannot read CPU time of process {child.pid}"):
        ProcessTreeCpu(child.pid).read()


def test_proc_cpu_of_this_process_moves_with_work() -> None:
    s = Sampler(RampMeter({"package-0": 1.0}))
    a = s.boundary_read()
    t = time.process_time()
    while time.process_time() - t < 0.2:
        pass
    b = s.boundary_read()
    assert b.proc_cpu_s - a.proc_cpu_s >= 0.15
    assert b.sys_cpu_s - a.sys_cpu_s >= 0.15
    assert os.getpid() == s.tree.pid


# --------------------------------------------------------------------------- child-process mode
def test_process_mode_on_a_simulated_writer(tmp_path: Path) -> None:
    from alems.energy.simulated import SimulatedRapl

    with SimulatedRapl(tmp_path / "pc", "intel-1s", watts=25, range_uj=5_000_000, tick_ms=2):
        with RaplMeter(tmp_path / "pc") as m:
            s = Sampler(m, interval_s=0.005)
            assert s.mode == "process"
            first = s.start()
            assert first.energy_j == {"package-0": 0.0, "core-0": 0.0, "uncore-0": 0.0}
            child_pid = s._child.proc.pid
            assert child_pid in s.tree.exclude
            time.sleep(0.6)
            mid = s.boundary_read()
            time.sleep(0.3)
            last = s.stop()
    assert not s.running and s.errors == []
    df = s.frame()
    assert (~df["boundary"]).sum() > 50  # rows written by the child
    for col in ("t", "package-0", "core-0", "proc_cpu_s", "sys_cpu_s"):
        assert df[col].is_monotonic_increasing, col
    assert list(df.loc[df["boundary"], "t"]) == [first.t, mid.t, last.t]
    span = last.t - first.t
    assert last.energy_j["package-0"] == pytest.approx(25.0 * span, rel=0.03)
    assert s.trackers.wraps()["package-0"] >= 4  # 5 J counter, ~23 J: wraps seen in child and parent rows


def test_process_mode_with_the_model_meter_agrees_with_thread_mode() -> None:
    from alems.energy.model import CpuModelMeter, ModelParams

    meter = CpuModelMeter(ModelParams(p_idle_w=10.0, p_max_w=10.0))  # constant 10 W: E = 10 x t
    s = Sampler(meter, interval_s=0.005)
    assert s.mode == "process"
    a = s.start()
    time.sleep(0.3)
    b = s.stop()
    df = s.frame()
    assert (~df["boundary"]).sum() > 20
    # child rows and parent reads share one closed form: every row is 10 W x its t
    # (t is the middle of the read; the model stamps its own clock call: microseconds
    # apart, or a few milliseconds when the reader is preempted on a loaded machine)
    e = df["cpu-model"] - a.energy_j["cpu-model"]
    assert ((e - 10.0 * (df["t"] - a.t)).abs() < 10.0 * 5e-3).all()
    assert b.energy_j["cpu-model"] == pytest.approx(10.0 * (b.t - a.t), abs=10.0 * 5e-3)


def test_process_mode_needs_a_spec_and_the_real_clock(clock) -> None:
    with pytest.raises(ValueError, match=r"mode='process' needs a meter that can be re-opened in a child"):
        Sampler(RampMeter({"package-0": 1.0}), mode="process")
    from alems.energy.model import CpuModelMeter

    assert Sampler(CpuModelMeter(clock=clock), clock=clock).mode == "thread"
    assert Sampler(CpuModelMeter(), mode="thread").mode == "thread"
    with pytest.raises(ValueError, match="mode must be one of"):
        Sampler(CpuModelMeter(), mode="fork")


def test_child_that_cannot_start_falls_back_to_a_thread(powercap, monkeypatch, caplog) -> None:
    fake = powercap("amd")
    m = RaplMeter(fake.root)
    monkeypatch.setattr(
        m, "spec", lambda: {"kind": "rapl", "root": str(fake.root / "gone"), "keys": ["package-0"]}
    )
    s = Sampler(m, interval_s=0.01)
    assert s.mode == "process"
    with caplog.at_level("WARNING", logger="alems.energy"):
        s.start()
    try:
        assert s.mode == "thread" and s.running
        assert s.warnings[-1].startswith("sampler child process failed to start (")
        assert "no RAPL powercap zones under" in s.warnings[-1]
        assert s.warnings[-1].endswith("; sampling from a thread")
    finally:
        s.stop()


def test_child_that_dies_is_replaced_by_a_thread(powercap) -> None:
    import signal

    fake = powercap("amd")
    s = Sampler(RaplMeter(fake.root), interval_s=0.005)
    s.start()
    assert s.mode == "process"
    s._child.proc.send_signal(signal.SIGKILL)
    s._child.proc.wait()
    s.boundary_read()
    assert s.mode == "thread" and s._child is None and s.running
    assert "sampler child process exited; sampling from a thread from now on" in s.warnings
    assert any("child process exited with -9" in e.message for e in s.errors)
    time.sleep(0.05)
    s.stop()
    assert (~s.frame()["boundary"]).sum() >= 3


def test_meter_specs_round_trip(powercap, fake_pynvml) -> None:
    from alems.energy.composite import CompositeMeter, FilteredMeter, meter_from_spec
    from alems.energy.model import CpuModelMeter
    from alems.energy.nvml import NvmlMeter

    fake = powercap("intel-psys")
    c = CompositeMeter(
        [FilteredMeter(RaplMeter(fake.root), ["package-0", "core-0"]), CpuModelMeter()], name="auto"
    )
    again = meter_from_spec(json.loads(json.dumps(c.spec())))
    assert [d.key for d in again.domains()] == ["package-0", "core-0", "cpu-model"]
    assert again.spec() == c.spec()
    fake_pynvml.add_gpu()
    assert NvmlMeter().spec() is None  # a fake module cannot be re-imported in a child
    with pytest.raises(ValueError, match="unknown meter spec kind 'zeus'"):
        meter_from_spec({"kind": "zeus"})


def test_child_read_errors_are_reported_not_zeroed(powercap) -> None:
    fake = powercap("amd")
    fake.set_uj("core-0", 5_000_000)
    s = Sampler(RaplMeter(fake.root), interval_s=0.005)
    s.start()
    assert s.mode == "process"
    time.sleep(0.05)
    f = fake.energy_file("core-0")
    f.unlink()
    time.sleep(0.08)
    with pytest.raises(CounterReadError, match="core-0: cannot read"):
        s.boundary_read()
    fake.set_uj("core-0", 5_000_000)
    time.sleep(0.05)
    s.stop()
    assert any(e.domain == "core-0" and e.message.startswith(f"core-0: cannot read {f}") for e in s.errors)
    df = s.frame()
    assert (df["core-0"] == 0.0).all() and df["t"].diff().max() >= 0.06  # a gap, not zeros


def test_cpu_times_between_reads_are_interpolated() -> None:
    from alems.energy.sampler import _interp_nan

    nan = float("nan")
    assert _interp_nan([0, 1, 2, 3, 4, 5], [nan, 1.0, nan, nan, 4.0, nan]) == [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    assert _interp_nan([0, 1], [2.0, 3.0]) == [2.0, 3.0]
    # the sampler keeps CPU-less periodic rows and fills them in the frame
    s = Sampler(RampMeter({"package-0": 1.0}), interval_s=0.005, cpu_interval_s=10.0)
    s.start()
    time.sleep(0.1)
    s.stop()
    rows = s._rows
    assert sum(1 for r in rows if r[2] != r[2]) >= 5  # periodic rows without a CPU read
    df = s.frame()
    assert df["proc_cpu_s"].notna().all() and df["proc_cpu_s"].is_monotonic_increasing
    # every row without its own CPU read lies on the line between the real reads around it
    # (the reads are not only at the ends: a stalled loop on a loaded machine may add one)
    read_idx = [i for i, r in enumerate(rows) if r[2] == r[2]]
    assert len(read_idx) >= 2 and len(df) == len(rows)
    checked = 0
    for a, b in itertools.pairwise(read_idx):
        for i in range(a + 1, b):
            ta, tb, ti = rows[a][0], rows[b][0], rows[i][0]
            expected = rows[a][2] + (rows[b][2] - rows[a][2]) * (ti - ta) / (tb - ta)
            assert df["proc_cpu_s"].iloc[i] == pytest.approx(expected, abs=1e-9)
            checked += 1
    assert checked >= 5
