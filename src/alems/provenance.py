"""Provenance: what machine, software and config produced a result, and whether it changed since.

This module owns

* the **hardware fingerprint** (``hardware.json``): CPU identity and topology, governor,
  turbo and frequency limits, RAM, RAPL zones with their ranges and power limits, GPUs,
  kernel and virtualisation;
* the **environment** (``environment.json``): Python, every installed distribution,
  the llama-cpp-python build flags, the model's sha256, the git commit and dirty state;
* the **canonical config** (``config.json``): sorted keys, defaults filled in;
* the hashes ``hw_hash``, ``env_hash``, ``config_hash`` (sha256 of the canonical JSON
  of each of the three files, first 16 hex characters) and ``run_id`` (the same over
  the three hashes together);
* the **manifest** (every output with its sha256 and size, plus the hashes), its
  verification, and the refusal to aggregate runs whose hashes differ.

Fields that change from run to run on an unchanged machine (timestamps, current
frequency, temperatures, uptime, load, host name, GPU UUIDs, absolute paths) are kept
in a separate ``volatile`` record written beside the hashes and never hashed.

Everything the fingerprint reads from the host comes through :class:`HostPaths`, an
NVML module handle and a command runner, so tests build a fake host under ``tmp_path``.

It measures no energy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alems.errors import ConfigError, ProvenanceError
from alems.io import atomic_write_json, canonical_json, read_int_or_none, read_text_or_none

HASH_LEN = 16
HASH_FIELDS: tuple[str, str, str] = ("hw_hash", "env_hash", "config_hash")
MANIFEST_VERSION = 1

#: Paths whose uncommitted changes move ``env_hash`` (the code that produces results).
#: Edits elsewhere (README, tests) do not; config edits move ``config_hash`` instead.
DEFAULT_CODE_PATHS: tuple[str, ...] = ("src", "workflow", "Snakefile", "pyproject.toml", "envs")

#: Keys of ``llama_build.json`` that are local paths, not build flags: recorded, not hashed.
_LLAMA_UNHASHED_KEYS = frozenset({"wheel_cache", "host_cpu_flags", "load_failure"})

#: A command runner: ``argv -> (returncode, stdout)``, or ``None`` when the program is absent
#: or could not run.
Runner = Callable[[Sequence[str]], "tuple[int, str] | None"]


# =========================================================================== host access
@dataclass(frozen=True)
class HostPaths:
    """Where the fingerprint reads the host. Tests point every path into a fake tree."""

    cpuinfo: Path = Path("/proc/cpuinfo")
    meminfo: Path = Path("/proc/meminfo")
    cpu_sys: Path = Path("/sys/devices/system/cpu")
    powercap_root: Path = Path("/sys/class/powercap")
    dmi: Path = Path("/sys/class/dmi/id")
    thermal: Path = Path("/sys/class/thermal")
    osrelease: Path = Path("/proc/sys/kernel/osrelease")
    uptime: Path = Path("/proc/uptime")
    loadavg: Path = Path("/proc/loadavg")
    os_release: Path = Path("/etc/os-release")

    @classmethod
    def under(
        cls, root: str | os.PathLike[str], *, powercap_root: str | os.PathLike[str] | None = None
    ) -> HostPaths:
        """Every default path re-rooted under ``root`` (``/proc/cpuinfo`` -> ``root/proc/cpuinfo``)."""
        base = Path(root)
        values = {f.name: base / str(f.default).lstrip("/") for f in dataclasses.fields(cls)}
        if powercap_root is not None:
            values["powercap_root"] = Path(powercap_root)
        return cls(**values)

    def with_powercap(self, powercap_root: str | os.PathLike[str] | None) -> HostPaths:
        if powercap_root is None:
            return self
        return dataclasses.replace(self, powercap_root=Path(powercap_root))


def run_command(argv: Sequence[str], timeout_s: float = 10.0) -> tuple[int, str] | None:
    """Run a program; ``None`` if it is absent or fails to start or times out."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.returncode, proc.stdout


def _read(path: Path) -> str | None:
    return read_text_or_none(path, errors="replace")


