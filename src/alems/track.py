"""``alems track``: one execution of any command, measured as one goal execution of one attempt.

This module owns the run directory that repeated ``alems track`` calls build. Each call
is a :class:`~alems.session.Session` of its own (meter on, sampler for the call's life,
the pipeline's accounting) in ``DIR/calls/NNNN/`` (its ``samples.parquet``,
``events.jsonl``, ``goals.csv`` and ``run.json``). After every call the directory's
top-level ``goals.csv`` and ``events.jsonl`` are rebuilt from all complete calls, and
``DIR/run.json`` lists them, so ``alems metrics DIR/goals.csv`` sees one run:

    DIR/idle.json                    the run's idle baseline: measured by the first call, or its --baseline FILE
    DIR/calls/0001/{samples.parquet,events.jsonl,goals.csv,run.json}
    DIR/calls/0002/...
    DIR/goals.csv, DIR/events.jsonl, DIR/run.json

Rules: the directory is locked for the whole call (a concurrent ``track`` or
:class:`~alems.session.Session` refuses to start); a call whose provenance hashes differ
from the directory's refuses to append (two runs must not mix), as does an execution
``(goal_id, rep, mode)`` the directory already holds. ``attribution`` is the
accounting's: ``cpu_share`` (default) attributes this process tree's share (``alems``, the
command and its children); an LLM server running as another process on the same host is
outside that tree, so measure it with ``attribution="none"`` on a quiet machine.

Success is the project's checker (:func:`alems.tasks.checkers.judge`) on the
command's stdout when ``expect`` is given (strict: the value must follow an answer marker,
``Answer: VALUE`` or ``#### VALUE``), else exit code 0. With ``proxy_upstream`` a recording proxy
(:class:`alems.proxy.LlmProxy`) runs on a free loopback port for the call, and the
command gets ``OPENAI_BASE_URL`` and ``OPENAI_API_BASE`` pointing at it, so each LLM
call it makes through an OpenAI-compatible client becomes an LLM phase of the attempt.
A call that ends with an exception (Ctrl-C) keeps its ``calls/NNNN`` directory, marked
``aborted``, and is left out of the top-level files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from alems.accounting import combine_sources, contains_modeled, empty_calls
from alems.baseline import load_baseline
from alems.energy.childproc import terminate
from alems.errors import ConfigError, ProvenanceError
from alems.io import atomic_path, atomic_write_bytes, atomic_write_json
from alems.provenance import check_compatible, fingerprint
from alems.proxy import LlmProxy
from alems.session import Attempt, DirLock, Session
from alems.session.records import Goal as GoalExecution
from alems.tasks.base import Goal
from alems.tasks.checkers import VALUE_KINDS, ValueKind, find_numbers
from alems.tasks.checkers import judge as check

#: The largest stdout tail kept for the checker and the ``answer`` column.
MAX_STDOUT_BYTES = 1 << 20
MAX_ANSWER_CHARS = 500
KINDS = VALUE_KINDS


@dataclass
class TrackResult:
    """One ``alems track`` call."""

    call: str
    call_dir: str
    exit_code: int
    success: bool
    error: str
    answer: str
    llm_calls: int
    energy_j: float | None
    energy_source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_teed(cmd: Sequence[str], env: Mapping[str, str], out: IO[bytes] | None) -> tuple[int, str]:
    """Run ``cmd``; copy its stdout to ``out`` as it comes and return ``(exit code, stdout tail)``.

    stderr is inherited. On an exception here (Ctrl-C) the child gets SIGTERM, then SIGKILL.
    """
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, env=dict(env))
    assert proc.stdout is not None
    tail = bytearray()
    try:
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            if out is not None:
                out.write(chunk)
                out.flush()
            tail += chunk
            if len(tail) > MAX_STDOUT_BYTES:
                del tail[: len(tail) - MAX_STDOUT_BYTES]
        rc = proc.wait()
    except BaseException:
        terminate(proc)
        raise
    finally:
        proc.stdout.close()
    return rc, tail.decode("utf-8", errors="replace")


def judge(
    stdout: str, exit_code: int, expect: str | None, kind: str, *, family: str, goal_id: str
) -> tuple[bool, str]:
    """``(success, error)``: the project's checker on stdout when ``expect`` is given, else exit code 0."""
    if exit_code != 0:
        return False, f"exit code {exit_code}"
    if expect is None:
        return True, ""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    answer_kind: ValueKind = "numeric" if kind == "numeric" else "string"
    goal = Goal(family=family, goal_id=goal_id, prompt="", expected=str(expect), answer_kind=answer_kind)
    return (True, "") if check(goal, stdout).success else (False, "wrong answer")


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:MAX_ANSWER_CHARS] if lines else ""


