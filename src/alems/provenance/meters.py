"""The meters' hardware in the fingerprint, read through the energy layer.

* RAPL: the powercap zones that :mod:`alems.energy.rapl` walks and reads, each with its
  ``enabled`` flag, counter range and power-limit constraints. :func:`alems.energy.rapl.discover`
  keeps only the zones it measures; the fingerprint records every zone the walk finds
  (``intel-rapl-mmio`` duplicates, zones it does not read), so :func:`powercap_zones` is a
  thin adapter over the energy layer's walk and :class:`~alems.energy.rapl.RaplZone`.
* GPUs: NVML loaded by :func:`alems.energy.nvml.load_pynvml`. The record lists every GPU
  NVML reports with its static properties (name, driver, architecture, power limits,
  memory), whatever ``CUDA_VISIBLE_DEVICES`` hides from the meter, so the queries stay here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alems.energy.nvml import load_pynvml
from alems.energy.rapl import RaplZone, read_zone, zone_dirs
from alems.errors import MeterError
from alems.provenance.host import read_int, read_text

#: Powercap numbers constraints from 0 without gaps; the fingerprint reads at most this many.
MAX_CONSTRAINTS = 64

GpuRecords = tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]


# =========================================================================== RAPL
def powercap_zones(powercap_root: str | os.PathLike[str]) -> list[RaplZone]:
    """Every powercap zone the energy layer finds under ``powercap_root``, sorted by zone id.

    Zones nested inside others and zones linked at the top level are found once each;
    a zone whose ``name`` cannot be read is left out, as the energy layer leaves it out.
    """
    found = (read_zone(zone_id, path) for zone_id, path in zone_dirs(Path(powercap_root)).items())
    return sorted((zone for zone in found if zone is not None), key=lambda zone: zone.zone_id)


def _constraints(zone_dir: Path) -> list[dict[str, Any]]:
    """``constraint_<i>_*`` for i = 0, 1, ... up to the first missing name, in index order."""
    constraints = []
    for i in range(MAX_CONSTRAINTS):
        cname = read_text(zone_dir / f"constraint_{i}_name")
        if cname is None:
            break
        constraints.append(
            {
                "index": i,
                "name": cname,
                "power_limit_uw": read_int(zone_dir / f"constraint_{i}_power_limit_uw"),
                "time_window_us": read_int(zone_dir / f"constraint_{i}_time_window_us"),
                "max_power_uw": read_int(zone_dir / f"constraint_{i}_max_power_uw"),
            }
        )
    return constraints


def zone_record(zone: RaplZone) -> dict[str, Any]:
    """One zone as the hardware fingerprint records it (keyed by its directory name)."""
    return {
        "zone": zone.zone_id,
        "name": zone.name,
        "parent": zone.parent_id,
        "enabled": read_text(zone.path / "enabled"),
        "max_energy_range_uj": zone.max_energy_range_uj,
        "constraints": _constraints(zone.path),
    }


def collect_rapl(powercap_root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every powercap zone (``intel-rapl:*``, ``intel-rapl-mmio:*``) with its range and limits.

    Works on the real layout (sub-zones both nested and linked at the top level) and on
    fake trees that only nest them. Zones are keyed by their directory name.
    """
    return [zone_record(zone) for zone in powercap_zones(powercap_root)]


# =========================================================================== GPUs
def _try(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or ``None`` if NVML raises (a query the GPU or driver does not support)."""
    try:
        return fn(*args)
    except Exception:
        return None


def _text(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _watts(milliwatts: Any) -> float | None:
    return milliwatts / 1000.0 if milliwatts is not None else None


def _gpu_record(nvml: Any, handle: Any, index: int, driver: Any, cuda: Any) -> dict[str, Any]:
    """The hashed properties of one GPU (those that do not change while the machine stands still)."""
    mem = _try(nvml.nvmlDeviceGetMemoryInfo, handle)
    cc = _try(nvml.nvmlDeviceGetCudaComputeCapability, handle)
    return {
        "index": index,
        "name": _text(_try(nvml.nvmlDeviceGetName, handle)),
        "driver": driver,
        "cuda_driver": cuda,
        "architecture": _try(nvml.nvmlDeviceGetArchitecture, handle),
        "compute_capability": list(cc) if cc is not None else None,
        "power_limit_w": _watts(_try(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)),
        "default_power_limit_w": _watts(_try(nvml.nvmlDeviceGetPowerManagementDefaultLimit, handle)),
        "memory_total_bytes": getattr(mem, "total", None),
    }


def _gpu_readings(nvml: Any, handle: Any, index: int) -> dict[str, Any]:
    """The volatile readings of one GPU: UUID, temperature, power draw."""
    temp_sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
    return {
        "index": index,
        "uuid": _text(_try(nvml.nvmlDeviceGetUUID, handle)),
        "temperature_c": _try(nvml.nvmlDeviceGetTemperature, handle, temp_sensor),
        "power_w": _watts(_try(nvml.nvmlDeviceGetPowerUsage, handle)),
    }


def _read_gpus(nvml: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(stable, volatile)`` records of every GPU an initialised NVML lists."""
    driver = _text(_try(nvml.nvmlSystemGetDriverVersion))
    cuda = _try(nvml.nvmlSystemGetCudaDriverVersion)
    stable: list[dict[str, Any]] = []
    volatile: list[dict[str, Any]] = []
    for i in range(_try(nvml.nvmlDeviceGetCount) or 0):
        handle = _try(nvml.nvmlDeviceGetHandleByIndex, i)
        if handle is None:
            stable.append({"index": i, "name": None, "error": "no NVML handle"})
            continue
        stable.append(_gpu_record(nvml, handle, i, driver, cuda))
        volatile.append(_gpu_readings(nvml, handle, i))
    return stable, volatile


def collect_gpus(nvml: Any = None) -> GpuRecords:
    """GPUs via NVML: ``(stable records, volatile records, note)``.

    ``nvml`` is a module with the ``pynvml`` API; ``None`` imports ``pynvml`` lazily, and
    ``False`` skips NVML. No NVML means no GPUs, with the reason in ``note``.
    """
    if nvml is False:
        return [], [], "NVML skipped"
    if nvml is None:
        try:
            nvml = load_pynvml()
        except MeterError:
            return [], [], "pynvml is not installed"
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return [], [], f"NVML unavailable: {exc}"
    try:
        stable, volatile = _read_gpus(nvml)
    finally:
        _try(nvml.nvmlShutdown)
    return stable, volatile, None
