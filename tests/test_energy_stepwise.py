"""NVML's energy counter moves every 100 ms: windows get their energy from the update instants.

Everything runs on a manual clock (the fake pynvml, the meter and the sampler share it),
so read spacing and jitter are scripted and the truth is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from alems.accounting import CounterSeries, window_energy
from alems.energy.monitor import measurement_between, measurement_from_samples
from alems.energy.nvml import NvmlMeter
from alems.energy.sampler import Sampler
from alems.energy.stepwise import is_stepwise, reconstruct, update_instants

WATTS = 80.0
LENGTHS_S = (0.03, 0.05, 0.08, 0.13, 0.2, 0.3, 0.5, 0.75, 1.0)


def _tolerance(truth: float) -> float:
    return max(0.03 * truth, 1.0)


def _rig(fake_pynvml, clock, watts: float = WATTS):
    fake_pynvml.clock = clock
    fake_pynvml.add_gpu(watts=watts)
    meter = NvmlMeter(pynvml_module=fake_pynvml.module, clock=clock)
    sampler = Sampler(meter, interval_s=0.01, clock=clock, mode="thread", sleep=clock.advance)
    return meter, sampler


def _started(fake_pynvml, clock, watts: float = WATTS):
    """The rig after its first read and the counter's first update (what Sampler.start does)."""
    meter, sampler = _rig(fake_pynvml, clock, watts)
    assert sampler.await_updates(sampler.boundary_read())
    return meter, sampler


def _run_windows(sampler: Sampler, clock, rng: np.random.Generator):
    """Scripted reads: ~10 ms apart with +-2 ms jitter; windows of every length, at random phase."""
    windows = []
    first = sampler.boundary_read()
    assert sampler.await_updates(first)
    for length in LENGTHS_S:
        for _ in range(3):
            for _ in range(int(rng.integers(0, 10))):  # random phase against the 100 ms steps
                clock.advance(0.01 + rng.uniform(-0.002, 0.002))
                sampler.poll()
            clock.advance(rng.uniform(0.0, 0.008))
            a = sampler.boundary_read()
            while clock.now + 0.012 < a.t + length:
                clock.advance(0.01 + rng.uniform(-0.002, 0.002))
                sampler.poll()
            clock.advance(a.t + length - clock.now)
            b = sampler.boundary_read()
            windows.append((a, b))
    last = sampler.boundary_read()
    assert sampler.await_updates(last)  # what stop() does: bracket the last edge
    return windows


def test_nvml_domain_is_stepwise(fake_pynvml, clock):
    meter, _ = _rig(fake_pynvml, clock)
    (dom,) = meter.domains()
    assert is_stepwise(dom)


def test_windows_30ms_to_1s_get_true_energy_within_3pct_or_1j(fake_pynvml, clock):
    meter, sampler = _rig(fake_pynvml, clock)
    windows = _run_windows(sampler, clock, np.random.default_rng(7))
    frame = sampler.frame()
    series = CounterSeries.from_samples(frame, ["gpu-0"], stepwise=["gpu-0"])
    t0 = np.array([a.t for a, _ in windows])
    t1 = np.array([b.t for _, b in windows])
    we = window_energy(series, t0, t1, np.zeros(1), "none")
    truth = WATTS * (t1 - t0)
    err = np.abs(we.raw_j - truth)
    assert np.all(err <= np.maximum(0.03 * truth, 1.0)), list(zip(t1 - t0, we.raw_j, truth))
    assert not we.unbracketed.any()
    # the same through alems measure's path (Sample objects, not the frame)
    samples = sampler.samples()
    for a, b in windows:
        m = measurement_from_samples("w", a, b, sampler.domains, samples)
        assert abs(m.energy_j["gpu-0"] - WATTS * (b.t - a.t)) <= _tolerance(WATTS * (b.t - a.t))
    # and the staircase (differencing edge reads, what A-LEMS did before) misses by far more
    stair = np.array([measurement_between("w", a, b, sampler.domains).energy_j["gpu-0"] for a, b in windows])
    assert np.max(np.abs(stair - truth)) > 3.0
    meter.close()


def test_130ms_window_is_10_4_joules_not_8(fake_pynvml, clock):
    """The issue's check: constant 80 W, a 130 ms window (``sleep 0.13``)."""
    meter, sampler = _started(fake_pynvml, clock)
    clock.advance(0.004)
    a = sampler.boundary_read()
    while clock.now < a.t + 0.125:
        clock.advance(0.01)
        sampler.poll()
    clock.advance(a.t + 0.13 - clock.now)
    b = sampler.boundary_read()
    sampler.await_updates(b)
    m = measurement_from_samples("sleep", a, b, sampler.domains, sampler.samples())
    assert m.energy_j["gpu-0"] == pytest.approx(10.4, abs=0.8)
    assert measurement_between("sleep", a, b, sampler.domains).energy_j["gpu-0"] in (8.0, 16.0)
    meter.close()


def test_reconstruction_flags_an_edge_past_the_last_update():
    t = np.arange(0, 0.5, 0.01)
    v = np.floor(t * 10 + 1e-9) * 8.0
    rec = reconstruct(t, v)
    assert rec.span is not None and rec.span[1] < 0.45
    tau, kv = update_instants(t, v)
    assert np.allclose(kv, [8, 16, 24, 32])
    assert np.all(np.diff(rec.values) >= 0)
    series = CounterSeries.from_samples(_frame(t, v), ["gpu-0"], stepwise=["gpu-0"])
    we = window_energy(series, np.array([0.12, 0.2]), np.array([0.38, 0.49]), np.zeros(1), "none")
    assert list(we.unbracketed) == [False, True]


def test_stop_reads_on_until_the_next_update(fake_pynvml, clock):
    meter, sampler = _started(fake_pynvml, clock)
    clock.advance(0.031)
    last = sampler.boundary_read()
    n = len(sampler.samples())
    assert sampler.await_updates(last)
    after = sampler.samples()[n:]
    assert after and after[-1].energy_j["gpu-0"] > last.energy_j["gpu-0"]
    assert after[-1].t - last.t <= 0.1 + 0.011
    meter.close()


def test_a_counter_that_never_moves_times_out_with_a_warning(fake_pynvml, clock):
    meter, sampler = _rig(fake_pynvml, clock, watts=0.0)
    first = sampler.boundary_read()
    assert not sampler.await_updates(first)
    assert clock.now - first.t <= 0.26
    assert any("no counter update" in w for w in sampler.warnings)
    meter.close()


def _frame(t, v):
    import pandas as pd

    return pd.DataFrame({"t": t, "gpu-0": v, "proc_cpu_s": t, "sys_cpu_s": t})
