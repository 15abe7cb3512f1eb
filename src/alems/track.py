"""``alems track``: one execution of any command, measured as one goal execution of one attempt.

This module owns the run directory that repeated ``alems track`` calls build. Each call
is a :class:`~alems.session.Session` of its own (meter on, sampler for the call's life,
the pipeline's accounting) in ``DIR/calls/NNNN/`` (its ``samples.parquet``,
``events.jsonl``, ``goals.csv`` and ``run.json``). After every call the directory's
top-level ``goals.csv`` and ``events.jsonl`` are rebuilt from all complete calls, and
``DIR/run.json`` lists them, so ``alems metrics DIR/goals.csv`` sees one run:

    DIR/idle.json                    the run's idle baseline: measured by the first call, or its --baseline FILE
    DIR/idle-HOST.json               the baseline of each further host (a call never subtracts another host's)
    DIR/calls/0001/{samples.parquet,events.jsonl,goals.csv,run.json}
    DIR/calls/0002/...               numbered in call order, past 9999 (10000, ...)
    DIR/goals.csv, DIR/events.jsonl, DIR/run.json

**The calls are the record.** The top-level files are derived from the counted calls
(:attr:`CallInfo.counted`) by :func:`merge_calls`, which every call runs first (a merge cut
short by a kill is redone) and again at its end; merging is idempotent. The duplicate and
provenance checks read every call, not the merged files. A call with no run.json (killed
with ``kill -9`` or a power cut) is *incomplete*: reported on every call, listed in
``DIR/run.json``'s ``incomplete_calls``, never counted nor deleted; :func:`repair`
(``alems track --repair DIR``) recovers it from its spool (:mod:`alems.session.recover`).
A call stopped by SIGTERM or Ctrl-C ends cleanly (:mod:`alems.session.signals`): its
execution, cut short, is not counted, and a signal during the merge is held until it is done.

Rules: the directory is locked for the whole call (a concurrent ``track`` or
:class:`~alems.session.Session` refuses to start); a call whose provenance hashes differ
from any call's refuses to append (two runs must not mix), as does an execution
``(goal_id, rep, mode)`` a call already holds (or an incomplete call was running). ``attribution`` is the
accounting's: ``cpu_share`` (default) attributes this process tree's share (``alems``, the
command and its children); an LLM server running as another process on the same host is
outside that tree, so measure it with ``attribution="none"`` on a quiet machine.

Success is the project's checker (:func:`alems.tasks.checkers.judge`) on the
command's stdout when ``expect`` is given (strict: the value must follow an answer marker,
``Answer: VALUE`` or ``#### VALUE``), else exit code 0. With ``proxy_upstream`` a recording proxy
(:class:`alems.proxy.LlmProxy`) runs on a free loopback port for the call, and the
command gets ``OPENAI_BASE_URL`` and ``OPENAI_API_BASE`` pointing at it, so each LLM
call it makes through an OpenAI-compatible client becomes an LLM phase of the attempt.
A call that ends with an error of its own keeps its ``calls/NNNN`` directory, marked
``aborted``, and is left out of the top-level files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from alems.accounting import combine_sources, contains_modeled, empty_calls
from alems.baseline import load_baseline, this_host
from alems.contracts import GOALS_COLUMNS, GOALS_EXTRA_COLUMNS
from alems.energy.childproc import terminate
from alems.errors import ConfigError, ProvenanceError
from alems.io import atomic_path, atomic_write_bytes, atomic_write_json
from alems.provenance import check_compatible, fingerprint
from alems.proxy import LlmProxy
from alems.session import Attempt, DirLock, Session, recover
from alems.session.records import Goal as GoalExecution
from alems.session.signals import SignalGuard, fault_point
from alems.session.spool import Spool
from alems.tasks.base import Goal
from alems.tasks.checkers import VALUE_KINDS, ValueKind, find_numbers
from alems.tasks.checkers import judge as check

#: The largest stdout tail kept for the checker and the ``answer`` column.
MAX_STDOUT_BYTES = 1 << 20
MAX_ANSWER_CHARS = 500
KINDS = VALUE_KINDS

log = logging.getLogger("alems.track")


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


#: Per-call files the merge stacks into ``DIR`` (tables: rows concatenated, columns united;
#: logs: lines concatenated), in call order. A new per-call file joins one of these lists.
MERGED_TABLES: tuple[str, ...] = ("goals.csv", "calls.csv")
MERGED_LOGS: tuple[str, ...] = ("events.jsonl",)


@dataclass(frozen=True)
class CallInfo:
    """One ``DIR/calls/N`` folder: its run.json (None: the call never wrote it), whether the
    merge counts it, and the execution ``(goal_id, rep, mode)`` it holds or was running."""

    dir: Path
    meta: dict[str, Any] | None
    header: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def complete(self) -> bool:
        """It wrote its run.json (whatever its status)."""
        return self.meta is not None and (self.dir / "goals.csv").is_file()

    @property
    def counted(self) -> bool:
        """Its executions are part of the run: the call finished (``complete``), was recovered
        after a kill (``killed``), or was stopped by a signal (``aborted`` with ``signal``; the
        execution the signal cut short is not in its goals.csv). A call aborted by an error
        of its own is not counted."""
        if not self.complete or self.meta is None:
            return False
        status = self.meta.get("status")
        return status in ("complete", "killed") or (status == "aborted" and bool(self.meta.get("signal")))

    @property
    def record(self) -> dict[str, Any]:
        """The call's ``track`` entry: from run.json, or the spool header of an incomplete call."""
        src = self.meta if self.meta is not None else (self.header or {}).get("extra", {})
        return dict((src or {}).get("track") or {})

    @property
    def key(self) -> tuple[str, int, str] | None:
        t = self.record
        if not t:
            return None
        return (str(t.get("goal_id")), int(t.get("rep", 0)), str(t.get("mode")))

    @property
    def holds_execution(self) -> bool:
        """Its execution is (counted) or may be, once recovered (incomplete), in the run."""
        if self.counted:
            return int((self.meta or {}).get("executions") or 0) > 0
        return not self.complete

    @property
    def hashes(self) -> dict[str, Any]:
        src = self.meta if self.meta is not None else self.header
        return dict((src or {}).get("hashes") or {})


