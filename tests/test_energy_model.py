"""The CPU power model: formula, parameters, integration from a scripted /proc/stat."""

from __future__ import annotations

import pytest

from alems.energy.model import (
    CpuModelMeter,
    CpuModelProfile,
    ModelParams,
    model_energy_j,
    model_power_w,
)
from alems.energy.procstat import ProcStat, parse_cpu_line
from alems.energy.sampler import Sampler
from alems.errors import ConfigError, CounterReadError, MeterError


def test_formula() -> None:
    assert model_power_w(10.0, 50.0, 0.0) == 10.0
    assert model_power_w(10.0, 50.0, 0.25) == 20.0
    assert model_power_w(10.0, 50.0, 1.0) == 50.0
    # E over 2 s with 1 of 4 CPUs busy the whole time: 2 x (10 + 40 x 0.25)
    assert model_energy_j(10.0, 50.0, 2.0, 2.0, 4) == pytest.approx(40.0)


def test_defaults_scale_with_cpus_and_are_documented() -> None:
    p = ModelParams()
    assert p.resolve(2) == (pytest.approx(1.48), pytest.approx(7.0))
    assert p.resolve(16) == (pytest.approx(11.84), pytest.approx(56.0))
    assert ModelParams(p_idle_w=5, p_max_w=25).resolve(64) == (5.0, 25.0)
    doc = ModelParams.__doc__ or ""
    assert "0.74 W idle and 3.5 W" in doc and "Cloud Carbon Footprint" in doc


def test_from_dict_and_validation() -> None:
    assert ModelParams.from_dict({"p_idle_w": 3, "p_max_w": 9}).resolve(1) == (3.0, 9.0)
    assert ModelParams.from_dict(None) == ModelParams()
    with pytest.raises(ConfigError) as e:
        ModelParams.from_dict({"p_idle": 3})
    assert "unknown model_params config key(s): p_idle" in str(e.value) and "p_idle_w" in str(e.value)
    with pytest.raises(ConfigError, match=r"model_params.p_max_w \(2\) is below p_idle_w \(5\)"):
        ModelParams(p_idle_w=5, p_max_w=2)
    with pytest.raises(ConfigError, match="model_params.p_idle_w must be a non-negative number of watts"):
        ModelParams(p_idle_w=-1)
    with pytest.raises(ConfigError, match="P_max 2.0 W is below P_idle 7.4 W"):
        ModelParams(p_max_w=2.0).resolve(10)


def test_parse_cpu_line_excludes_steal_from_busy() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy, total = parse_cpu_line("cpu  100 5 20 1000 7 1 2 30 50 0")
    assert busy == 128 and total == 128 + 1000 + 7 + 30


def test_proc_stat_counts_cpus_and_errors(proc_stat, tmp_path) -> None:
    st = ProcStat(str(proc_stat.path))
    assert st.n_cpus == 2
    t0 = st.read()
    proc_stat.advance(busy_s=1.5, idle_s=0.5)
    t1 = st.read()
    assert t1.busy_s - t0.busy_s == pytest.approx(1.5)
    assert t1.total_s - t0.total_s == pytest.approx(2.0)
    with pytest.raises(
        MeterError, match=r"(?s)cannot read .*nope: No such file.*Fix: A-LEMS needs Linux /proc/stat"
    ):
        ProcStat(str(tmp_path / "nope"))
    bad = tmp_path / "bad"
    bad.write_text("hello\n")
    with pytest.raises(MeterError, match="does not start with an aggregate 'cpu' line"):
        ProcStat(str(bad))


def test_meter_integrates_the_model(proc_stat, clock) -> None:
    params = ModelParams(p_idle_w=10.0, p_max_w=30.0, proc_stat=str(proc_stat.path))
    m = CpuModelMeter(params, clock=clock)
    (d,) = m.domains()
    assert (d.key, d.source, d.kind, d.meter) == ("cpu-model", "modeled", "cpu-model", "model")
    assert d.info["p_idle_w"] == 10.0 and d.info["n_cpus"] == 2
    s = Sampler(m, clock=clock, proc_stat=str(proc_stat.path))
    a = s.boundary_read()
    # 1 s idle, then 2 s with one of two CPUs busy, then 1 s with both busy
    clock.advance(1.0)
    proc_stat.advance(idle_s=2.0)
    s.boundary_read()
    for _ in range(20):
        clock.advance(0.1)
        proc_stat.advance(busy_s=0.1, idle_s=0.1)
        s.boundary_read()
    clock.advance(1.0)
    proc_stat.advance(busy_s=2.0)
    b = s.boundary_read()
    expected = 10.0 * 1 + (10.0 + 20.0 * 0.5) * 2 + 30.0 * 1
    assert b.energy_j["cpu-model"] - a.energy_j["cpu-model"] == pytest.approx(expected)
    assert b.sys_cpu_s - a.sys_cpu_s == pytest.approx(4.0)


def test_profile_is_a_closed_form_any_reader_can_share(proc_stat) -> None:
    params = ModelParams(p_idle_w=2.0, p_max_w=6.0, proc_stat=str(proc_stat.path))
    a = CpuModelProfile(params, t0=10.0)
    assert a.energy_j(12.0) == pytest.approx(4.0)
    proc_stat.advance(busy_s=1.0)
    # another reader with the same origin (t0, busy0) gets the same energy at the same t
    b = CpuModelProfile(params, t0=a.t0, busy0=a.busy0)
    assert a.energy_j(13.0) == pytest.approx(b.energy_j(13.0)) == pytest.approx(6.0 + 4.0 * 1.0 / 2)
    m = CpuModelMeter(params)
    spec = m.spec()
    assert spec == {"kind": "model", "params": {**params.__dict__}, "origin": [m.profile.t0, m.profile.busy0]}
    assert CpuModelMeter(params, clock=lambda: 1.0).spec() is None


def test_unreadable_proc_stat_is_a_counter_error(proc_stat, clock) -> None:
    m = CpuModelMeter(ModelParams(proc_stat=str(proc_stat.path)), clock=clock)
    proc_stat.path.unlink()
    with pytest.raises(CounterReadError) as e:
        m.read_raw()
    assert e.value.domain == "cpu-model" and "cpu-model: cannot read CPU times from" in str(e.value)