def _read_int(path: Path) -> int | None:
    return read_int_or_none(path, errors="replace")


def _uniform(values: Iterable[Any]) -> Any:
    """One value if all agree, the sorted distinct values if not, ``None`` if there are none."""
    distinct = sorted({v for v in values if v is not None}, key=str)
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else distinct


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def _text(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _utc_iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")


# =========================================================================== hardware
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
    online = [p for p in dirs if _read(p / "online") in (None, "1")]
    return sorted(online, key=lambda p: int(p.name[3:]))


def _topology(paths: HostPaths, blocks: list[dict[str, str]]) -> dict[str, int | None]:
    cpus = [p for p in _online_cpu_dirs(paths.cpu_sys) if (p / "topology").is_dir()]
    if cpus:
        pkgs, cores = set(), set()
        for p in cpus:
            pkg = _read_int(p / "topology" / "physical_package_id")
            die = _read_int(p / "topology" / "die_id")
            core = _read_int(p / "topology" / "core_id")
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
    blocks = parse_cpuinfo(_read(paths.cpuinfo) or "")
    first = blocks[0] if blocks else {}

    def field_(*keys: str) -> Any:
        for key in keys:
            value = _uniform(b.get(key) for b in blocks)
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


def read_turbo(paths: HostPaths) -> dict[str, Any]:
    """Turbo/boost state: ``{"enabled": bool | None, "mechanism": str | None}``."""
    no_turbo = _read_int(paths.cpu_sys / "intel_pstate" / "no_turbo")
    if no_turbo is not None:
        return {"enabled": no_turbo == 0, "mechanism": "intel_pstate/no_turbo"}
    boost = _read_int(paths.cpu_sys / "cpufreq" / "boost")
    if boost is not None:
        return {"enabled": boost == 1, "mechanism": "cpufreq/boost"}
    per_policy = [_read_int(p / "boost") for p in sorted((paths.cpu_sys / "cpufreq").glob("policy*"))]
    per_policy = [v for v in per_policy if v is not None]
    if per_policy:
        return {"enabled": all(v == 1 for v in per_policy), "mechanism": "cpufreq/policy*/boost"}
    return {"enabled": None, "mechanism": None}


def _cpufreq_dirs(paths: HostPaths) -> list[Path]:
    policies = sorted((paths.cpu_sys / "cpufreq").glob("policy*"))
    if policies:
        return policies
    return [p / "cpufreq" for p in _online_cpu_dirs(paths.cpu_sys) if (p / "cpufreq").is_dir()]


def collect_cpufreq(paths: HostPaths) -> dict[str, Any]:
    """Governor, driver, energy-performance preference, turbo and frequency limits (kHz)."""
    dirs = _cpufreq_dirs(paths)

    def across(name: str, as_int: bool = False) -> Any:
        return _uniform((_read_int if as_int else _read)(d / name) for d in dirs)

    pstate_dir = paths.cpu_sys / "intel_pstate"
    intel_pstate = None
    if pstate_dir.is_dir():
        intel_pstate = {
            "status": _read(pstate_dir / "status"),
            "min_perf_pct": _read_int(pstate_dir / "min_perf_pct"),
            "max_perf_pct": _read_int(pstate_dir / "max_perf_pct"),
        }
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
        "intel_pstate": intel_pstate,
    }


def cpu_power_state(paths: HostPaths | None = None) -> tuple[Any, bool | None]:
    """``(governor, turbo_enabled)``: what an idle baseline depends on besides the hardware."""
    paths = paths or HostPaths()
    governor = _uniform(_read(d / "scaling_governor") for d in _cpufreq_dirs(paths))
    return governor, read_turbo(paths)["enabled"]