def _call_dirs(out: Path) -> list[Path]:
    calls = out / "calls"
    return sorted(p for p in calls.iterdir() if p.is_dir() and p.name.isdigit()) if calls.is_dir() else []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _complete_calls(out: Path) -> list[tuple[Path, dict[str, Any]]]:
    done = []
    for d in _call_dirs(out):
        meta = _read_json(d / "run.json")
        if meta is not None and meta.get("status") == "complete" and (d / "goals.csv").is_file():
            done.append((d, meta))
    return done


def _read_goals(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"goal_id": str, "family": str})


def merge_calls(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Rebuild ``DIR/goals.csv``, ``DIR/calls.csv``, ``DIR/events.jsonl`` and ``DIR/run.json``
    from the complete calls (a call folder without ``calls.csv``, written before it existed,
    adds no rows)."""
    out = Path(out)
    calls = _complete_calls(out)
    frames = [_read_goals(d / "goals.csv") for d, _ in calls]
    goals = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with atomic_path(out / "events.jsonl") as tmp:
        tmp.write_text("".join((d / "events.jsonl").read_text() for d, _ in calls))
    per_call = [
        pd.read_csv(d / "calls.csv", keep_default_na=False, na_values=[""], dtype={"goal_id": str})
        for d, _ in calls
        if (d / "calls.csv").is_file()
    ]
    calls_df = pd.concat(per_call, ignore_index=True) if per_call else empty_calls()
    with atomic_path(out / "calls.csv") as tmp:
        calls_df.to_csv(tmp, index=False)
    with atomic_path(out / "goals.csv") as tmp:
        goals.to_csv(tmp, index=False)
    final = goals[goals["final_attempt"].astype(bool)] if len(goals) else goals
    source = combine_sources(m.get("energy_source", "") for _, m in calls)
    first = calls[0][1] if calls else {}
    meta = {
        "kind": "track",
        "status": "complete",
        "run_id": first.get("run_id", ""),
        "hashes": first.get("hashes", {}),
        "baseline": first.get("baseline", {}),
        "family": ",".join(sorted({str(f) for f in goals.get("family", [])})),
        "executions": len(final),
        "successes": int(final["success"].astype(bool).sum()) if len(final) else 0,
        "attempts": len(goals),
        "energy_source": source,
        "modeled": contains_modeled(source),
        "calls": [
            {
                "call": d.name,
                **(m.get("track") or {}),
                "wall_s": m.get("wall_s"),
                "framework_overhead_j": m.get("framework_overhead_j"),
                "flags": m.get("flags", []),
            }
            for d, m in calls
        ],
        "aborted_calls": [d.name for d in _call_dirs(out) if d not in {c for c, _ in calls}],
    }
    atomic_write_json(out / "run.json", meta)
    return meta


def _check_append(out: Path, goal_id: str, rep: int, mode: str, hashes: Mapping[str, Any]) -> None:
    """Refuse a call that would duplicate an execution or mix provenance into ``out``."""
    goals = out / "goals.csv"
    if goals.is_file() and goals.stat().st_size:
        g = _read_goals(goals)
        if (
            len(g)
            and (
                (g["goal_id"].astype(str) == goal_id)
                & (g["rep"].astype(int) == rep)
                & (g["mode"].astype(str) == mode)
            ).any()
        ):
            raise ConfigError(
                f"{out} already holds goal {goal_id} ({mode}, rep {rep})",
                "give this execution another --rep, or another --out directory",
            )
    meta = _read_json(out / "run.json")
    if meta and meta.get("hashes"):
        compat = check_compatible(
            {f"{out}/run.json": meta["hashes"], "this call": dict(hashes)}, allow_mixed=True
        )
        if compat.mixed:
            raise ProvenanceError(
                f"this call's provenance differs from the run in {out} ({compat.label}): appending would mix runs",
                "track into a new --out directory",
            )


def _run_baseline(idle: Path, given: str | os.PathLike[str] | None) -> Path | str:
    """The baseline of this call: the run's ``idle.json``, a given file (copied there for the
    later calls), or ``"measure"`` (stored there). A given file that differs from the run's is refused."""
    if given is None:
        return idle if idle.is_file() else "measure"
    base = load_baseline(given)
    if idle.is_file():
        have = load_baseline(idle)
        if have.baseline_id != base.baseline_id:
            raise ConfigError(
                f"--baseline {given} (baseline_id {base.baseline_id}) differs from this run's {idle} "
                f"(baseline_id {have.baseline_id}); one run must use one baseline",
                f"leave out --baseline (the run's {idle} is used), or track into a new --out directory",
            )
        return idle
    atomic_write_bytes(idle, Path(given).read_bytes())
    return idle


