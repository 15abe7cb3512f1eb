"""The LLM runtime's health: the llama-cpp-python build record and the preflight probe.

Two things live here.

- **The build record** (``.venv/llama_build.json``), written by ``make llama`` through
  ``python -m alems.llm.runtime record``: the llama-cpp-python version, the CMake flags,
  their hash (the key of the wheel cache), the instruction-set level, and the CPU features
  the compiled library reports at run time (``llama_print_system_info``).
- **The preflight probe**: before a study measures anything, the backend it will use
  must generate a few tokens. For ``llamacpp`` (and ``scripted``) the probe runs in a child
  process, so a native crash (SIGSEGV, SIGILL) or a hang becomes a diagnosis naming the
  signal, the build flags and the command that rebuilds portably, not a dead job with
  "non-zero exit status -11". For ``openai`` it asks the server for ``/models`` and one
  short completion, and an unreachable server stops the study before any measurement
  with the URL and what was tried.

``alems doctor`` runs the same probe, and so does every measurement job of the pipeline
(``baseline``, ``run_family``: :func:`alems.study.preflight_study`) before it measures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from alems.energy.childproc import child_env
from alems.errors import AlemsError, LLMRuntimeError
from alems.io import atomic_write_text
from alems.llm.config import LLMConfig

#: The prompt of the probe: short, and answered by any chat model.
PROBE_MESSAGES = [{"role": "user", "content": "Reply with the word OK."}]
PROBE_MAX_TOKENS = 4
DEFAULT_PROBE_TIMEOUT_S = 120.0
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


# =========================================================================== build record
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
        return None, _exit_text(proc.returncode) + (f": {_last_line(proc.stderr)}" if proc.stderr else "")
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


# =========================================================================== probe
@dataclass
class ProbeResult:
    """What the preflight found. ``status`` is ``ok``, ``crashed`` (killed by a signal),
    ``hung`` (no answer in time), ``error`` (a typed failure: missing model, server down)
    or ``missing`` (llama-cpp-python not installed)."""

    backend: str
    model: str | None
    status: str
    summary: str
    fix: str | None = None
    signal: str | None = None
    seconds: float | None = None
    tokens_out: int | None = None
    text: str | None = None
    build: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [f"[{self.status:10}] llm   {self.summary}"]
        for step in self.steps:
            lines.append(f"             {'ok  ' if step['ok'] else 'FAIL'} {step['what']}: {step['detail']}")
        if self.fix:
            lines += [
                ("             fix: " if i == 0 else "                  ") + ln
                for i, ln in enumerate(self.fix.splitlines())
            ]
        return "\n".join(lines)

    def raise_for_status(self) -> None:
        """Raise :class:`LLMRuntimeError` with the diagnosis unless the probe passed."""
        if not self.ok:
            raise LLMRuntimeError(self.summary, fix=self.fix)


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _exit_text(returncode: int) -> str:
    return f"killed by {_signal_name(returncode)}" if returncode < 0 else f"exit status {returncode}"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _build_words(build: Mapping[str, Any] | None) -> str:
    if not build:
        return (
            "no build record (.venv/llama_build.json): llama-cpp-python was not installed by "
            "`make llama`; a plain pip build defaults to GGML_NATIVE (-march=native)"
        )
    flags = build.get("CMAKE_ARGS", "?")
    level = build.get("cpu_level", "?")
    return f"build {build.get('version', '?')} for {level}, CMAKE_ARGS={flags}"


def _crash_fix(build: Mapping[str, Any] | None, host_flags: Sequence[str]) -> str:
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
    name = _signal_name(-abs(signum))
    return (
        f"the LLM runtime was killed by {name} ({_build_words(build)})\n"
        f"Fix: {_crash_fix(build, host_cpu_flags())}"
    )


def _probe_in_child(
    cfg: LLMConfig, *, threads: int | None, timeout_s: float, env: Mapping[str, str] | None
) -> ProbeResult:
    embedded = cfg.backend == "llamacpp"
    build = read_build_record() if embedded else None
    name = cfg.model_path or cfg.model
    what = f"{PROBE_MAX_TOKENS} tokens of {name}"
    where = _build_words(build) if embedded else f"the {cfg.backend} backend"
    payload = json.dumps({"llm": asdict(cfg), "threads": threads})
    argv = [sys.executable, "-m", "alems.llm.runtime", "probe-child"]
    result = ProbeResult(backend=cfg.backend, model=name, status="ok", summary="", build=build)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            input=payload,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=child_env(env),
            check=False,
        )
    except subprocess.TimeoutExpired:
        result.status, result.seconds = "hung", time.monotonic() - t0
        result.summary = f"the LLM runtime generated nothing within {timeout_s:g} s ({what}; {where})"
        result.fix = (
            "a build for another CPU can spin instead of crashing: " + _crash_fix(build, host_cpu_flags())
            if embedded
            else "check the backend's settings"
        )
        return result
    result.seconds = time.monotonic() - t0
    if proc.returncode < 0:
        result.status, result.signal = "crashed", _signal_name(proc.returncode)
        result.summary = f"the LLM runtime was killed by {result.signal} while generating {what} ({where})"
        result.fix = (
            _crash_fix(build, host_cpu_flags())
            if embedded
            else f"see the child's output: {_last_line(proc.stderr)}"
        )
        return result
    reply: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        try:
            reply = json.loads(line)
            break
        except ValueError:
            continue
    if proc.returncode != 0 or not reply.get("ok"):
        result.status = str(reply.get("status", "error"))
        result.summary = str(
            reply.get("message")
            or (f"the probe's child failed ({_exit_text(proc.returncode)}): {_last_line(proc.stderr)}")
        )
        result.fix = reply.get("fix")
        return result
    result.tokens_out, result.text = reply.get("tokens_out"), reply.get("text")
    result.summary = f"{cfg.backend} generated {result.tokens_out} token(s) of {name} in {result.seconds:.2f} s (load included)"
    if build:
        result.summary += f"; llama-cpp-python {build.get('version')} built for {build.get('cpu_level')}"
    return result


def probe_child_main(stdin_text: str) -> int:
    """The child's side: build the backend, generate a few tokens, print one JSON line."""
    from alems.llm.factory import make_backend

    payload = json.loads(stdin_text)
    llm = dict(payload["llm"])
    llm["script"] = tuple(llm.get("script") or ())
    try:
        cfg = LLMConfig(**llm)
        backend = make_backend(cfg, threads=payload.get("threads"))
        c = backend.complete(PROBE_MESSAGES, max_tokens=PROBE_MAX_TOKENS, temperature=0.0, seed=cfg.seed)
    except ImportError as exc:
        print(
            json.dumps(
                {
                    "ok": False,
                    "status": "missing",
                    "message": f"llama-cpp-python is not installed ({exc})",
                    "fix": "run `make llama`",
                }
            )
        )
        return 1
    except AlemsError as exc:
        status = "missing" if "not installed" in exc.message else "error"
        print(json.dumps({"ok": False, "status": status, "message": exc.message, "fix": exc.fix}))
        return 1
    print(json.dumps({"ok": True, "tokens_out": c.tokens_out, "text": c.text}))
    return 0


