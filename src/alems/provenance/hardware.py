"""The hardware fingerprint (``hardware.json``): CPU identity and topology, governor, turbo
and frequency limits, RAM, RAPL zones and GPUs (read through the energy layer, see
:mod:`alems.provenance.meters`), kernel and virtualisation; and beside it the volatile
readings (current frequency, temperatures, uptime, load, host name) that are never hashed.
"""

from __future__ import annotations

import platform
import re
import socket
from pathlib import Path
from typing import Any

from alems.provenance.host import (
    HostPaths,
    Runner,
    first_float,
    read_int,
    read_text,
    run_command,
    uniform,
)
from alems.provenance.meters import collect_gpus, collect_rapl


# =========================================================================== CPU
def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dict per processor block."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _online_cpu_dirs(cpu_sys: Path) -> list[Path]:
    if not cpu_sys.is_dir():
        return []
    dirs = [p for p in cpu_sys.iterdir() if re.fullmatch(r"cpu\d+", p.name) and p.is_dir()]
    online = [p for p in dirs if read_text(p / "online") in (None, "1")]
    return sorted(online, key=lambda p: int(p.name[3:]))


def _topology(paths: HostPaths, blocks: list[dict[str, str]]) -> dict[str, int | None]:
    cpus = [p for p in _online_cpu_dirs(paths.cpu_sys) if (p / "topology").is_dir()]
    if cpus:
        pkgs, cores = set(), set()
        for p in cpus:
            pkg = read_int(p / "topology" / "physical_package_id")
            die = read_int(p / "topology" / "die_id")
            core = read_int(p / "topology" / "core_id")
            pkgs.add(pkg)
            cores.add((pkg, die, core))
        return {"sockets": len(pkgs), "cores": len(cores), "threads": len(cpus)}
    procs = [b for b in blocks if "processor" in b]
    if not procs:
        return {"sockets": None, "cores": None, "threads": None}
    if all("physical id" in b and "core id" in b for b in procs):
        return {
            "sockets": len({b["physical id"] for b in procs}),
            "cores": len({(b["physical id"], b["core id"]) for b in procs}),
            "threads": len(procs),
        }
    return {"sockets": None, "cores": None, "threads": len(procs)}


def collect_cpu(paths: HostPaths) -> dict[str, Any]:
    """CPU identity and topology (no current frequency: that is volatile)."""
    blocks = parse_cpuinfo(read_text(paths.cpuinfo) or "")
    first = blocks[0] if blocks else {}

    def field_(*keys: str) -> Any:
        for key in keys:
            value = uniform(b.get(key) for b in blocks)
            if value is not None:
                return value
        return None

    flags = sorted(set((first.get("flags") or first.get("Features") or "").split()))
    return {
        "vendor": field_("vendor_id", "CPU implementer"),
        "model_name": field_("model name", "Processor", "cpu model"),
        "family": field_("cpu family", "CPU architecture"),
        "model": field_("model", "CPU part"),
        "stepping": field_("stepping", "CPU revision"),
        "microcode": field_("microcode"),
        **_topology(paths, blocks),
        "flags": flags,
    }


# =========================================================================== cpufreq
def read_turbo(paths: HostPaths) -> dict[str, Any]:
    """Turbo/boost state: ``{"enabled": bool | None, "mechanism": str | None}``."""
    no_turbo = read_int(paths.cpu_sys / "intel_pstate" / "no_turbo")
    if no_turbo is not None:
        return {"enabled": no_turbo == 0, "mechanism": "intel_pstate/no_turbo"}
    boost = read_int(paths.cpu_sys / "cpufreq" / "boost")
    if boost is not None:
        return {"enabled": boost == 1, "mechanism": "cpufreq/boost"}
    per_policy = [read_int(p / "boost") for p in sorted((paths.cpu_sys / "cpufreq").glob("policy*"))]
    per_policy = [v for v in per_policy if v is not None]
    if per_policy:
        return {"enabled": all(v == 1 for v in per_policy), "mechanism": "cpufreq/policy*/boost"}
    return {"enabled": None, "mechanism": None}


def _cpufreq_dirs(paths: HostPaths) -> list[Path]:
    policies = sorted((paths.cpu_sys / "cpufreq").glob("policy*"))
    if policies:
        return policies
    return [p / "cpufreq" for p in _online_cpu_dirs(paths.cpu_sys) if (p / "cpufreq").is_dir()]


def _intel_pstate(paths: HostPaths) -> dict[str, Any] | None:
    pstate_dir = paths.cpu_sys / "intel_pstate"
    if not pstate_dir.is_dir():
        return None
    return {
        "status": read_text(pstate_dir / "status"),
        "min_perf_pct": read_int(pstate_dir / "min_perf_pct"),
        "max_perf_pct": read_int(pstate_dir / "max_perf_pct"),
    }