def _check_command(cmd: Sequence[str], kind: str, expect: str | None) -> None:
    """The command exists, and ``--kind``/``--expect`` make sense, before anything is locked."""
    if not cmd:
        raise ConfigError(
            "no command given", "write the command after --, e.g. alems track ... -- python agent.py"
        )
    if shutil.which(cmd[0]) is None:
        raise ConfigError(f"command {cmd[0]!r} not found", "give the program's path, or check PATH")
    if kind not in KINDS:
        raise ConfigError(
            f"--kind {kind!r} is not one of {list(KINDS)}", "use --kind numeric or --kind string"
        )
    if expect is not None and kind == "numeric" and not find_numbers(str(expect)):
        raise ConfigError(f"--expect {expect!r} is not a number", "give a number, or use --kind string")


def _call_hashes(meter: Any, interval_ms: float, attribution: str) -> dict[str, Any]:
    """The provenance hashes of a call: the fingerprint of the machine and the track settings."""
    meter_name = meter if isinstance(meter, str) or meter is None else getattr(meter, "name", "meter")
    cfg = {"track": {"meter": meter_name, "interval_ms": float(interval_ms), "attribution": attribution}}
    return fingerprint(cfg).hashes.to_dict()


def _next_call_dir(out: Path) -> Path:
    existing = _call_dirs(out)
    number = int(existing[-1].name) + 1 if existing else 1
    return out / "calls" / f"{number:04d}"


@dataclass
class _Call:
    """One command run as one attempt: what to run, where its output goes, how it is judged."""

    cmd: Sequence[str]
    env: dict[str, str]
    stdout: IO[bytes]
    expect: str | None
    kind: str
    proxy_upstream: str | None
    proxy_timeouts: tuple[float, float]
    exit_code: int = -1
    text: str = ""
    proxy: LlmProxy | None = None

    def run(self, a: Attempt, *, family: str, goal_id: str) -> None:
        """Run the command inside attempt ``a`` (through the recording proxy when there is an
        upstream), then give the attempt its verdict."""
        if self.proxy_upstream:
            self.proxy = LlmProxy(
                self.proxy_upstream,
                a,
                connect_timeout_s=self.proxy_timeouts[0],
                read_timeout_s=self.proxy_timeouts[1],
            ).start()
            self.env["OPENAI_BASE_URL"] = self.env["OPENAI_API_BASE"] = self.proxy.base_url
        try:
            self.exit_code, self.text = run_teed(self.cmd, self.env, self.stdout)
        finally:
            if self.proxy is not None:
                self.proxy.stop()
        ok, why = judge(self.text, self.exit_code, self.expect, self.kind, family=family, goal_id=goal_id)
        if ok:
            a.succeed(answer=last_line(self.text))
        else:
            a.fail(why, answer=last_line(self.text))

    def record(self, *, goal_id: str, family: str, mode: str, rep: int) -> dict[str, Any]:
        """The call's ``track`` entry of its run.json."""
        return {
            "goal_id": goal_id,
            "family": family,
            "mode": mode,
            "rep": rep,
            "exit_code": self.exit_code,
            "program": Path(self.cmd[0]).name,
            "proxy": bool(self.proxy_upstream),
            "proxy_calls": 0 if self.proxy is None else self.proxy.calls,
            "proxy_errors": 0 if self.proxy is None else self.proxy.errors,
        }


