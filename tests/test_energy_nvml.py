"""NVML meter against a fake pynvml: energy API, power-poll fallback, CUDA_VISIBLE_DEVICES, errors."""

from __future__ import annotations

import pytest

from alems.energy.monitor import EnergyMonitor
from alems.energy.nvml import NvmlMeter, parse_visible_devices
from alems.energy.sampler import Sampler
from alems.errors import CounterReadError, MeterError


def test_energy_api_on_volta_and_newer(fake_pynvml, clock) -> None:
    g = fake_pynvml.add_gpu(energy_mj=5_000_000)
    m = NvmlMeter(clock=clock)
    (d,) = m.domains()
    assert (d.key, d.kind, d.source, d.meter) == ("gpu-0", "gpu", "measured", "nvml")
    assert d.info["driver_version"] == "550.54.15"
    assert d.info["power_limit_w"] == 700.0 and d.max_power_w == 700.0
    assert d.info["memory_total_bytes"] == 80 * 2**30
    assert d.info["name"] == "NVIDIA H100 80GB HBM3" and d.info["method"] == "energy counter"
    assert d.info["update_period_s"] == pytest.approx(0.1)
    assert d.location == g.uuid and d.max_range_j is None
    assert m.read_raw() == {"gpu-0": pytest.approx(5000.0)}
    g.energy_mj += 1234
    assert m.read_raw() == {"gpu-0": pytest.approx(5001.234)}
    assert fake_pynvml.calls["nvmlDeviceGetPowerUsage"] == 0
    assert m.warnings() == []
    m.close()
    assert fake_pynvml.initialised == 0


def test_power_polling_on_older_gpus(fake_pynvml, clock) -> None:
    g = fake_pynvml.add_gpu(name="Tesla P100", architecture=4, power_mw=100_000)
    m = NvmlMeter(clock=clock)
    (d,) = m.domains()
    assert d.info["method"] == "power polling"
    assert m.warnings() == ["gpu-0: no NVML energy counter (architecture 4); integrating polled power"]
    s = Sampler(m, clock=clock)
    a = s.boundary_read()
    # a linear ramp 100 W -> 200 W over 1 s, polled every 10 ms: the trapezoid rule is exact
    for i in range(1, 101):
        clock.advance(0.01)
        g.power_mw = 100_000 + 1000 * i
        s._read(False)
    b = s.boundary_read()
    assert b.energy_j["gpu-0"] - a.energy_j["gpu-0"] == pytest.approx(150.0)
    assert fake_pynvml.calls["nvmlDeviceGetTotalEnergyConsumption"] == 0  # never tried before Volta


def test_volta_without_energy_support_falls_back_to_polling(fake_pynvml, clock) -> None:
    fake_pynvml.add_gpu(energy_supported=False, power_mw=50_000)
    m = NvmlMeter(clock=clock)
    assert m.domains()[0].info["method"] == "power polling"
    m.read_raw()
    clock.advance(2.0)
    assert m.read_raw()["gpu-0"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("value", "expected", "warn"),
    [
        (None, [0, 1, 2, 3], None),
        ("2,0", [2, 0], None),
        ("1, 3", [1, 3], None),
        ("GPU-00000002", [2], None),  # a UUID prefix, as CUDA accepts
        (
            "0,7,1",
            [0],
            "entry '7' names no GPU here; as CUDA does, it and the entries after it are ignored (7,1)",
        ),
        ("1,-1,2", [1], "entry '-1' names no GPU"),
        ("GPU-0000000", [], "entry 'GPU-0000000' names no GPU"),  # ambiguous prefix
        ("1,1", [1], "lists GPU 1 twice"),
        ("", [], "hides every GPU"),
    ],
)
def test_parse_visible_devices(value: str | None, expected: list[int], warn: str | None) -> None:
    uuids = [f"GPU-{i:08x}-aaaa" for i in range(4)]
    got, warnings = parse_visible_devices(value, 4, uuids)
    assert got == expected
    if warn is None:
        assert warnings == []
    else:
        assert any(warn in w for w in warnings), warnings