def _call_dirs(out: Path) -> list[Path]:
    """The call folders, in call order (numeric: ``10000`` comes after ``9999``)."""
    calls = out / "calls"
    if not calls.is_dir():
        return []
    return sorted((p for p in calls.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def scan_calls(out: str | os.PathLike[str]) -> list[CallInfo]:
    """Every call folder of ``out``, in call order."""
    infos = []
    for d in _call_dirs(Path(out)):
        meta = _read_json(d / "run.json")
        infos.append(CallInfo(d, meta, None if meta is not None else Spool(d).read_header()))
    return infos


def _read_goals(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"goal_id": str, "family": str})


def _stack_table(paths: list[Path], columns: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of every file in ``paths``, in order (columns united); ``columns`` when there are none."""
    frames = [_read_goals(p) for p in paths if p.is_file() and p.stat().st_size]
    frames = [f for f in frames if len(f.columns)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def merge_calls(out: str | os.PathLike[str], calls: list[CallInfo] | None = None) -> dict[str, Any]:
    """Derive ``DIR/goals.csv``, ``DIR/events.jsonl`` and ``DIR/run.json`` from the counted calls.

    The calls are the record: the merged files are rebuilt from them, so a merge that was
    cut short is simply done again, and merging twice gives the same files."""
    out = Path(out)
    infos = scan_calls(out) if calls is None else calls
    counted = [c for c in infos if c.counted]
    for name in MERGED_LOGS:
        with atomic_path(out / name) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for c in counted:
                p = c.dir / name
                if p.is_file():
                    fh.write(p.read_text(encoding="utf-8"))
    goals = pd.DataFrame()
    for name in MERGED_TABLES:
        if name == "goals.csv":
            empty: Sequence[str] = (*GOALS_COLUMNS, *GOALS_EXTRA_COLUMNS)
        else:  # calls.csv: a call folder written before it existed adds no rows
            empty = tuple(empty_calls().columns)
        table = _stack_table([c.dir / name for c in counted], empty)
        with atomic_path(out / name) as tmp:
            table.to_csv(tmp, index=False)
        if name == "goals.csv":
            goals = table
        fault_point("track.merge")
    meta = _merged_meta(out, infos, counted, goals)
    atomic_write_json(out / "run.json", meta)
    return meta


def merged_up_to_date(out: Path, infos: list[CallInfo]) -> bool:
    """Whether ``DIR/run.json`` (written last by a merge) lists exactly these calls, counted,
    aborted and incomplete, and every merged file is there: a merge would rewrite the same files."""
    meta = _read_json(out / "run.json")
    if meta is None or not all((out / n).is_file() for n in (*MERGED_TABLES, *MERGED_LOGS)):
        return False
    listed = (
        [c.get("call") for c in meta.get("calls", [])],
        meta.get("aborted_calls"),
        meta.get("incomplete_calls"),
    )
    return listed == (
        [c.name for c in infos if c.counted],
        [c.name for c in infos if c.complete and not c.counted],
        [c.name for c in infos if not c.complete],
    )


def _merged_meta(
    out: Path, infos: list[CallInfo], counted: list[CallInfo], goals: pd.DataFrame
) -> dict[str, Any]:
    final = goals[goals["final_attempt"].astype(bool)] if len(goals) else goals
    metas = [c.meta or {} for c in counted]
    source = combine_sources(m.get("energy_source", "") for m in metas)
    first = metas[0] if metas else {}
    return {
        "kind": "track",
        "status": "complete",
        "run_id": first.get("run_id", ""),
        "hashes": first.get("hashes", {}),
        "baseline": first.get("baseline", {}),
        "hosts": sorted({str(m.get("host")) for m in metas if m.get("host")}),
        "family": ",".join(sorted({str(f) for f in goals.get("family", [])})),
        "executions": len(final),
        "successes": int(final["success"].astype(bool).sum()) if len(final) else 0,
        "attempts": len(goals),
        "energy_source": source,
        "modeled": contains_modeled(source),
        "calls": [
            {
                "call": c.name,
                "status": m.get("status"),
                **(m.get("track") or {}),
                "host": m.get("host"),
                "wall_s": m.get("wall_s"),
                "framework_overhead_j": m.get("framework_overhead_j"),
                "flags": m.get("flags", []),
            }
            for c, m in zip(counted, metas, strict=True)
        ],
        "aborted_calls": [c.name for c in infos if c.complete and not c.counted],
        "incomplete_calls": [c.name for c in infos if not c.complete],
    }


def _report_incomplete(out: Path, infos: list[CallInfo]) -> None:
    bad = [c.name for c in infos if not c.complete]
    if bad:
        log.warning(
            "%s: call(s) %s never finished (killed?) and are not counted; recover them with "
            "`alems track --repair %s`",
            out,
            ", ".join(bad),
            out,
        )


def _check_append(
    out: Path, infos: list[CallInfo], goal_id: str, rep: int, mode: str, hashes: Mapping[str, Any]
) -> None:
    """Refuse a call that would duplicate an execution or mix provenance into ``out``: checked
    against every counted call and every incomplete one (which ``--repair`` may still count)."""
    key = (goal_id, rep, mode)
    for c in infos:
        if c.key == key and c.holds_execution:
            if c.complete:
                raise ConfigError(
                    f"{out} already holds goal {goal_id} ({mode}, rep {rep}) in call {c.name}",
                    "give this execution another --rep, or another --out directory",
                )
            raise ConfigError(
                f"{out}: call {c.name} was running goal {goal_id} ({mode}, rep {rep}) when it was killed, "
                "and may hold it once recovered",
                f"run `alems track --repair {out}` first: it recovers the call (counting the execution "
                "only if it ended before the kill), then run this again if it is not counted",
            )
    for c in infos:
        if not (c.counted or not c.complete) or not c.hashes:
            continue
        compat = check_compatible(
            {f"{c.dir}/run.json": c.hashes, "this call": dict(hashes)}, allow_mixed=True
        )
        if compat.mixed:
            raise ProvenanceError(
                f"this call's provenance differs from call {c.name} in {out} ({compat.label}): "
                "appending would mix runs",
                "track into a new --out directory",
            )


def repair(out: str | os.PathLike[str]) -> dict[str, Any]:
    """``alems track --repair DIR``: recover every incomplete call (its four files from its
    spool, ``status: killed``; :func:`alems.session.recover`), then merge again.

    Nothing is deleted: a call whose execution ended before the kill is counted with the
    energy it recorded; one killed mid-execution is kept with no execution (run it again)."""
    out = Path(out)
    if not (out / "calls").is_dir():
        raise ConfigError(f"{out} holds no alems track calls", "give the --out directory of alems track")
    with DirLock(out):
        repaired = []
        for c in scan_calls(out):
            if c.complete:
                continue
            res = recover(c.dir)
            meta = res.result.meta if res.result is not None else {}
            repaired.append(
                {
                    "call": c.name,
                    "action": res.action,
                    "status": meta.get("status"),
                    "executions": meta.get("executions", 0),
                    "interrupted": meta.get("interrupted", []),
                }
            )
        merged = merge_calls(out)
    return {
        "dir": str(out),
        "repaired": repaired,
        "executions": merged["executions"],
        "calls": len(merged["calls"]),
    }


def host_idle_path(out: Path, host: str) -> Path:
    """The run's idle baseline for ``host``: ``DIR/idle.json`` for the host that measured it
    first (or when it records no host), else ``DIR/idle-<host>.json``: one per host, keyed by
    name, so a call never subtracts another host's idle power."""
    idle = out / "idle.json"
    if idle.is_file():
        have = load_baseline(idle)
        if have.host is not None and have.host != host:
            return out / f"idle-{re.sub(r'[^A-Za-z0-9._-]', '_', host) or '_'}.json"
    return idle


def _run_baseline(out: Path, given: str | os.PathLike[str] | None, host: str) -> Path | str:
    """The baseline of this call: the run's baseline for this host (:func:`host_idle_path`), a
    given file (copied there for the later calls), or ``"measure"`` (stored there). A given file
    that differs from the run's, or was measured on another host, is refused."""
    idle = host_idle_path(out, host)
    if given is None:
        return idle if idle.is_file() else "measure"
    base = load_baseline(given)
    if base.host is not None and base.host != host:
        raise ConfigError(
            f"--baseline {given} was measured on host {base.host}; this call runs on host {host}, "
            "whose idle power it does not measure",
            f"leave out --baseline (this host's own is measured into {idle}), or give one measured here",
        )
    if idle.is_file():
        have = load_baseline(idle)
        if have.baseline_id != base.baseline_id:
            raise ConfigError(
                f"--baseline {given} (baseline_id {base.baseline_id}) differs from this run's {idle} "
                f"(baseline_id {have.baseline_id}); one run must use one baseline per host",
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


def _next_call_dir(infos: list[CallInfo], out: Path) -> Path:
    """The next call folder: one past the highest number (``0001`` ... ``9999``, ``10000``, ...)."""
    number = int(infos[-1].name) + 1 if infos else 1
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
    guard = SignalGuard().install()
    try:
        with DirLock(out):
            with guard.deferred():  # the calls are the record: first derive the merged files from them
                infos = scan_calls(out)
                if infos and not merged_up_to_date(out, infos):
                    merge_calls(out, infos)
            _report_incomplete(out, infos)
            if hashes is None:
                hashes = _call_hashes(meter, interval_ms, attribution)
            _check_append(out, infos, str(goal_id), int(rep), mode, hashes)
            host = this_host()
            base_arg: Path | str = _run_baseline(out, baseline, host) if meter is not None else "none"
            call_dir = _next_call_dir(infos, out)
            session = Session(
                call_dir,
                meter=meter,
                baseline=base_arg,
                baseline_out=host_idle_path(out, host),
                interval_ms=interval_ms,
                attribution=attribution,
                powercap_root=powercap_root,
                baseline_config=baseline_config,
                hashes=hashes,
            )
            ident: dict[str, Any] = {"goal_id": str(goal_id), "family": family, "mode": mode, "rep": int(rep)}
            session.meta_extra["track"] = call.record(**ident)  # in the spool header too
            with session as s:
                expected = "" if expect is None else str(expect)
                with (
                    s.goal(goal_id, family=family, mode=mode, rep=rep, expected=expected) as g,
                    g.attempt() as a,
                ):
                    call.run(a, family=family, goal_id=str(goal_id))
                s.meta_extra["track"] = call.record(**ident)
            with guard.deferred():
                merge_calls(out)
            fault_point("track.merged")
    finally:
        guard.close()
    return _result(session, call_dir, g, call)


__all__ = [
    "MERGED_LOGS",
    "MERGED_TABLES",
    "CallInfo",
    "TrackResult",
    "host_idle_path",
    "judge",
    "merge_calls",
    "merged_up_to_date",
    "repair",
    "run_teed",
    "scan_calls",
    "track_command",
]