def _result(session: Session, call_dir: Path, g: GoalExecution, call: _Call) -> TrackResult:
    result = session.result
    row = result.goals.iloc[-1] if result is not None and len(result.goals) else None
    energy = None if row is None or pd.isna(row["energy_j"]) else float(row["energy_j"] + row["gap_j"])
    return TrackResult(
        call=call_dir.name,
        call_dir=str(call_dir),
        exit_code=call.exit_code,
        success=bool(g.success),
        error=g.attempts[-1].error if g.attempts else "",
        answer=last_line(call.text),
        llm_calls=0 if row is None else int(row["llm_calls"]),
        energy_j=energy,
        energy_source=str(row["energy_source"]) if row is not None else "none",
    )


def track_command(
    cmd: Sequence[str],
    *,
    out_dir: str | os.PathLike[str],
    family: str,
    mode: str,
    goal_id: str,
    rep: int = 0,
    baseline: str | os.PathLike[str] | None = None,
    expect: str | None = None,
    kind: str = "string",
    proxy_upstream: str | None = None,
    meter: Any = "auto",
    interval_ms: float = 10.0,
    attribution: str = "cpu_share",
    powercap_root: str | None = None,
    baseline_config: Mapping[str, Any] | None = None,
    hashes: Mapping[str, Any] | None = None,
    proxy_timeouts: tuple[float, float] = (10.0, 600.0),
    env: Mapping[str, str] | None = None,
    stdout: IO[bytes] | None = None,
) -> TrackResult:
    """Run ``cmd`` as one goal execution of one attempt and append it to ``out_dir`` (module docstring)."""
    _check_command(cmd, kind, expect)
    out = Path(out_dir)
    call = _Call(
        cmd,
        dict(os.environ if env is None else env),
        stdout if stdout is not None else sys.stdout.buffer,
        expect,
        kind,
        proxy_upstream,
        proxy_timeouts,
    )
    with DirLock(out):
        if hashes is None:
            hashes = _call_hashes(meter, interval_ms, attribution)
        _check_append(out, str(goal_id), int(rep), mode, hashes)
        idle = out / "idle.json"
        base_arg: Path | str = _run_baseline(idle, baseline) if meter is not None else "none"
        call_dir = _next_call_dir(out)
        session = Session(
            call_dir,
            meter=meter,
            baseline=base_arg,
            baseline_out=idle,
            interval_ms=interval_ms,
            attribution=attribution,
            powercap_root=powercap_root,
            baseline_config=baseline_config,
            hashes=hashes,
        )
        with session as s:
            expected = "" if expect is None else str(expect)
            with s.goal(goal_id, family=family, mode=mode, rep=rep, expected=expected) as g, g.attempt() as a:
                call.run(a, family=family, goal_id=str(goal_id))
            s.meta_extra["track"] = call.record(goal_id=str(goal_id), family=family, mode=mode, rep=int(rep))
        merge_calls(out)
    return _result(session, call_dir, g, call)


def install_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a killed ``track`` stops its child and proxy cleanly."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


__all__ = ["TrackResult", "judge", "merge_calls", "run_teed", "track_command"]
