"""EnergyMonitor windows and Measurement: the documented example runs, windows nest,
totals sum only non-overlapping domains, static domains are flagged."""

from __future__ import annotations

import doctest

import pytest

import alems.energy.monitor as monitor_mod
from alems.energy.base import Domain
from alems.energy.monitor import EnergyMonitor, Measurement, measurement_between
from alems.energy.rapl import RaplMeter
from alems.energy.sampler import Sample


def test_class_docstring_example_runs() -> None:
    assert (EnergyMonitor.__doc__ or "").lstrip().startswith("Measure the energy of named code windows.")
    result = doctest.testmod(monitor_mod, raise_on_error=False, verbose=False)
    assert result.attempted >= 3 and result.failed == 0


def test_windows_nest_and_sum_non_overlapping_domains(powercap, clock) -> None:
    fake = powercap("intel-2s")
    with EnergyMonitor(RaplMeter(fake.root), clock=clock, start=False) as mon:
        t0 = mon.begin_window("outer")
        assert t0 == clock.now
        clock.advance(1.0)
        fake.add_j("package-0", 10.0)
        mon.begin_window("inner")
        clock.advance(2.0)
        for key, j in {
            "package-0": 20.0,
            "core-0": 15.0,
            "dram-0": 3.0,
            "package-1": 5.0,
            "dram-1": 1.0,
        }.items():
            fake.add_j(key, j)
        inner = mon.end_window("inner")
        outer = mon.end_window("outer")
        with pytest.raises(ValueError, match="window 'inner' was never begun"):
            mon.end_window("inner")
        mon.begin_window("x")
        with pytest.raises(ValueError, match="window 'x' is already open"):
            mon.begin_window("x")
    assert isinstance(inner, Measurement) and inner.key == "inner"
    assert inner.duration_s == pytest.approx(2.0) and outer.duration_s == pytest.approx(3.0)
    assert inner.energy_j["package-0"] == pytest.approx(20.0) and outer.energy_j[
        "package-0"
    ] == pytest.approx(30.0)
    # packages + dram; core is inside its package and is not added
    assert inner.total_j == pytest.approx(20.0 + 3.0 + 5.0 + 1.0)
    assert inner.static == ["core-1"]
    assert sorted(outer.static) == ["core-1"]
    assert inner.mean_power_w["package-0"] == pytest.approx(10.0)
    assert set(inner.sources.values()) == {"measured"}


def test_measurement_between_is_pure() -> None:
    doms = [Domain("psys", "psys", "measured", "rapl"), Domain("gpu-0", "gpu", "measured", "nvml")]
    a = Sample(10.0, {"psys": 5.0, "gpu-0": 100.0}, 1.0, 50.0, True)
    b = Sample(12.0, {"psys": 9.0, "gpu-0": 100.0}, 1.5, 51.0, True)
    m = measurement_between("k", a, b, doms)
    assert (m.t0, m.t1, m.duration_s) == (10.0, 12.0, 2.0)
    assert m.energy_j == {"psys": 4.0, "gpu-0": 0.0} and m.total_j == 4.0
    assert m.static == ["gpu-0"] and m.proc_cpu_s == 0.5 and m.sys_cpu_s == 1.0