def _http_get(url: str, timeout_s: float) -> tuple[int, bytes]:
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", parts.path or "/", headers={"User-Agent": "alems-preflight"})
        resp = conn.getresponse()
        return resp.status, resp.read(1 << 20)
    finally:
        conn.close()


def _probe_openai(cfg: LLMConfig, *, timeout_s: float) -> ProbeResult:
    from alems.llm.openai_compat import OpenAIBackend

    base = cfg.base_url.rstrip("/")
    steps: list[dict[str, Any]] = []
    t0 = time.monotonic()
    models_url = f"{base}/models"
    listed: list[str] | None = None
    try:
        status, body = _http_get(models_url, min(cfg.connect_timeout_s + 5.0, timeout_s))
        if status == 200:
            try:
                listed = [str(m.get("id")) for m in json.loads(body).get("data", [])]
            except (ValueError, AttributeError):
                listed = None
            steps.append(
                {
                    "what": f"GET {models_url}",
                    "ok": True,
                    "detail": f"HTTP 200, models: {', '.join(listed) if listed else '(none listed)'}",
                }
            )
        else:
            steps.append({"what": f"GET {models_url}", "ok": False, "detail": f"HTTP {status}"})
    except (OSError, http.client.HTTPException) as exc:
        steps.append({"what": f"GET {models_url}", "ok": False, "detail": f"{exc.__class__.__name__}: {exc}"})
    n_out = None
    try:
        client = OpenAIBackend(
            base_url=cfg.base_url,
            model=cfg.model,
            api_key_env=cfg.api_key_env,
            timeout_s=min(cfg.timeout_s, timeout_s),
            connect_timeout_s=cfg.connect_timeout_s,
            retries=0,
            backoff_s=0.0,
            stream=cfg.stream,
            response_format=cfg.response_format,
        )
        c = client.complete(PROBE_MESSAGES, max_tokens=PROBE_MAX_TOKENS, temperature=0.0, seed=cfg.seed)
        n_out = c.tokens_out
        steps.append(
            {
                "what": f"POST {client.url} ({PROBE_MAX_TOKENS} tokens)",
                "ok": True,
                "detail": f"{c.tokens_out} token(s) back",
            }
        )
    except AlemsError as exc:
        steps.append(
            {
                "what": f"POST {base}/chat/completions ({PROBE_MAX_TOKENS} tokens)",
                "ok": False,
                "detail": exc.message,
            }
        )
    seconds = time.monotonic() - t0
    completion_ok = steps[-1]["ok"]
    if not completion_ok:
        tried = "; ".join(f"{s['what']} -> {s['detail']}" for s in steps)
        return ProbeResult(
            backend="openai",
            model=cfg.model,
            status="error",
            seconds=seconds,
            steps=steps,
            summary=f"the LLM server at {base} cannot serve the study: {tried}",
            fix=(
                f"start an OpenAI-compatible server at {base} (llama.cpp: `llama-server -m MODEL.gguf --port 8080`; "
                "Ollama; vLLM), or set llm.base_url to one that runs"
            ),
        )
    note = ""
    if listed is not None and cfg.model not in listed:
        note = f"; note: {cfg.model!r} is not among the listed models (servers with one model often ignore the name)"
    return ProbeResult(
        backend="openai",
        model=cfg.model,
        status="ok",
        seconds=seconds,
        steps=steps,
        tokens_out=n_out,
        summary=f"server {base} answered with {n_out} token(s) in {seconds:.2f} s{note}",
    )