def collect_memory(paths: HostPaths) -> dict[str, Any]:
    total = None
    for line in (_read(paths.meminfo) or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                total = int(parts[1]) * (1024 if len(parts) > 2 and parts[2].lower() == "kb" else 1)
            except (IndexError, ValueError):
                total = None
    return {"total_bytes": total}


def collect_rapl(powercap_root: Path) -> list[dict[str, Any]]:
    """Every powercap zone (``intel-rapl:*``, ``intel-rapl-mmio:*``, ...) with its range and limits.

    Works on the real layout (sub-zones both nested and linked at the top level) and on
    fake trees that only nest them. Zones are keyed by their directory name.
    """
    zones: dict[str, dict[str, Any]] = {}

    def visit(directory: Path) -> None:
        try:
            children = sorted(directory.iterdir())
        except OSError:
            return
        for child in children:
            if ":" not in child.name or not child.is_dir() or child.name in zones:
                continue
            name = _read(child / "name")
            if name is None:
                continue
            constraints = []
            for i in range(64):
                cname = _read(child / f"constraint_{i}_name")
                if cname is None:
                    break
                constraints.append(
                    {
                        "index": i,
                        "name": cname,
                        "power_limit_uw": _read_int(child / f"constraint_{i}_power_limit_uw"),
                        "time_window_us": _read_int(child / f"constraint_{i}_time_window_us"),
                        "max_power_uw": _read_int(child / f"constraint_{i}_max_power_uw"),
                    }
                )
            zid = child.name
            zones[zid] = {
                "zone": zid,
                "name": name,
                "parent": zid.rsplit(":", 1)[0] if zid.count(":") >= 2 else None,
                "enabled": _read(child / "enabled"),
                "max_energy_range_uj": _read_int(child / "max_energy_range_uj"),
                "constraints": constraints,
            }
            visit(child)

    if powercap_root.is_dir():
        visit(powercap_root)
    return [zones[k] for k in sorted(zones)]


def collect_gpus(nvml: Any = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """GPUs via NVML: ``(stable records, volatile records, note)``.

    ``nvml`` is a module with the ``pynvml`` API; ``None`` imports ``pynvml`` lazily, and
    ``False`` skips NVML. No NVML means no GPUs, with the reason in ``note``.
    """
    if nvml is False:
        return [], [], "NVML skipped"
    if nvml is None:
        try:
            import pynvml as nvml  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return [], [], "pynvml is not installed"
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return [], [], f"NVML unavailable: {exc}"
    stable: list[dict[str, Any]] = []
    volatile: list[dict[str, Any]] = []
    try:
        driver = _text(_try(nvml.nvmlSystemGetDriverVersion))
        cuda = _try(nvml.nvmlSystemGetCudaDriverVersion)
        count = _try(nvml.nvmlDeviceGetCount) or 0
        for i in range(count):
            h = _try(nvml.nvmlDeviceGetHandleByIndex, i)
            if h is None:
                stable.append({"index": i, "name": None, "error": "no NVML handle"})
                continue
            mem = _try(nvml.nvmlDeviceGetMemoryInfo, h)
            limit_mw = _try(nvml.nvmlDeviceGetEnforcedPowerLimit, h)
            default_mw = _try(nvml.nvmlDeviceGetPowerManagementDefaultLimit, h)
            cc = _try(nvml.nvmlDeviceGetCudaComputeCapability, h)
            stable.append(
                {
                    "index": i,
                    "name": _text(_try(nvml.nvmlDeviceGetName, h)),
                    "driver": driver,
                    "cuda_driver": cuda,
                    "architecture": _try(nvml.nvmlDeviceGetArchitecture, h),
                    "compute_capability": list(cc) if cc is not None else None,
                    "power_limit_w": limit_mw / 1000.0 if limit_mw is not None else None,
                    "default_power_limit_w": default_mw / 1000.0 if default_mw is not None else None,
                    "memory_total_bytes": getattr(mem, "total", None),
                }
            )
            temp_sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
            power_mw = _try(nvml.nvmlDeviceGetPowerUsage, h)
            volatile.append(
                {
                    "index": i,
                    "uuid": _text(_try(nvml.nvmlDeviceGetUUID, h)),
                    "temperature_c": _try(nvml.nvmlDeviceGetTemperature, h, temp_sensor),
                    "power_w": power_mw / 1000.0 if power_mw is not None else None,
                }
            )
    finally:
        _try(nvml.nvmlShutdown)
    return stable, volatile, None


def collect_virtualisation(paths: HostPaths, run: Runner, hypervisor_flag: bool) -> dict[str, Any]:
    def detect(flag: str) -> str | None:
        res = run(["systemd-detect-virt", flag])
        if res is None:
            return None
        out = res[1].strip()
        return out or None

    dmi = {k: _read(paths.dmi / k) for k in ("sys_vendor", "product_name", "board_vendor")}
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
        "kernel": {
            "system": platform.system(),
            "release": _read(paths.osrelease) or platform.release(),
            "machine": platform.machine(),
        },
        "virtualisation": collect_virtualisation(paths, run, "hypervisor" in cpu["flags"]),
    }
    volatile = {
        "host": socket.gethostname(),
        "powercap_root": str(paths.powercap_root),
        "uptime_s": _first_float(_read(paths.uptime)),
        "loadavg": [_first_float(x) for x in (_read(paths.loadavg) or "").split()[:3]] or None,
        "cpu_mhz": _current_mhz(paths),
        "temperatures_c": _temperatures(paths.thermal),
        "gpus": gpu_volatile,
        "gpu_note": gpu_note,
    }
    return hardware, volatile


def _first_float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


def _current_mhz(paths: HostPaths) -> dict[str, float] | None:
    khz = [_read_int(p / "cpufreq" / "scaling_cur_freq") for p in _online_cpu_dirs(paths.cpu_sys)]
    mhz = [k / 1000.0 for k in khz if k is not None]
    if not mhz:
        for block in parse_cpuinfo(_read(paths.cpuinfo) or ""):
            value = _first_float(block.get("cpu MHz"))
            if value is not None:
                mhz.append(value)
    if not mhz:
        return None
    return {"min": min(mhz), "max": max(mhz), "mean": sum(mhz) / len(mhz)}


def _temperatures(thermal: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for zone in sorted(thermal.glob("thermal_zone*")) if thermal.is_dir() else []:
        milli = _read_int(zone / "temp")
        if milli is not None:
            out[f"{zone.name}:{_read(zone / 'type') or '?'}"] = milli / 1000.0
    return out


# =========================================================================== environment
def installed_distributions() -> dict[str, str]:
    """Every installed distribution: normalised name -> version, sorted by name."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return dict(sorted(found.items()))


def read_llama_build(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The llama-cpp-python build record ``make llama`` writes (:func:`alems.llm.runtime.build_record_path`);
    an unreadable one is recorded as such rather than dropped."""
    import json

    from alems.llm.runtime import build_record_path

    p = Path(path) if path is not None else build_record_path()
    text = _read(p)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"error": f"unreadable build record {p}"}
    return data if isinstance(data, dict) else {"error": f"unexpected build record in {p}"}


def git_state(
    repo_dir: str | os.PathLike[str] | None = None,
    *,
    run: Runner | None = None,
    code_paths: Sequence[str] = DEFAULT_CODE_PATHS,
) -> dict[str, Any]:
    """Commit, dirty flag and a hash of the uncommitted changes under ``code_paths``.

    Without git (or outside a repository) every field is ``None``.
    """
    run = run or run_command
    candidates = [Path(repo_dir)] if repo_dir is not None else [Path(__file__).resolve().parent, Path.cwd()]
    top = None
    for cand in candidates:
        res = run(["git", "-C", str(cand), "rev-parse", "--show-toplevel"])
        if res is not None and res[0] == 0 and res[1].strip():
            top = res[1].strip()
            break
    empty = {"commit": None, "dirty": None, "diff_sha256": None, "scope": list(code_paths)}
    if top is None:
        return empty
    head = run(["git", "-C", top, "rev-parse", "HEAD"])
    commit = head[1].strip() if head is not None and head[0] == 0 and head[1].strip() else None
    status = run(["git", "-C", top, "status", "--porcelain", "--untracked-files=all", "--", *code_paths])
    if status is None or status[0] != 0:
        return {**empty, "commit": commit}
    lines = [ln for ln in status[1].splitlines() if ln.strip()]
    dirty = bool(lines)
    diff_sha = None
    if dirty:
        h = hashlib.sha256()
        if commit is not None:
            diff = run(["git", "-C", top, "diff", "HEAD", "--binary", "--", *code_paths])
            h.update((diff[1] if diff is not None else "").encode())
        for ln in sorted(lines):
            if ln.startswith("??"):
                rel = ln[3:].strip().strip('"')
                h.update(rel.encode())
                try:
                    h.update(file_sha256(Path(top) / rel).encode())
                except OSError:
                    h.update(b"<unreadable>")
        diff_sha = h.hexdigest()
    return {"commit": commit, "dirty": dirty, "diff_sha256": diff_sha, "scope": list(code_paths)}


def _os_pretty_name(paths: HostPaths) -> str | None:
    for line in (_read(paths.os_release) or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def collect_environment(
    *,
    paths: HostPaths | None = None,
    model_sha256: str | None = None,
    model_name: str | None = None,
    distributions: Mapping[str, str] | None = None,
    llama_build: Mapping[str, Any] | None = None,
    llama_build_path: str | os.PathLike[str] | None = None,
    repo_dir: str | os.PathLike[str] | None = None,
    run: Runner | None = None,
    code_paths: Sequence[str] = DEFAULT_CODE_PATHS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(environment, volatile)``: the hashed software record and the local paths beside it."""
    paths = paths or HostPaths()
    build = dict(llama_build) if llama_build is not None else read_llama_build(llama_build_path)
    build_hashed = {k: v for k, v in build.items() if k not in _LLAMA_UNHASHED_KEYS} if build else None
    libc = platform.libc_ver()
    environment = {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "cache_tag": sys.implementation.cache_tag,
        },
        "os": {"name": _os_pretty_name(paths), "libc": f"{libc[0]} {libc[1]}".strip() or None},
        "distributions": dict(
            sorted((distributions if distributions is not None else installed_distributions()).items())
        ),
        "llama_cpp_build": build_hashed,
        "model": {"name": model_name, "sha256": model_sha256},
        "git": git_state(repo_dir, run=run, code_paths=code_paths),
    }
    volatile = {
        "python_executable": sys.executable,
        "sys_prefix": sys.prefix,
        "llama_build_local": {k: v for k, v in build.items() if k in _LLAMA_UNHASHED_KEYS} if build else None,
    }
    return environment, volatile


# =========================================================================== config
def _canon(obj: Any, where: str) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canon(obj[k], f"{where}.{k}" if where else str(k)) for k in sorted(obj, key=str)}
    if isinstance(obj, (list, tuple)):
        return [_canon(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return sorted((_canon(v, where) for v in obj), key=canonical_json)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        return _canon(item(), where)
    raise ConfigError(
        f"config value at {where or '<root>'} has type {type(obj).__name__}, which has no canonical JSON form",
        fix="use strings, numbers, booleans, lists and mappings only in the config",
    )


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def canonical_config(cfg: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved config in canonical form: ``defaults`` deep-merged under ``cfg``, keys sorted
    at every level, tuples as lists, sets sorted, paths as strings, numpy scalars as Python ones."""
    merged = _deep_merge(defaults, cfg) if defaults else dict(cfg)
    return _canon(merged, "")


# =========================================================================== hashes
def sha256_json(obj: Any) -> str:
    """Full sha256 hex of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def short_hash(obj: Any) -> str:
    """The shown form: first 16 hex characters of :func:`sha256_json`."""
    return sha256_json(obj)[:HASH_LEN]


def compute_run_id(hw_hash: str, env_hash: str, config_hash: str | None) -> str | None:
    if config_hash is None:
        return None
    return short_hash({"hw_hash": hw_hash, "env_hash": env_hash, "config_hash": config_hash})


@dataclass(frozen=True)
class Hashes:
    """The three provenance hashes and the ``run_id`` over them (16 hex characters each).

    ``config_hash`` and ``run_id`` are ``None`` when no config was given.
    """

    hw_hash: str
    env_hash: str
    config_hash: str | None
    run_id: str | None

    @classmethod
    def compute(
        cls, hardware: Mapping[str, Any], environment: Mapping[str, Any], config: Mapping[str, Any] | None
    ) -> Hashes:
        hw, env = short_hash(hardware), short_hash(environment)
        cfg = short_hash(config) if config is not None else None
        return cls(hw, env, cfg, compute_run_id(hw, env, cfg))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Hashes:
        try:
            return cls(
                hw_hash=data["hw_hash"],
                env_hash=data["env_hash"],
                config_hash=data.get("config_hash"),
                run_id=data.get("run_id"),
            )
        except (KeyError, TypeError) as exc:
            raise ProvenanceError(
                f"provenance hashes are incomplete (missing {exc})",
                fix="regenerate them with `alems fingerprint` or rerun the provenance rule",
            ) from exc

    def to_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


@dataclass
class Fingerprint:
    """Everything ``alems fingerprint`` reports. ``volatile`` is recorded, never hashed."""

    hardware: dict[str, Any]
    environment: dict[str, Any]
    config: dict[str, Any] | None
    hashes: Hashes
    volatile: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware,
            "environment": self.environment,
            "config": self.config,
            "hashes": self.hashes.to_dict(),
            "volatile": self.volatile,
        }


def fingerprint(
    cfg: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    paths: HostPaths | None = None,
    nvml: Any = None,
    run: Runner | None = None,
    model_sha256: str | None = None,
    model_name: str | None = None,
    distributions: Mapping[str, str] | None = None,
    llama_build: Mapping[str, Any] | None = None,
    llama_build_path: str | os.PathLike[str] | None = None,
    repo_dir: str | os.PathLike[str] | None = None,
    code_paths: Sequence[str] = DEFAULT_CODE_PATHS,
    wall_clock: Callable[[], float] = time.time,
) -> Fingerprint:
    """Collect hardware, environment and (if given) the canonical config, and hash them.

    Every host input is injectable; the defaults read the real machine.
    """
    paths = paths or HostPaths()
    hardware, hw_volatile = collect_hardware(paths, nvml=nvml, run=run)
    environment, env_volatile = collect_environment(
        paths=paths,
        model_sha256=model_sha256,
        model_name=model_name,
        distributions=distributions,
        llama_build=llama_build,
        llama_build_path=llama_build_path,
        repo_dir=repo_dir,
        run=run,
        code_paths=code_paths,
    )
    config = canonical_config(cfg, defaults) if cfg is not None else None
    now = wall_clock()
    volatile = {"timestamp_unix": now, "timestamp_utc": _utc_iso(now), **hw_volatile, **env_volatile}
    return Fingerprint(hardware, environment, config, Hashes.compute(hardware, environment, config), volatile)


def write_provenance(
    outdir: str | os.PathLike[str], cfg: Mapping[str, Any] | None, **kwargs: Any
) -> Fingerprint:
    """Fingerprint this host and write ``{hardware,environment,config,hashes}.json`` atomically
    into ``outdir`` (``results/provenance``). ``hashes.json`` holds the hashes and, beside
    them, the volatile readings. ``kwargs`` go to :func:`fingerprint`.

    Each hash equals ``sha256(canonical_json(<file content>))[:16]`` of its file.
    """
    fp = kwargs.pop("fingerprint", None) or fingerprint(cfg, **kwargs)
    out = Path(outdir)
    atomic_write_json(out / "hardware.json", fp.hardware)
    atomic_write_json(out / "environment.json", fp.environment)
    atomic_write_json(out / "config.json", fp.config if fp.config is not None else {})
    atomic_write_json(out / "hashes.json", {**fp.hashes.to_dict(), "volatile": fp.volatile})
    return fp


def load_hashes(path: str | os.PathLike[str]) -> Hashes:
    """Read ``hashes.json`` (or any JSON with the hash fields, such as a manifest's ``hashes``)."""
    import json

    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise ProvenanceError(
            f"cannot read provenance hashes {p}: {exc.strerror}",
            fix="run `snakemake --cores 1 provenance` or `alems fingerprint`",
        ) from exc
    except ValueError as exc:
        raise ProvenanceError(
            f"provenance hashes {p} are not valid JSON", fix=f"delete {p} and rerun the workflow"
        ) from exc
    if isinstance(data, dict) and "hashes" in data and isinstance(data["hashes"], dict):
        data = data["hashes"]
    if not isinstance(data, dict):
        raise ProvenanceError(
            f"provenance hashes {p} hold no mapping", fix=f"delete {p} and rerun the workflow"
        )
    return Hashes.from_mapping(data)


# =========================================================================== manifest
def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")))
        else:
            out.append(p)
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def build_manifest(
    paths: Iterable[str | os.PathLike[str]],
    hashes: Hashes | Mapping[str, Any],
    *,
    root: str | os.PathLike[str] = ".",
    exclude: Iterable[str | os.PathLike[str]] = (),
    wall_clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """A manifest of ``paths`` (directories expand to the files under them): each file's path
    relative to ``root``, sha256 and size, with ``hw_hash``, ``env_hash``, ``config_hash``
    and ``run_id``. A path that does not exist is a :class:`ProvenanceError`."""
    root_p = Path(root)
    h = hashes.to_dict() if isinstance(hashes, Hashes) else Hashes.from_mapping(hashes).to_dict()
    skip = {Path(e).resolve() for e in exclude}
    entries: dict[str, dict[str, Any]] = {}
    missing = []
    for p in _expand(paths):
        if p.resolve() in skip:
            continue
        if not p.is_file():
            missing.append(str(p))
            continue
        rel = _rel(p, root_p)
        entries[rel] = {"path": rel, "sha256": file_sha256(p), "size": p.stat().st_size}
    if missing:
        raise ProvenanceError(
            f"cannot list outputs that do not exist: {', '.join(missing)}",
            fix="produce those outputs first (snakemake --cores 1 all), or leave them out of the manifest",
        )
    now = wall_clock()
    return {
        "version": MANIFEST_VERSION,
        "created_utc": _utc_iso(now),
        **h,
        "files": [entries[k] for k in sorted(entries)],
    }


def write_manifest(
    path: str | os.PathLike[str],
    paths: Iterable[str | os.PathLike[str]],
    hashes: Hashes | Mapping[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Build a manifest (paths relative to the manifest's folder unless ``root`` is given; the
    manifest never lists itself) and write it atomically. Returns the manifest."""
    target = Path(path)
    manifest = build_manifest(
        paths, hashes, root=root if root is not None else target.parent, exclude=[target], **kwargs
    )
    if root is not None:  # where the listed paths start, relative to the manifest's folder
        manifest["root"] = Path(os.path.relpath(Path(root).resolve(), target.parent.resolve())).as_posix()
    atomic_write_json(target, manifest)
    return manifest


@dataclass
class VerifyReport:
    """What :func:`verify_manifest` found. ``ok`` is true when nothing changed or went missing."""

    manifest: str
    checked: int
    changed: list[dict[str, Any]]
    missing: list[str]
    hashes: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.changed and not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "ok": self.ok,
            "checked": self.checked,
            "changed": self.changed,
            "missing": self.missing,
            "hashes": self.hashes,
        }


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    import json

    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ProvenanceError(
            f"manifest {p} not found", fix="run `snakemake --cores 1 all` to produce it, or pass --manifest"
        ) from exc
    except OSError as exc:
        raise ProvenanceError(
            f"cannot read manifest {p}: {exc.strerror}", fix=f"check the permissions of {p}"
        ) from exc
    except ValueError as exc:
        raise ProvenanceError(
            f"manifest {p} is not valid JSON",
            fix="regenerate it: `snakemake --cores 1 --forcerun manifest all`",
        ) from exc
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(
        isinstance(e, dict) and "path" in e and "sha256" in e for e in files
    ):
        raise ProvenanceError(
            f"manifest {p} has no valid `files` list",
            fix="regenerate it: `snakemake --cores 1 --forcerun manifest all`",
        )
    return data


def verify_manifest(path: str | os.PathLike[str]) -> VerifyReport:
    """Re-hash every file a manifest lists and report those that changed or are missing."""
    p = Path(path)
    data = read_manifest(p)
    root = p.parent / data["root"] if data.get("root") else p.parent
    changed: list[dict[str, Any]] = []
    missing: list[str] = []
    for entry in data["files"]:
        rel = entry["path"]
        f = Path(rel) if Path(rel).is_absolute() else root / rel
        if not f.is_file():
            missing.append(rel)
            continue
        size = f.stat().st_size
        digest = file_sha256(f)
        if digest != entry["sha256"] or (entry.get("size") is not None and size != entry["size"]):
            changed.append(
                {
                    "path": rel,
                    "expected_sha256": entry["sha256"],
                    "actual_sha256": digest,
                    "expected_size": entry.get("size"),
                    "actual_size": size,
                }
            )
    hashes = {k: data.get(k) for k in (*HASH_FIELDS, "run_id")}
    return VerifyReport(str(p), len(data["files"]), changed, missing, hashes)


# =========================================================================== mixing runs
@dataclass(frozen=True)
class Compatibility:
    """The outcome of :func:`check_compatible`.

    ``label`` is ``"consistent"`` or ``"mixed"``. ``hashes`` holds each field's common
    value (``"mixed"`` where runs differ). ``differing`` maps a field to
    ``{value: [runs]}`` for each field that differs. ``run_id`` is the common run id, or
    ``"mixed-<hash>"`` over all runs' ids for a mixed aggregate.
    """

    label: str
    runs: list[str]
    hashes: dict[str, str | None]
    differing: dict[str, dict[str, list[str]]]
    run_id: str | None

    @property
    def mixed(self) -> bool:
        return self.label == "mixed"


def _as_hash_mapping(record: Hashes | Mapping[str, Any]) -> dict[str, Any]:
    return record.to_dict() if isinstance(record, Hashes) else dict(record)


def check_compatible(
    hash_records: Mapping[str, Hashes | Mapping[str, Any]], allow_mixed: bool = False
) -> Compatibility:
    """Refuse to aggregate runs whose ``hw_hash``, ``env_hash`` or ``config_hash`` differ.

    ``hash_records`` maps a run label (e.g. ``"arith/rep0"``) to its hashes. A difference
    raises :class:`ProvenanceError` naming the runs and the fields, unless ``allow_mixed``,
    in which case the result is labelled ``mixed``.
    """
    records = {str(run): _as_hash_mapping(rec) for run, rec in hash_records.items()}
    runs = sorted(records)
    differing: dict[str, dict[str, list[str]]] = {}
    common: dict[str, str | None] = {}
    for fld in HASH_FIELDS:
        groups: dict[str, list[str]] = {}
        for run in runs:
            value = records[run].get(fld)
            groups.setdefault("<missing>" if value is None else str(value), []).append(run)
        if len(groups) > 1:
            differing[fld] = groups
            common[fld] = "mixed"
        else:
            only = next(iter(groups), None)
            common[fld] = None if only in (None, "<missing>") else only
    if differing and not allow_mixed:
        lines = []
        for fld, groups in differing.items():
            parts = [f"{value} in {', '.join(members)}" for value, members in sorted(groups.items())]
            lines.append(f"  {fld} differs: " + "; ".join(parts))
        raise ProvenanceError(
            f"refusing to mix runs with different provenance ({', '.join(differing)}):\n" + "\n".join(lines),
            fix="rerun the differing runs on one machine, environment and config "
            "(snakemake --cores 1 --forcerun <rule> all), or set `allow_mixed_runs: true` in the config "
            "to aggregate them anyway; the results are then labelled mixed",
        )
    if differing:
        ids = sorted({str(records[r].get("run_id")) for r in runs})
        return Compatibility("mixed", runs, common, differing, "mixed-" + short_hash(ids))
    run_ids = {records[r].get("run_id") for r in runs}
    run_id = (
        run_ids.pop()
        if len(run_ids) == 1
        else compute_run_id(str(common["hw_hash"]), str(common["env_hash"]), common["config_hash"])
    )
    return Compatibility("consistent", runs, common, {}, run_id)
