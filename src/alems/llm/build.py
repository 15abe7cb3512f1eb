"""The llama-cpp-python build record, and what a crash of the LLM runtime means.

**The build record** (``.venv/llama_build.json``), written by ``make llama`` through
``python -m alems.llm.runtime record``: the llama-cpp-python version, the CMake flags,
their hash (the key of the wheel cache), the instruction-set level, and the CPU features
the compiled library reports at run time (``llama_print_system_info``). A native crash
(SIGSEGV, SIGILL) of the runtime is explained from it: the signal, the build flags and the
command that rebuilds portably (:func:`crash_diagnosis`).

This module imports nothing else of the LLM layer, so every backend may read the record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alems.io import atomic_write_text

#: What a portable rebuild is, as a user types it.
REBUILD_CMD = "rm -f .venv/.llama-* && make llama LLAMA_CPU=x86-64-v3"
REBUILD_OLD_CPU_CMD = "rm -f .venv/.llama-* && make llama LLAMA_CPU=x86-64-v2"
#: x86 features each instruction-set level needs (``/proc/cpuinfo`` flag names).
LEVEL_FEATURES: dict[str, tuple[str, ...]] = {
    "x86-64-v2": ("sse4_2", "popcnt"),
    "x86-64-v3": ("sse4_2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi2"),
    "x86-64-v4": (
        "sse4_2",
        "popcnt",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "bmi2",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
    ),
}
#: Host flags worth recording beside a build (what a native build would have used).
HOST_FLAGS_OF_INTEREST = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi2",
    "avx_vnni",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


def build_record_path() -> Path:
    """Where ``make llama`` writes the record: beside the interpreter's environment."""
    return Path(sys.prefix) / "llama_build.json"


def read_build_record(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The record ``make llama`` wrote, or ``None`` when there is none (or it is unreadable)."""
    p = Path(path) if path is not None else build_record_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def host_cpu_flags(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> list[str]:
    """The flags of interest this host's CPU advertises (empty off Linux/x86)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return [f for f in HOST_FLAGS_OF_INTEREST if f in have]
    return []


def missing_features(cpu_level: str | None, flags: Sequence[str]) -> list[str]:
    """Features the build's instruction-set level needs and the host does not advertise."""
    need = LEVEL_FEATURES.get(cpu_level or "", ())
    have = set(flags)
    # popcnt is not in HOST_FLAGS_OF_INTEREST; every SSE4.2 CPU has it
    return [f for f in need if f not in have and f != "popcnt"]


def library_system_info(timeout_s: float = 60.0) -> tuple[str | None, str | None]:
    """``(system_info, failure)``: the compiled library's feature line, read in a child
    process (loading a library built for another CPU can kill the loader)."""
    code = "import llama_cpp, sys; sys.stdout.write(llama_cpp.llama_print_system_info().decode('utf-8', 'replace'))"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"loading llama_cpp hung for {timeout_s:g} s"
    if proc.returncode != 0:
        return None, exit_text(proc.returncode) + (f": {last_line(proc.stderr)}" if proc.stderr else "")
    return proc.stdout.strip(), None


def write_build_record(
    out: str | os.PathLike[str],
    *,
    version: str,
    cpu_level: str,
    cmake_args: str,
    flags_hash: str,
    wheel_dir: str,
) -> dict[str, Any]:
    """Write ``llama_build.json`` (atomically) and return it."""
    system_info, failure = library_system_info()
    record = {
        "package": "llama-cpp-python",
        "version": version,
        "cpu_level": cpu_level,
        "CMAKE_ARGS": cmake_args,
        "flags_hash": flags_hash,
        "native": "-DGGML_NATIVE=OFF" not in cmake_args.split(),
        "system_info": system_info,
        "load_failure": failure,
        # local facts: recorded, not hashed into env_hash (provenance._LLAMA_UNHASHED_KEYS)
        "wheel_cache": wheel_dir,
        "host_cpu_flags": host_cpu_flags(),
    }
    atomic_write_text(out, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def exit_text(returncode: int) -> str:
    return f"killed by {signal_name(returncode)}" if returncode < 0 else f"exit status {returncode}"


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def build_words(build: Mapping[str, Any] | None) -> str:
    if not build:
        return (
            "no build record (.venv/llama_build.json): llama-cpp-python was not installed by "
            "`make llama`; a plain pip build defaults to GGML_NATIVE (-march=native)"
        )
    flags = build.get("CMAKE_ARGS", "?")
    level = build.get("cpu_level", "?")
    return f"build {build.get('version', '?')} for {level}, CMAKE_ARGS={flags}"


def crash_fix(build: Mapping[str, Any] | None, host_flags: Sequence[str]) -> str:
    level = (build or {}).get("cpu_level")
    lacking = missing_features(level, host_flags)
    if lacking:
        return (
            f"this CPU lacks {', '.join(lacking)}, which the {level} build needs; rebuild for "
            f"older CPUs: `{REBUILD_OLD_CPU_CMD}` (the wheel cache is keyed by flags, so this builds anew)"
        )
    return (
        "rebuild llama-cpp-python portably (no -march=native, no AVX-512, no AMX): "
        f"`{REBUILD_CMD}`; the wheel cache is keyed by flags, so this builds anew. "
        "If the portable build crashes too, try LLAMA_CPU=x86-64-v2."
    )


def crash_diagnosis(signum: int, build: Mapping[str, Any] | None = None) -> str:
    """The text for a process of the LLM runtime killed by ``signum``: the signal, the build
    flags (from ``llama_build.json`` unless given) and the command that rebuilds portably."""
    build = read_build_record() if build is None else build
    name = signal_name(-abs(signum))
    return (
        f"the LLM runtime was killed by {name} ({build_words(build)})\n"
        f"Fix: {crash_fix(build, host_cpu_flags())}"
    )