def probe(
    cfg: LLMConfig,
    *,
    threads: int | None = None,
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> ProbeResult:
    """Check that ``cfg``'s backend can generate a few tokens; never raises for a failed backend."""
    if cfg.backend == "openai":
        return _probe_openai(cfg, timeout_s=timeout_s)
    return _probe_in_child(cfg, threads=threads, timeout_s=timeout_s, env=env)


def preflight(
    cfg: LLMConfig,
    *,
    threads: int | None = None,
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> ProbeResult:
    """:func:`probe`, raising :class:`LLMRuntimeError` with the diagnosis when it fails."""
    result = probe(cfg, threads=threads, timeout_s=timeout_s, env=env)
    result.raise_for_status()
    return result


# =========================================================================== entry point
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alems.llm.runtime")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="write llama_build.json (called by `make llama`)")
    rec.add_argument("--out", required=True)
    rec.add_argument("--version", required=True)
    rec.add_argument("--cpu-level", required=True)
    rec.add_argument("--cmake-args", required=True)
    rec.add_argument("--flags-hash", required=True)
    rec.add_argument("--wheel-dir", required=True)
    sub.add_parser("probe-child", help="internal: the probe's child process (reads JSON on stdin)")
    args = parser.parse_args(argv)
    if args.cmd == "probe-child":
        return probe_child_main(sys.stdin.read())
    record = write_build_record(
        args.out,
        version=args.version,
        cpu_level=args.cpu_level,
        cmake_args=args.cmake_args,
        flags_hash=args.flags_hash,
        wheel_dir=args.wheel_dir,
    )
    print(
        f"llama-cpp-python {record['version']} ({record['cpu_level']}, flags {record['flags_hash']}): "
        f"{record['system_info'] or record['load_failure']}"
    )
    if record["load_failure"]:
        print(
            f"warning: the library does not load here ({record['load_failure']}); {_crash_fix(record, record['host_cpu_flags'])}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
