"""``open_meter``: the auto policy (live measured domains, dead counters out, CPU modeled
when no live CPU counter), explicit kinds, and the composite meter."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from alems.energy import open_meter
from alems.energy.auto import find_dead, probe, select_auto
from alems.energy.base import summable_keys
from alems.energy.composite import CompositeMeter, FilteredMeter
from alems.energy.model import CpuModelMeter, ModelParams
from alems.energy.monitor import EnergyMonitor
from alems.energy.procstat import ProcStat
from alems.energy.rapl import RaplMeter
from alems.energy.simulated import SimulatedRapl
from alems.errors import ConfigError, MeterError, PermissionDeniedError


def test_nothing_here_gives_the_cpu_model(tmp_path: Path, no_pynvml, caplog) -> None:
    with caplog.at_level("INFO", logger="alems.energy"):
        m = open_meter("auto", powercap_root=str(tmp_path / "none"))
    assert [(d.key, d.source) for d in m.domains()] == [("cpu-model", "modeled")]
    lines = [r.getMessage() for r in caplog.records if r.name == "alems.energy"]
    assert len(lines) == 1
    assert lines[0].startswith(
        "auto meter: no GPU (the NVML Python bindings (module pynvml) are not installed); "
    )
    assert f"modeled cpu-model for the CPU because no RAPL powercap zones at {tmp_path / 'none'}" in lines[0]
    n = ProcStat().n_cpus
    assert f"(P_idle {0.74 * n:.2f} W, P_max {3.5 * n:.2f} W, " in lines[0]


def test_gpu_measured_and_cpu_modeled_like_the_h100_vm(tmp_path: Path, fake_pynvml, caplog) -> None:
    fake_pynvml.add_gpu(watts=71.0)  # idle H100: its counter moves
    with caplog.at_level("INFO", logger="alems.energy"):
        m = open_meter("auto", powercap_root=str(tmp_path / "none"), calibration_s=0.05)
    assert [(d.key, d.source) for d in m.domains()] == [("gpu-0", "measured"), ("cpu-model", "modeled")]
    assert summable_keys(m.domains()) == ["gpu-0", "cpu-model"]
    line = caplog.records[0].getMessage()
    assert "measured gpu-0 NVIDIA H100 80GB HBM3 via energy counter (NVML)" in line
    assert "modeled cpu-model for the CPU because no RAPL powercap zones" in line
    m.close()


def test_dead_gpu_is_left_out_with_a_warning(tmp_path: Path, fake_pynvml, caplog) -> None:
    fake_pynvml.add_gpu(watts=71.0)
    fake_pynvml.add_gpu(watts=0.0)  # counter never moves
    with caplog.at_level("INFO", logger="alems.energy"):
        m = open_meter("auto", powercap_root=str(tmp_path / "none"), calibration_s=0.05)
    assert [d.key for d in m.domains()] == ["gpu-0", "cpu-model"]
    assert isinstance(m, CompositeMeter) and isinstance(m.meters[0], FilteredMeter)
    warns = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warns == [
        "gpu-1 left out of auto: dead counter, did not move under a 0.25 s calibration load (stuck at 0 J)"
    ]
    assert "left out as dead: gpu-1" in caplog.records[0].getMessage()
    assert set(m.read_raw()) == {"gpu-0", "cpu-model"}


def test_dead_psys_left_out_and_live_rapl_covers_the_cpu(tmp_path: Path, no_pynvml, caplog) -> None:
    with SimulatedRapl(tmp_path / "pc", "intel-psys", watts=20, dead=["psys"]):
        with caplog.at_level("INFO", logger="alems.energy"):
            m = open_meter("auto", powercap_root=str(tmp_path / "pc"), calibration_s=0.1)
        assert [d.key for d in m.domains()] == ["package-0", "core-0", "uncore-0"]
        assert all(d.source == "measured" for d in m.domains())
        line = caplog.records[0].getMessage()
        assert line.startswith("auto meter: measured package-0, core-0, uncore-0 (RAPL at ")
        assert "live under a 0.10 s calibration load" in line and "left out as dead: psys" in line
        assert "cpu-model" not in line
        assert (
            "psys left out of auto: dead counter, did not move under a 0.10 s calibration load" in caplog.text
        )
        # explicit rapl reads every present domain, dead or not; the window flags it static
        with EnergyMonitor(open_meter("rapl", powercap_root=str(tmp_path / "pc"))) as mon:
            mon.begin_window("w")
            time.sleep(0.2)
            w = mon.end_window("w")
        assert set(w.energy_j) == {"package-0", "core-0", "uncore-0", "psys"}
        assert w.static == ["psys"] and w.energy_j["psys"] == 0.0
        assert w.energy_j["package-0"] == pytest.approx(20.0 * w.duration_s, rel=0.1)
        assert w.total_j == w.energy_j["package-0"]


def test_all_rapl_dead_falls_back_to_the_model(powercap, no_pynvml, caplog) -> None:
    fake = powercap("amd")  # nothing moves the counters
    with caplog.at_level("INFO", logger="alems.energy"):
        m = open_meter("auto", powercap_root=str(fake.root), calibration_s=0.02)
    assert [d.key for d in m.domains()] == ["cpu-model"]
    assert "because every RAPL CPU counter is dead" in caplog.records[0].getMessage()
    # without calibration nothing is found dead
    m2 = open_meter("auto", powercap_root=str(fake.root), calibrate=False)
    assert [d.key for d in m2.domains()] == ["package-0", "core-0"]


def test_unreadable_rapl_in_auto_warns_with_the_fix_and_models(
    powercap, no_pynvml, monkeypatch, caplog
) -> None:
    fake = powercap("intel-1s")
    real_open = os.open
    denied = str(fake.energy_file("package-0"))

    def fake_open(path, flags, *a, **kw):  # type: ignore[no-untyped-def]
        if str(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    with caplog.at_level("INFO", logger="alems.energy"):
        m = open_meter("auto", powercap_root=str(fake.root), calibration_s=0.02)
    assert [d.key for d in m.domains()] == ["cpu-model"]
    assert f"because RAPL at {fake.root} is not readable" in caplog.records[0].getMessage()
    warn = next(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert warn.startswith(f"permission denied reading RAPL energy counters: {denied}")
    assert "sudo chmod a+r " + denied in warn
    with pytest.raises(PermissionDeniedError):
        open_meter("rapl", powercap_root=str(fake.root))


def test_explicit_kinds(powercap, fake_pynvml, proc_stat, tmp_path: Path) -> None:
    fake = powercap("intel-psys")
    assert isinstance(open_meter("rapl", powercap_root=str(fake.root)), RaplMeter)
    m = open_meter("model", model_params={"p_idle_w": 2, "p_max_w": 4, "proc_stat": str(proc_stat.path)})
    assert isinstance(m, CpuModelMeter) and m.domains()[0].info["p_max_w"] == 4.0
    assert isinstance(open_meter("model", model_params=ModelParams(p_idle_w=1)), CpuModelMeter)
    with pytest.raises(MeterError, match="NVML found no NVIDIA GPU"):
        open_meter("nvml")
    with pytest.raises(MeterError, match="no RAPL powercap zones under"):
        open_meter("rapl", powercap_root=str(tmp_path / "none"))
    with pytest.raises(ConfigError, match=r"(?s)unknown meter 'joulemeter'.*auto, rapl, nvml, model"):
        open_meter("joulemeter")


def test_composite_and_filtered(powercap, proc_stat) -> None:
    fake = powercap("intel-1s")
    r = RaplMeter(fake.root)
    c = CompositeMeter(
        [FilteredMeter(r, ["package-0"]), CpuModelMeter(ModelParams(proc_stat=str(proc_stat.path)))]
    )
    assert [d.key for d in c.domains()] == ["package-0", "cpu-model"]
    assert set(c.read_raw()) == {"package-0", "cpu-model"}
    with pytest.raises(ValueError, match="domain package-0 is reported by two meters"):
        CompositeMeter([r, r])


def test_probe_and_find_dead_directly(powercap, fake_pynvml) -> None:
    fake = powercap("intel-1s")
    p = probe(str(fake.root), calibrate=False)
    assert p.rapl_status == "ok" and p.nvml_status == "absent" and not p.calibrated
    assert find_dead([p.rapl], 0.01) == {
        k: "did not move under a 0.01 s calibration load (stuck at 0 J)"
        for k in ("package-0", "core-0", "uncore-0")
    }
    meter, sel = select_auto(p)
    assert sel.measured == ["package-0", "core-0", "uncore-0"] and sel.modeled == []
    meter.close()
