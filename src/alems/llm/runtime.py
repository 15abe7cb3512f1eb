"""The LLM runtime's health: the preflight probe (and the ``python -m alems.llm.runtime``
entry point that writes the build record of :mod:`alems.llm.build`).

**The preflight probe**: before a study measures anything, the backend it will use
must generate a few tokens. For ``llamacpp`` (and ``scripted``) the probe runs in a child
process, so a native crash (SIGSEGV, SIGILL) or a hang becomes a diagnosis naming the
signal, the build flags and the command that rebuilds portably, not a dead job with
"non-zero exit status -11". For ``openai`` it asks the server for ``/models`` and one
short completion, and an unreachable server stops the study before any measurement
with the URL and what was tried.

``alems doctor`` runs the same probe, and so does every measurement job of the pipeline
(``baseline``, ``run_family``: :func:`alems.jobs.preflight.preflight_study`) before it measures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from alems.energy.childproc import child_env
from alems.errors import AlemsError, LLMRuntimeError
from alems.llm.base import BackendNotInstalled
from alems.llm.build import (
    HOST_FLAGS_OF_INTEREST,
    LEVEL_FEATURES,
    REBUILD_CMD,
    REBUILD_OLD_CPU_CMD,
    build_record_path,
    build_words,
    crash_diagnosis,
    crash_fix,
    exit_text,
    host_cpu_flags,
    last_line,
    library_system_info,
    missing_features,
    read_build_record,
    signal_name,
    write_build_record,
)
from alems.llm.config import LLMConfig
from alems.llm.factory import make_backend
from alems.llm.openai_compat import OpenAIBackend

__all__ = [
    "DEFAULT_PROBE_TIMEOUT_S",
    "HOST_FLAGS_OF_INTEREST",
    "LEVEL_FEATURES",
    "PROBE_MAX_TOKENS",
    "PROBE_MESSAGES",
    "REBUILD_CMD",
    "REBUILD_OLD_CPU_CMD",
    "ProbeResult",
    "build_record_path",
    "crash_diagnosis",
    "host_cpu_flags",
    "library_system_info",
    "main",
    "missing_features",
    "preflight",
    "probe",
    "probe_child_main",
    "read_build_record",
    "write_build_record",
]

#: The prompt of the probe: short, and answered by any chat model.
PROBE_MESSAGES = [{"role": "user", "content": "Reply with the word OK."}]
PROBE_MAX_TOKENS = 4
DEFAULT_PROBE_TIMEOUT_S = 120.0


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


def _probe_in_child(
    cfg: LLMConfig, *, threads: int | None, timeout_s: float, env: Mapping[str, str] | None
) -> ProbeResult:
    embedded = cfg.backend == "llamacpp"
    build = read_build_record() if embedded else None
    name = cfg.model_path or cfg.model
    what = f"{PROBE_MAX_TOKENS} tokens of {name}"
    where = build_words(build) if embedded else f"the {cfg.backend} backend"
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
            "a build for another CPU can spin instead of crashing: " + crash_fix(build, host_cpu_flags())
            if embedded
            else "check the backend's settings"
        )
        return result
    result.seconds = time.monotonic() - t0
    if proc.returncode < 0:
        result.status, result.signal = "crashed", signal_name(proc.returncode)
        result.summary = f"the LLM runtime was killed by {result.signal} while generating {what} ({where})"
        result.fix = (
            crash_fix(build, host_cpu_flags())
            if embedded
            else f"see the child's output: {last_line(proc.stderr)}"
        )
        return result
    return _read_child_reply(result, proc, cfg)


def _read_child_reply(
    result: ProbeResult, proc: subprocess.CompletedProcess[str], cfg: LLMConfig
) -> ProbeResult:
    """``result`` completed from the child's last JSON line (a failure it reports, or its tokens)."""
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
            or (f"the probe's child failed ({exit_text(proc.returncode)}): {last_line(proc.stderr)}")
        )
        result.fix = reply.get("fix")
        return result
    result.tokens_out, result.text = reply.get("tokens_out"), reply.get("text")
    result.summary = (
        f"{cfg.backend} generated {result.tokens_out} token(s) of {result.model} "
        f"in {result.seconds:.2f} s (load included)"
    )
    if result.build:
        result.summary += (
            f"; llama-cpp-python {result.build.get('version')} built for {result.build.get('cpu_level')}"
        )
    return result


def probe_child_main(stdin_text: str) -> int:
    """The child's side: build the backend, generate a few tokens, print one JSON line."""
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
        status = "missing" if isinstance(exc, BackendNotInstalled) else "error"
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


def _list_models(models_url: str, timeout_s: float) -> tuple[dict[str, Any], list[str] | None]:
    """The probe's first step, ``GET /models``: the step record and the model ids listed (or None)."""
    what = f"GET {models_url}"
    try:
        status, body = _http_get(models_url, timeout_s)
    except (OSError, http.client.HTTPException) as exc:
        return {"what": what, "ok": False, "detail": f"{exc.__class__.__name__}: {exc}"}, None
    if status != 200:
        return {"what": what, "ok": False, "detail": f"HTTP {status}"}, None
    try:
        listed: list[str] | None = [str(m.get("id")) for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError):
        listed = None
    detail = f"HTTP 200, models: {', '.join(listed) if listed else '(none listed)'}"
    return {"what": what, "ok": True, "detail": detail}, listed


def _probe_completion(cfg: LLMConfig, timeout_s: float) -> tuple[dict[str, Any], int | None]:
    """The probe's second step, one short completion without retries: the step record and
    the tokens it returned (None when it failed)."""
    base = cfg.base_url.rstrip("/")
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
    except AlemsError as exc:
        what = f"POST {base}/chat/completions ({PROBE_MAX_TOKENS} tokens)"
        return {"what": what, "ok": False, "detail": exc.message}, None
    what = f"POST {client.url} ({PROBE_MAX_TOKENS} tokens)"
    return {"what": what, "ok": True, "detail": f"{c.tokens_out} token(s) back"}, c.tokens_out


def _probe_openai(cfg: LLMConfig, *, timeout_s: float) -> ProbeResult:
    base = cfg.base_url.rstrip("/")
    t0 = time.monotonic()
    listing, listed = _list_models(f"{base}/models", min(cfg.connect_timeout_s + 5.0, timeout_s))
    completion, n_out = _probe_completion(cfg, timeout_s)
    steps = [listing, completion]
    seconds = time.monotonic() - t0
    if not completion["ok"]:
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
            f"warning: the library does not load here ({record['load_failure']}); {crash_fix(record, record['host_cpu_flags'])}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