def test_cuda_visible_devices_selects_gpus_by_index_and_uuid(fake_pynvml, monkeypatch, clock) -> None:
    gpus = [fake_pynvml.add_gpu(energy_mj=1000 * (i + 1)) for i in range(3)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"2,{gpus[0].uuid}")
    m = NvmlMeter(clock=clock)
    assert [d.key for d in m.domains()] == ["gpu-2", "gpu-0"]
    assert [d.info["cuda_index"] for d in m.domains()] == [0, 1]
    assert m.read_raw() == {"gpu-2": 3.0, "gpu-0": 1.0}
    # an explicit value overrides the environment
    assert [d.key for d in NvmlMeter(visible_devices="1", clock=clock).domains()] == ["gpu-1"]


def test_mig_uuid_maps_to_its_gpu(fake_pynvml, monkeypatch, clock) -> None:
    fake_pynvml.add_gpu()
    fake_pynvml.add_gpu(mig=["MIG-1234"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-1234")
    m = NvmlMeter(clock=clock)
    assert [d.key for d in m.domains()] == ["gpu-1"]
    assert any("MIG instance: gpu-1 energy is the whole GPU's" in w for w in m.warnings())


def test_cuda_visible_devices_hiding_everything(fake_pynvml, monkeypatch) -> None:
    fake_pynvml.add_gpu()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(MeterError) as e:
        NvmlMeter()
    assert "CUDA_VISIBLE_DEVICES='' hides all 1 GPU(s)" in str(e.value)
    assert "unset CUDA_VISIBLE_DEVICES" in str(e.value)
    assert fake_pynvml.initialised == 0  # shut down again


def test_no_gpu(fake_pynvml) -> None:
    with pytest.raises(MeterError, match="NVML found no NVIDIA GPU") as e:
        NvmlMeter()
    assert e.value.absent is True


def test_library_not_found_and_driver_not_loaded(fake_pynvml) -> None:
    fake_pynvml.add_gpu()
    fake_pynvml.init_error = fake_pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    with pytest.raises(MeterError) as e:
        NvmlMeter()
    assert "NVML library (libnvidia-ml.so.1) not found" in str(e.value)
    assert "install the NVIDIA driver" in str(e.value)
    fake_pynvml.init_error = fake_pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    with pytest.raises(MeterError, match=r"(?s)kernel driver is not loaded.*sudo modprobe nvidia"):
        NvmlMeter()
    fake_pynvml.init_error = fake_pynvml.NVML_ERROR_UNKNOWN
    with pytest.raises(MeterError, match="NVML failed to initialise"):
        NvmlMeter()


def test_pynvml_not_installed(no_pynvml) -> None:
    with pytest.raises(MeterError) as e:
        NvmlMeter()
    assert "module pynvml) are not installed" in str(e.value)
    assert "pip install nvidia-ml-py" in str(e.value)


def test_read_failure_is_a_counter_error_for_that_gpu(fake_pynvml, clock) -> None:
    fake_pynvml.add_gpu()
    g = fake_pynvml.add_gpu()
    m = NvmlMeter(clock=clock)
    g.fail_reads = True
    with pytest.raises(CounterReadError) as e:
        m.read_raw()
    assert e.value.domain == "gpu-1" and "gpu-1: NVML energy read failed" in str(e.value)


def test_short_window_warns_about_the_update_period(fake_pynvml, clock) -> None:
    g = fake_pynvml.add_gpu()
    with EnergyMonitor(NvmlMeter(clock=clock), clock=clock, start=False) as mon:
        mon.sampler._read(True)
        mon.begin_window("short")
        clock.advance(0.05)
        g.energy_mj += 10_000
        m = mon.end_window("short")
        assert m.energy_j == {"gpu-0": pytest.approx(10.0)}
        assert m.warnings == [
            "gpu-0: window of 50 ms is shorter than its counter's update period (~100 ms); "
            "its energy is quantised, aggregate longer windows"
        ]
        mon.begin_window("long")
        clock.advance(0.5)
        g.energy_mj += 100_000
        assert mon.end_window("long").warnings == []
