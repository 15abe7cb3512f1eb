"""NVIDIA GPU energy through NVML (package ``nvidia-ml-py``, module ``pynvml``).

``pynvml`` is imported lazily, inside :class:`NvmlMeter`, because most machines have
no GPU; tests pass a fake module instead (``pynvml_module=``).

Per visible GPU (domain ``gpu-N``, N = the NVML index, the one ``nvidia-smi`` shows):

* Volta and newer: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load);
* older GPUs, or where that call is not supported: ``nvmlDeviceGetPowerUsage`` (mW)
  polled on every read and integrated with the trapezoid rule, so the result is only
  as good as the polling (the sampler polls every 10 ms).

``CUDA_VISIBLE_DEVICES`` is honoured with CUDA's rules: a comma list of indices or
(prefixes of) ``GPU-``/``MIG-`` UUIDs; the list stops at the first entry that names no
device; an empty value hides every GPU. Both counters update about every 100 ms
(``update_period_s``). The energy counter's domains are marked ``stepwise``:
accounting and ``alems measure`` reconstruct them from their update instants
(:mod:`alems.energy.stepwise`). :meth:`NvmlMeter.device_processes` lists the PIDs on
each GPU, so accounting can tell a GPU used only by the study (``gpu_shared`` otherwise).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from alems.energy.base import Domain, Meter, absent
from alems.energy.wrap import counter_error
from alems.errors import MeterError

#: NVML energy and power readings refresh about every 100 ms (80-100 ms seen on H100).
UPDATE_PERIOD_S = 0.1
_VOLTA = 5  # NVML_DEVICE_ARCH_VOLTA


def load_pynvml(module: ModuleType | None = None) -> ModuleType:
    """The ``pynvml`` module (or ``module``), with a typed error when it is missing."""
    if module is not None:
        return module
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise absent(
            MeterError(
                "the NVML Python bindings (module pynvml) are not installed",
                "pip install nvidia-ml-py   (the package is nvidia-ml-py, the module pynvml)",
            )
        ) from exc


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _err_name(nv: ModuleType, exc: Exception) -> str:
    value = getattr(exc, "value", None)
    for name in ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_ERROR_DRIVER_NOT_LOADED", "NVML_ERROR_NOT_SUPPORTED"):
        if value is not None and value == getattr(nv, name, object()):
            return name
    return type(exc).__name__


def _architecture(nv: ModuleType, h: Any) -> int | None:
    try:
        return int(nv.nvmlDeviceGetArchitecture(h))
    except Exception:
        return None


def _has_energy_counter(nv: ModuleType, h: Any, arch: int | None) -> bool:
    """Whether GPU ``h`` answers ``nvmlDeviceGetTotalEnergyConsumption`` (tried on Volta and newer,
    or an unknown architecture)."""
    if arch is not None and arch < getattr(nv, "NVML_DEVICE_ARCH_VOLTA", _VOLTA):
        return False
    try:
        nv.nvmlDeviceGetTotalEnergyConsumption(h)
    except Exception:
        return False
    return True


def _power_limit_w(nv: ModuleType, h: Any) -> float | None:
    """The enforced (else the management) power limit in watts; ``None`` if NVML gives neither."""
    for fn in ("nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerManagementLimit"):
        try:
            return float(getattr(nv, fn)(h)) / 1000.0
        except Exception:
            continue
    return None


def parse_visible_devices(
    value: str | None,
    count: int,
    uuids: list[str],
    mig_parent: Callable[[str], int | None] | None = None,
) -> tuple[list[int], list[str]]:
    """NVML indices visible under ``CUDA_VISIBLE_DEVICES=value``, and warnings.

    ``uuids[i]`` is GPU i's UUID. ``mig_parent`` maps a MIG UUID to its GPU's index.
    """
    if value is None:
        return list(range(count)), []
    warnings: list[str] = []
    out: list[int] = []
    tokens = [t.strip() for t in value.split(",")]
    if value.strip() == "":
        return [], [f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU"]
    for pos, tok in enumerate(tokens):
        idx: int | None = None
        if tok.lstrip("-").isdigit():
            n = int(tok)
            idx = n if 0 <= n < count else None
        elif tok.startswith("GPU-"):
            matches = [i for i, u in enumerate(uuids) if u.startswith(tok)]
            idx = matches[0] if len(matches) == 1 else None
        elif tok.startswith("MIG-") and mig_parent is not None:
            idx = mig_parent(tok)
            if idx is not None:
                warnings.append(
                    f"CUDA_VISIBLE_DEVICES entry {tok} is a MIG instance: gpu-{idx} energy is the whole GPU's"
                )
        if idx is None:
            rest = ",".join(tokens[pos:])
            warnings.append(
                f"CUDA_VISIBLE_DEVICES entry {tok!r} names no GPU here; as CUDA does, "
                f"it and the entries after it are ignored ({rest})"
            )
            break
        if idx in out:
            warnings.append(f"CUDA_VISIBLE_DEVICES lists GPU {idx} twice; counted once")
            continue
        out.append(idx)
    return out, warnings


@dataclass
class _Gpu:
    key: str
    index: int
    handle: Any
    energy_api: bool
    # power-poll integration state
    last_t: float | None = None
    last_w: float | None = None
    energy_j: float = 0.0


class NvmlMeter(Meter):
    """Energy of every visible NVIDIA GPU. See the module docstring for the method."""

    name = "nvml"

    def __init__(
        self,
        *,
        visible_devices: str | None = None,
        use_env: bool = True,
        pynvml_module: ModuleType | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        nv = load_pynvml(pynvml_module)
        self.nv = nv
        self.clock = clock
        self.warnings_: list[str] = []
        try:
            nv.nvmlInit()
        except Exception as exc:  # pynvml raises NVMLError subclasses
            name = _err_name(nv, exc)
            if name == "NVML_ERROR_LIBRARY_NOT_FOUND":
                raise absent(
                    MeterError(
                        "NVML library (libnvidia-ml.so.1) not found: no NVIDIA driver here",
                        "install the NVIDIA driver on a machine with an NVIDIA GPU; "
                        "without a GPU there is nothing to fix (the CPU is measured or modeled)",
                    )
                ) from exc
            if name == "NVML_ERROR_DRIVER_NOT_LOADED":
                raise MeterError(
                    "the NVIDIA kernel driver is not loaded",
                    "sudo modprobe nvidia (or reboot after installing the driver); check with nvidia-smi",
                ) from exc
            raise MeterError(f"NVML failed to initialise: {exc}", "check the driver with nvidia-smi") from exc
        self._inited = True
        try:
            self._setup(
                visible_devices
                if visible_devices is not None or not use_env
                else os.environ.get("CUDA_VISIBLE_DEVICES")
            )
        except BaseException:
            self.close()
            raise

    def _setup(self, visible: str | None) -> None:
        nv = self.nv
        count = int(nv.nvmlDeviceGetCount())
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [_text(nv.nvmlDeviceGetUUID(h)) for h in handles]
        indices, warns = parse_visible_devices(visible, count, uuids, self._mig_parent)
        self.warnings_ += warns
        if count == 0:
            raise absent(MeterError("NVML found no NVIDIA GPU", "nothing to fix on a machine without a GPU"))
        if not indices:
            raise MeterError(
                f"CUDA_VISIBLE_DEVICES={visible!r} hides all {count} GPU(s)",
                "unset CUDA_VISIBLE_DEVICES or list the GPUs to measure, e.g. CUDA_VISIBLE_DEVICES=0",
            )
        try:
            driver = _text(nv.nvmlSystemGetDriverVersion())
        except Exception:
            driver = "unknown"
        self.driver_version = driver
        self._gpus: list[_Gpu] = []
        self._domains: list[Domain] = []
        for cuda_idx, i in enumerate(indices):
            self._add_gpu(i, cuda_idx, handles[i], uuids[i])

    def _mig_parent(self, uuid: str) -> int | None:
        """The NVML index of the GPU holding MIG instance ``uuid`` (``None``: not found)."""
        nv = self.nv
        try:
            h = nv.nvmlDeviceGetHandleByUUID(uuid)
            parent = nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(h)
            return int(nv.nvmlDeviceGetIndex(parent))
        except Exception:
            return None

    def _add_gpu(self, i: int, cuda_idx: int, h: Any, uuid: str) -> None:
        """Open GPU ``i`` (CUDA index ``cuda_idx``): its read method, limits and domain."""
        nv = self.nv
        key = f"gpu-{i}"
        arch = _architecture(nv, h)
        energy_api = _has_energy_counter(nv, h, arch)
        limit_w = _power_limit_w(nv, h)
        try:
            mem = int(nv.nvmlDeviceGetMemoryInfo(h).total)
        except Exception:
            mem = None
        gpu = _Gpu(key, i, h, energy_api)
        if not energy_api:
            self.warnings_.append(
                f"{key}: no NVML energy counter (architecture {arch}); integrating polled power"
            )
            gpu.last_w = self._power_w(gpu)
            gpu.last_t = self.clock()
        self._gpus.append(gpu)
        self._domains.append(
            Domain(
                key=key,
                kind="gpu",
                source="measured",
                meter="nvml",
                max_range_j=None,
                max_power_w=limit_w,
                location=uuid,
                info={
                    "name": _text(nv.nvmlDeviceGetName(h)),
                    "uuid": uuid,
                    "nvml_index": i,
                    "cuda_index": cuda_idx,
                    "architecture": arch,
                    "method": "energy counter" if energy_api else "power polling",
                    "driver_version": self.driver_version,
                    "power_limit_w": limit_w,
                    "memory_total_bytes": mem,
                    "update_period_s": UPDATE_PERIOD_S,
                    # the energy counter moves in ~100 ms steps: accounting reconstructs
                    # it from its update instants (alems.energy.stepwise)
                    "stepwise": energy_api,
                },
            )
        )

    def warnings(self) -> list[str]:
        return list(self.warnings_)

    def spec(self) -> dict[str, object] | None:
        # Energy counters read the same from any process; integrated power does not.
        # A module object made in this process (a test fake) cannot be re-imported.
        if getattr(self.nv, "__spec__", None) is None or not all(g.energy_api for g in self._gpus):
            return None
        return {"kind": "nvml", "visible": ",".join(str(g.index) for g in self._gpus)}

    def domains(self) -> list[Domain]:
        return list(self._domains)

    def device_processes(self) -> dict[str, set[int]]:
        """PIDs with a compute or graphics context on each GPU (NVML's running-process lists).

        A list NVML cannot give (not supported, no permission) is left out; a GPU whose
        lists are all unavailable maps to an empty set, so nothing is flagged on a guess.
        """
        out: dict[str, set[int]] = {}
        for g in self._gpus:
            pids: set[int] = set()
            for fn in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
                call = getattr(self.nv, fn, None)
                if call is None:
                    continue
                try:
                    procs = call(g.handle) or []
                except Exception:
                    continue
                pids |= {int(p.pid) for p in procs if getattr(p, "pid", None) is not None}
            out[g.key] = pids
        return out

    def _power_w(self, gpu: _Gpu) -> float:
        try:
            return float(self.nv.nvmlDeviceGetPowerUsage(gpu.handle)) / 1000.0
        except Exception as exc:
            raise counter_error(gpu.key, f"NVML power read failed: {exc}") from exc

    def read_raw(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for g in self._gpus:
            if g.energy_api:
                try:
                    out[g.key] = float(self.nv.nvmlDeviceGetTotalEnergyConsumption(g.handle)) / 1000.0
                except Exception as exc:
                    raise counter_error(g.key, f"NVML energy read failed: {exc}") from exc
                continue
            w = self._power_w(g)
            t = self.clock()
            if g.last_t is not None and g.last_w is not None and t > g.last_t:
                g.energy_j += 0.5 * (w + g.last_w) * (t - g.last_t)
            g.last_t, g.last_w = t, w
            out[g.key] = g.energy_j
        return out

    def close(self) -> None:
        if getattr(self, "_inited", False):
            self._inited = False
            with contextlib.suppress(Exception):
                self.nv.nvmlShutdown()