def collect_cpufreq(paths: HostPaths) -> dict[str, Any]:
    """Governor, driver, energy-performance preference, turbo and frequency limits (kHz)."""
    dirs = _cpufreq_dirs(paths)

    def across(name: str, as_int: bool = False) -> Any:
        return uniform((read_int if as_int else read_text)(d / name) for d in dirs)

    return {
        "driver": across("scaling_driver"),
        "governor": across("scaling_governor"),
        "energy_performance_preference": across("energy_performance_preference"),
        "turbo": read_turbo(paths),
        "limits_khz": {
            "cpuinfo_min": across("cpuinfo_min_freq", True),
            "cpuinfo_max": across("cpuinfo_max_freq", True),
            "scaling_min": across("scaling_min_freq", True),
            "scaling_max": across("scaling_max_freq", True),
        },
        "intel_pstate": _intel_pstate(paths),
    }


def cpu_power_state(paths: HostPaths | None = None) -> tuple[Any, bool | None]:
    """``(governor, turbo_enabled)``: what an idle baseline depends on besides the hardware."""
    paths = paths or HostPaths()
    governor = uniform(read_text(d / "scaling_governor") for d in _cpufreq_dirs(paths))
    return governor, read_turbo(paths)["enabled"]


# =========================================================================== memory, kernel, virtualisation
def collect_memory(paths: HostPaths) -> dict[str, Any]:
    total = None
    for line in (read_text(paths.meminfo) or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                total = int(parts[1]) * (1024 if len(parts) > 2 and parts[2].lower() == "kb" else 1)
            except (IndexError, ValueError):
                total = None
    return {"total_bytes": total}


def _kernel(paths: HostPaths) -> dict[str, Any]:
    return {
        "system": platform.system(),
        "release": read_text(paths.osrelease) or platform.release(),
        "machine": platform.machine(),
    }


def collect_virtualisation(paths: HostPaths, run: Runner, hypervisor_flag: bool) -> dict[str, Any]:
    def detect(flag: str) -> str | None:
        res = run(["systemd-detect-virt", flag])
        if res is None:
            return None
        out = res[1].strip()
        return out or None

    dmi = {k: read_text(paths.dmi / k) for k in ("sys_vendor", "product_name", "board_vendor")}
    vm = detect("--vm")
    virtualised: bool | None
    if vm is not None:
        virtualised = vm != "none"
    else:
        virtualised = True if hypervisor_flag else None
    return {
        "virtualised": virtualised,
        "vm": vm,
        "container": detect("--container"),
        "hypervisor_flag": hypervisor_flag,
        "dmi": dmi,
    }


# =========================================================================== volatile readings
def _current_mhz(paths: HostPaths) -> dict[str, float] | None:
    khz = [read_int(p / "cpufreq" / "scaling_cur_freq") for p in _online_cpu_dirs(paths.cpu_sys)]
    mhz = [k / 1000.0 for k in khz if k is not None]
    if not mhz:
        for block in parse_cpuinfo(read_text(paths.cpuinfo) or ""):
            value = first_float(block.get("cpu MHz"))
            if value is not None:
                mhz.append(value)
    if not mhz:
        return None
    return {"min": min(mhz), "max": max(mhz), "mean": sum(mhz) / len(mhz)}


def _temperatures(thermal: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for zone in sorted(thermal.glob("thermal_zone*")) if thermal.is_dir() else []:
        milli = read_int(zone / "temp")
        if milli is not None:
            out[f"{zone.name}:{read_text(zone / 'type') or '?'}"] = milli / 1000.0
    return out


def _host_readings(paths: HostPaths) -> dict[str, Any]:
    """What changes from run to run on an unchanged machine: recorded beside the hashes."""
    return {
        "host": socket.gethostname(),
        "powercap_root": str(paths.powercap_root),
        "uptime_s": first_float(read_text(paths.uptime)),
        "loadavg": [first_float(x) for x in (read_text(paths.loadavg) or "").split()[:3]] or None,
        "cpu_mhz": _current_mhz(paths),
        "temperatures_c": _temperatures(paths.thermal),
    }


# =========================================================================== the record
def collect_hardware(
    paths: HostPaths | None = None, *, nvml: Any = None, run: Runner | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(hardware, volatile)``: the hashed hardware record and the volatile readings beside it."""
    paths = paths or HostPaths()
    run = run or run_command
    cpu = collect_cpu(paths)
    gpus, gpu_volatile, gpu_note = collect_gpus(nvml)
    hardware = {
        "cpu": cpu,
        "cpufreq": collect_cpufreq(paths),
        "memory": collect_memory(paths),
        "rapl_zones": collect_rapl(paths.powercap_root),
        "gpus": gpus,
        "kernel": _kernel(paths),
        "virtualisation": collect_virtualisation(paths, run, "hypervisor" in cpu["flags"]),
    }
    volatile = {**_host_readings(paths), "gpus": gpu_volatile, "gpu_note": gpu_note}
    return hardware, volatile
