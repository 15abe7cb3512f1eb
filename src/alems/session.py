"""Measure your own agent: the ``Session`` / ``goal`` / ``attempt`` / ``llm`` / ``tool`` API.

This module owns the in-process recording of a user's own goal executions. It composes
the same layers as a pipeline job (:func:`alems.study.run_family`): one meter and one
:class:`~alems.energy.sampler.Sampler` for the session's life, an
:class:`~alems.agents.events.EventLog` whose clock is the sampler's boundary read (every
``goal``, ``attempt``, ``llm`` and ``tool`` edge is an exact counter read on the sampler's
monotonic clock), an idle baseline from :mod:`alems.baseline`, and at the end
:func:`alems.accounting.account`, the pipeline's own accounting. It writes the four
files of DESIGN.md's data contracts, atomically, ``goals.csv`` and ``run.json`` last::

    from alems import Session

    with Session("runs/my-agent", meter="auto", baseline="measure") as s:
        for task in my_tasks:
            with s.goal(task.id, family="support_bot", mode="agentic", rep=0) as g:
                with g.attempt() as a:
                    with a.llm(model="gpt-x") as call:
                        reply = client.chat(...)
                        call.tokens(tokens_in=..., tokens_out=...)
                    with a.tool("search"):
                        ...
                    a.succeed()            # or a.fail("wrong answer")

Rules:

* An attempt that ends without a verdict is a failed attempt with ``error = "no verdict"``.
* An exception inside an attempt is recorded as a failed attempt whose ``error`` is the
  exception's type name, and re-raised: a user's error is never swallowed. A session
  left by an exception still writes its files (``run.json`` says ``status: aborted``).
* A session holds an exclusive lock on its directory, and refuses a directory that
  already holds a run: two runs are never mixed.
* ``meter=None`` records the same events and outcomes with no energy (dry runs, tests):
  the energy columns are empty and ``energy_source`` is ``none``.
* ``baseline``: ``"measure"`` (a short idle protocol before the sampler starts, stored
  as ``idle.json`` in the directory), a path to an ``idle.json``, a
  :class:`~alems.baseline.Baseline`, or ``"none"`` (idle power 0: ``dynamic_j`` equals
  ``raw_j``; ``run.json`` says so).

The LLM phase hooks :meth:`Attempt.llm_start` / :meth:`Attempt.llm_end` are thread-safe,
so :mod:`alems.proxy` can record calls that arrive on its own threads.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from alems.agents.executors import AttemptOutcome
from alems.contracts import GOALS_COLUMNS, GOALS_EXTRA_COLUMNS, MODES
from alems.errors import AlemsError, ConfigError

log = logging.getLogger("alems.session")

#: The idle protocol ``baseline="measure"`` uses unless ``baseline_config`` says otherwise
#: (the same short protocol as ``alems run``: about 4 s).
SESSION_BASELINE: dict[str, Any] = {"settle_s": 1.0, "windows": 3, "window_s": 1.0, "max_retries": 0}
LOCK_NAME = ".alems.lock"
NO_VERDICT = "no verdict"
METERS = ("auto", "rapl", "nvml", "model")


class SessionError(AlemsError):
    """The Session API was used out of order, or its directory cannot be used."""


class SessionLockedError(SessionError):
    """Another session holds the directory's lock."""


# --------------------------------------------------------------------------- directory lock
class DirLock:
    """An exclusive, non-blocking ``flock`` on ``DIR/.alems.lock``, held until :meth:`release`.

    The kernel drops it when the process dies, so a crashed session never leaves a stale lock.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DirLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SessionLockedError(
                f"{self.directory} is in use by another A-LEMS session (pid {holder}); two runs must not mix",
                "wait for it to finish, or give this session another directory",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- records
class LlmCall:
    """The handle of one ``with attempt.llm(...)`` block: report its tokens with :meth:`tokens`."""

    def __init__(self) -> None:
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None

    def tokens(self, tokens_in: int | None = None, tokens_out: int | None = None) -> None:
        if tokens_in is not None:
            self.tokens_in = int(tokens_in)
        if tokens_out is not None:
            self.tokens_out = int(tokens_out)


@dataclass
class _Phase:
    """An LLM call opened with :meth:`Attempt.llm_start` (thread-safe; the proxy's hook)."""

    name: str | None
    t: float
    closed: bool = False


class Attempt:
    """One attempt of a goal execution. Use it through ``with goal.attempt() as a:``."""

    def __init__(self, goal: Goal, number: int) -> None:
        self.goal = goal
        self.number = number
        self.success: bool | None = None
        self.error = ""
        self.answer = ""
        self.open = False
        self.dropped = 0

    # -- verdict
    def succeed(self, answer: str | None = None) -> None:
        """Mark the attempt successful (``answer`` goes to goals.csv's ``answer`` column)."""
        self.success, self.error = True, ""
        if answer is not None:
            self.answer = str(answer)

    def fail(self, reason: str = "failed", answer: str | None = None) -> None:
        """Mark the attempt failed; ``reason`` goes to goals.csv's ``error`` column."""
        self.success, self.error = False, str(reason) or "failed"
        if answer is not None:
            self.answer = str(answer)

    # -- phases
    def _emit(self, kind: str, **fields: Any) -> float:
        return self.goal.session._emit(kind, self.goal, self.number, **fields)

    @contextmanager
    def llm(self, model: str | None = None) -> Iterator[LlmCall]:
        """An LLM phase. Tokens reported with ``call.tokens(...)`` go on its ``llm_end``;
        an exception inside it is recorded as the call's error and re-raised."""
        self._check_open("llm")
        call = LlmCall()
        self._emit("llm_start", name=model)
        try:
            yield call
        except BaseException as exc:
            self._emit(
                "llm_end",
                name=model,
                tokens_in=call.tokens_in,
                tokens_out=call.tokens_out,
                error=type(exc).__name__,
            )
            raise
        self._emit("llm_end", name=model, tokens_in=call.tokens_in, tokens_out=call.tokens_out)

    @contextmanager
    def tool(self, name: str) -> Iterator[None]:
        """A tool phase; an exception inside it is recorded as the call's error and re-raised."""
        self._check_open("tool")
        self._emit("tool_start", name=name)
        try:
            yield
        except BaseException as exc:
            self._emit("tool_end", name=name, error=type(exc).__name__)
            raise
        self._emit("tool_end", name=name)

    def llm_start(self, name: str | None = None) -> _Phase | None:
        """Open an LLM phase from any thread; ``None`` when the attempt is already closed
        (the call is then not recorded, and counted in :attr:`dropped`)."""
        with self.goal.session._lock:
            if not self.open:
                self.dropped += 1
                log.warning(
                    "an LLM call arrived after attempt %d of %s ended; not recorded",
                    self.number,
                    self.goal.goal_id,
                )
                return None
            t = self._emit("llm_start", name=name)
            return _Phase(name, t)

    def llm_end(
        self,
        phase: _Phase | None,
        *,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        error: str | None = None,
        status: int | None = None,
    ) -> None:
        """Close a phase opened by :meth:`llm_start` (idempotent; thread-safe)."""
        if phase is None:
            return
        with self.goal.session._lock:
            if phase.closed:
                return
            phase.closed = True
            if not self.open:
                self.dropped += 1
                return
            self._emit(
                "llm_end",
                name=phase.name,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                error=error,
                status=status,
            )

    def _check_open(self, what: str) -> None:
        if not self.open:
            raise SessionError(
                f"{what} phase outside attempt {self.number} of goal {self.goal.goal_id}",
                "open phases inside `with g.attempt() as a:`",
            )

    # -- context
    def __enter__(self) -> Attempt:
        self.open = True
        self._emit("attempt_start")
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is not None:
            self.success, self.error = False, type(exc).__name__
        elif self.success is None:
            self.success, self.error = False, NO_VERDICT
        with self.goal.session._lock:
            self._emit("attempt_end", error=self.error or None)
            self.open = False
        self.goal._closed_attempt(self)
        return False  # never swallow the user's exception


class Goal:
    """One goal execution ``(goal_id, rep, mode)``. Use it through ``with session.goal(...) as g:``."""

    def __init__(
        self, session: Session, goal_id: str, family: str, mode: str, rep: int, expected: str
    ) -> None:
        self.session = session
        self.goal_id = str(goal_id)
        self.family = str(family)
        self.mode = str(mode)
        self.rep = int(rep)
        self.expected = str(expected)
        self.attempts: list[Attempt] = []
        self._current: Attempt | None = None

    @property
    def success(self) -> bool:
        """Whether the last attempt succeeded (the execution's outcome)."""
        return bool(self.attempts and self.attempts[-1].success)

    def attempt(self) -> Attempt:
        """A new attempt (numbered from 1); attempts of one goal run one after the other."""
        if self.session._goal is not self:
            raise SessionError(
                f"goal {self.goal_id} is not open", "use `with s.goal(...) as g:` around its attempts"
            )
        if self._current is not None:
            raise SessionError(
                f"attempt {self._current.number} of goal {self.goal_id} is still open",
                "finish one attempt before starting the next",
            )
        a = Attempt(self, len(self.attempts) + 1)
        self._current = a
        return a

    def _closed_attempt(self, a: Attempt) -> None:
        self._current = None
        self.attempts.append(a)

    def __enter__(self) -> Goal:
        self.session._enter_goal(self)
        self.session._emit("goal_start", self, 0)
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.session._emit("goal_end", self, 0)
        self.session._leave_goal(self)
        if not self.attempts and exc is None:
            raise SessionError(
                f"goal {self.goal_id} ({self.mode}, rep {self.rep}) ended without an attempt; "
                "an execution with no attempt has no energy window and no outcome",
                "wrap the work in `with g.attempt() as a:`",
            )
        return False


# --------------------------------------------------------------------------- the session
def _open_meter(meter: Any, powercap_root: str | None) -> tuple[Any, bool]:
    """``(meter, owned)``: a meter kind is opened here (and closed by the session)."""
    if meter is None or not isinstance(meter, str):
        return meter, False
    if meter not in METERS:
        raise ConfigError(
            f"unknown meter {meter!r}", f"use one of {', '.join(METERS)}, or None for no energy"
        )
    from alems.energy import open_meter

    return open_meter(meter, powercap_root=powercap_root), True


@dataclass
class SessionResult:
    """What a finished session wrote (also in ``run.json``)."""

    out_dir: Path
    run_id: str
    goals: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


class Session:
    """Record goal executions of your own agent, with the pipeline's meter and accounting.

    ``meter``: ``"auto"``, ``"rapl"``, ``"nvml"``, ``"model"``, an open
    :class:`~alems.energy.base.Meter` (not closed by the session), or ``None`` (no energy).
    ``baseline``: ``"measure"``, ``"none"``, a path to an ``idle.json``, or a
    :class:`~alems.baseline.Baseline`. ``baseline_config`` overrides the idle protocol of
    ``"measure"`` (default :data:`SESSION_BASELINE`); ``baseline_out`` is where a measured
    baseline is stored (default ``DIR/idle.json``). ``clock`` is the sampler's (and so the
    events') clock: the monotonic clock unless a test injects one. ``hashes`` (a mapping with ``hw_hash``,
    ``env_hash``, ``config_hash``, ``run_id``) replaces the fingerprint taken at start.
    See the module docstring for the rules.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        meter: Any = "auto",
        baseline: Any = "measure",
        interval_ms: float = 10.0,
        attribution: str = "cpu_share",
        min_coverage: float = 0.8,
        baseline_config: Mapping[str, Any] | None = None,
        baseline_out: str | os.PathLike[str] | None = None,
        powercap_root: str | None = None,
        hashes: Mapping[str, Any] | None = None,
        sampler_mode: str = "auto",
        clock: Any = time.monotonic,
    ) -> None:
        from alems.accounting import AccountingConfig
        from alems.study import RunPaths

        self.out_dir = Path(out_dir)
        self.paths = RunPaths.in_dir(self.out_dir)
        self.meter_arg = meter
        self.baseline_arg = baseline
        self.interval_s = float(interval_ms) / 1000.0
        if self.interval_s <= 0:
            raise ConfigError(
                f"interval_ms is {interval_ms!r}; it must be positive", "use e.g. interval_ms=10"
            )
        self.accounting = AccountingConfig(attribution=attribution, min_coverage=float(min_coverage))
        self.baseline_config = dict(SESSION_BASELINE if baseline_config is None else baseline_config)
        self.baseline_out = Path(baseline_out) if baseline_out is not None else self.out_dir / "idle.json"
        self.powercap_root = powercap_root
        self.hashes_arg = dict(hashes) if hashes is not None else None
        self.sampler_mode = sampler_mode
        self.clock = clock
        self._lock = threading.RLock()
        self._dir_lock = DirLock(self.out_dir)
        self._goal: Goal | None = None
        self._goals: list[Goal] = []
        self._outcomes: list[AttemptOutcome] = []
        self._seen: set[tuple[str, int, str]] = set()
        self._log: Any = None
        self._sampler: Any = None
        self._meter: Any = None
        self._own_meter = False
        self._base: Any = None
        self._hashes: dict[str, Any] = {}
        self._t_start = 0.0
        self.result: SessionResult | None = None
        self.started = False
        #: Extra top-level entries for run.json (e.g. ``alems track`` records its command here).
        self.meta_extra: dict[str, Any] = {}

    # ------------------------------------------------------------------ start
    def _check_empty(self) -> None:
        held = [p.name for p in self.paths.all() if p.exists()]
        if held:
            raise SessionError(
                f"{self.out_dir} already holds a run ({', '.join(held)}); a new session would mix two runs",
                "give the session a new directory, or move the old run away",
            )

    def _resolve_baseline(self) -> tuple[dict[str, float], dict[str, Any]]:
        """The idle power per domain and the ``baseline`` record of run.json (before the sampler starts)."""
        from alems.baseline import Baseline, BaselineConfig, load_baseline, measure_baseline, write_baseline

        domains = self._meter.domains()
        b = self.baseline_arg
        if isinstance(b, str) and b == "none":
            return {d.key: 0.0 for d in domains}, {
                "status": "none",
                "note": "no idle baseline: dynamic_j = raw_j",
            }
        if isinstance(b, str) and b == "measure":
            from alems.provenance import HostPaths, cpu_power_state

            governor, turbo = cpu_power_state(HostPaths())
            base = measure_baseline(
                self._meter,
                BaselineConfig.from_dict(self.baseline_config),
                hw_hash=self._hashes.get("hw_hash"),
                governor=governor,
                turbo=turbo,
            )
            write_baseline(self.baseline_out, base)
            path: str | None = str(self.baseline_out)
        elif isinstance(b, Baseline):
            base, path = b, None
        elif isinstance(b, str | os.PathLike):
            base, path = load_baseline(b), str(b)
        else:
            raise ConfigError(
                f"baseline {b!r} is not understood",
                'use "measure", "none", a path to an idle.json, or an alems.baseline.Baseline',
            )
        missing = sorted({d.key for d in domains} - set(base.power_w))
        if missing:
            raise SessionError(
                f"the idle baseline ({path or base.baseline_id}) has no power for domain(s) {missing} of this meter",
                'measure a baseline with the same meter: baseline="measure"',
            )
        if not base.stable:
            log.warning(
                "the idle baseline %s is unstable (%s): dynamic and attributed energy are unreliable; "
                "quiet the machine and measure again",
                base.baseline_id,
                "; ".join(base.unstable_reasons) or base.status,
            )
        info = {"baseline_id": base.baseline_id, "status": base.status, "modeled": base.modeled, "path": path}
        return dict(base.power_w), info

    def _session_config(self) -> dict[str, Any]:
        meter = (
            self.meter_arg
            if isinstance(self.meter_arg, str) or self.meter_arg is None
            else str(getattr(self.meter_arg, "name", type(self.meter_arg).__name__))
        )
        return {
            "session": {
                "meter": meter,
                "interval_ms": self.interval_s * 1000.0,
                "accounting": {
                    "attribution": self.accounting.attribution,
                    "min_coverage": self.accounting.min_coverage,
                },
            }
        }

    def start(self) -> Session:
        """Lock the directory, open the meter, take the baseline, start the sampler and the event log."""
        if self.started:
            raise SessionError("this session was already started", "create a new Session for a new run")
        from alems.agents.events import EventLog
        from alems.study import clean_partials

        self._dir_lock.acquire()
        try:
            self._check_empty()
            clean_partials(self.paths)
            if self.hashes_arg is not None:
                self._hashes = dict(self.hashes_arg)
            else:
                from alems.provenance import fingerprint

                self._hashes = fingerprint(self._session_config()).hashes.to_dict()
            self._meter, self._own_meter = _open_meter(self.meter_arg, self.powercap_root)
            clock: Any = self.clock
            if self._meter is not None:
                from alems.energy.sampler import Sampler

                self._idle_w, self._baseline_info = self._resolve_baseline()
                self._sampler = Sampler(
                    self._meter,
                    interval_s=self.interval_s,
                    clock=self.clock,
                    pid=os.getpid(),
                    mode=self.sampler_mode,
                )
                self._sampler.start()
                clock = self._sampler.boundary_t
            else:
                self._idle_w, self._baseline_info = {}, {"status": "none", "note": "no meter"}
            self._t_start = float(clock())
            self._log = EventLog(self.paths.events, clock=clock)
            self._clock = clock
        except BaseException:
            self._abort_start()
            raise
        self.started = True
        return self

    def _abort_start(self) -> None:
        if self._sampler is not None:
            with suppress(Exception):
                self._sampler.stop()
        if self._own_meter and self._meter is not None:
            self._meter.close()
        self._dir_lock.release()

    # ------------------------------------------------------------------ events
    def _emit(self, kind: str, goal: Goal, attempt: int, **fields: Any) -> float:
        status = fields.pop("status", None)
        with self._lock:
            if self._log is None or self._log.closed:
                raise SessionError(
                    "the session is not running", "use the session inside `with Session(...) as s:`"
                )
            fields = {k: v for k, v in fields.items() if v is not None}
            if status is None:
                return self._log.emit(
                    kind, goal_id=goal.goal_id, rep=goal.rep, mode=goal.mode, attempt=attempt, **fields
                )
            return self._log.emit(
                kind,
                goal_id=goal.goal_id,
                rep=goal.rep,
                mode=goal.mode,
                attempt=attempt,
                status=status,
                **fields,
            )

    def goal(self, goal_id: str, *, family: str, mode: str, rep: int = 0, expected: str = "") -> Goal:
        """A goal execution; ``mode`` is ``linear`` or ``agentic`` (the OOI compares the two)."""

        if not self.started:
            raise SessionError(
                "the session is not running", "use the session inside `with Session(...) as s:`"
            )
        if mode not in MODES:
            raise ConfigError(
                f"mode {mode!r} is not one of {list(MODES)}",
                "use mode='linear' or mode='agentic' (OOI = EpG agentic / EpG linear)",
            )
        if not str(goal_id) or not str(family):
            raise ConfigError(
                "goal_id and family must be non-empty", "pass e.g. s.goal('q1', family='support_bot', ...)"
            )
        return Goal(self, str(goal_id), str(family), mode, int(rep), expected)

    def _enter_goal(self, g: Goal) -> None:
        if self._goal is not None:
            raise SessionError(
                f"goal {self._goal.goal_id} is still open",
                "finish one goal before starting the next (goals do not nest)",
            )
        key = (g.goal_id, g.rep, g.mode)
        if key in self._seen:
            raise SessionError(
                f"goal {g.goal_id} ({g.mode}, rep {g.rep}) was already executed in this session",
                "give a repetition its own rep number",
            )
        self._seen.add(key)
        self._goal = g

    def _leave_goal(self, g: Goal) -> None:
        self._goal = None
        self._goals.append(g)
        for a in g.attempts:
            self._outcomes.append(
                AttemptOutcome(
                    family=g.family,
                    mode=g.mode,
                    goal_id=g.goal_id,
                    rep=g.rep,
                    attempt=a.number,
                    success=bool(a.success),
                    final_attempt=a is g.attempts[-1],
                    answer=a.answer,
                    expected=g.expected,
                    error=a.error,
                )
            )

    # ------------------------------------------------------------------ finish
    def finish(self, error: BaseException | None = None) -> SessionResult:
        """Stop the sampler, account and write the four files (goals.csv and run.json last)."""
        if not self.started:
            raise SessionError("the session was never started", "use `with Session(...) as s:`")
        try:
            return self._finish(error)
        finally:
            self.started = False
            self._dir_lock.release()

    def _finish(self, error: BaseException | None) -> SessionResult:
        from alems.accounting import AccountingResult, account, contains_modeled, parse_events
        from alems.agents.events import read_events
        from alems.agents.runner import outcomes_frame
        from alems.energy.sampler import write_samples
        from alems.io import atomic_path, atomic_write_json
        from alems.study import window_share

        t_end = float(self._clock())
        samples = domains = None
        try:
            if self._sampler is not None:
                self._sampler.stop()
                samples = self._sampler.frame()
                domains = list(self._meter.domains())
        finally:
            if self._own_meter and self._meter is not None:
                self._meter.close()
            with self._lock:
                self._log.close()
        events = read_events(self.paths.events)
        outcomes = outcomes_frame(self._outcomes)
        acct: AccountingResult | None = None
        if samples is not None and len(outcomes):
            acct = account(
                samples,
                domains,
                events,
                outcomes,
                self._idle_w,
                attribution=self.accounting.attribution,
                min_coverage=self.accounting.min_coverage,
                run_id=str(self._hashes.get("run_id") or ""),
            )
            goals = acct.goals
        else:
            goals = _goals_without_energy(
                outcomes,
                parse_events(events),
                str(self._hashes.get("run_id") or ""),
                "none" if samples is None else "unknown",
            )
        wall_s = t_end - self._t_start
        in_s, share = window_share(goals, wall_s)
        final = goals[goals["final_attempt"].astype(bool)] if len(goals) else goals
        meta: dict[str, Any] = {
            "kind": "session",
            "status": "complete" if error is None else "aborted",
            "error": None if error is None else type(error).__name__,
            "run_id": str(self._hashes.get("run_id") or ""),
            "family": ",".join(sorted({g.family for g in self._goals})),
            "families": sorted({g.family for g in self._goals}),
            "modes": sorted({g.mode for g in self._goals}),
            "goals": len({g.goal_id for g in self._goals}),
            "executions": len(final),
            "successes": int(final["success"].astype(bool).sum()) if len(final) else 0,
            "attempts": len(goals),
            "wall_s": wall_s,
            "in_window_s": in_s,
            "in_window_share": share,
            "framework_overhead_j": None if acct is None else float(acct.framework_overhead_j),
            "overhead_s": None if acct is None else float(acct.overhead_s),
            "energy_source": "none" if samples is None else (acct.energy_source if acct else "unknown"),
            "modeled": bool(acct is not None and contains_modeled(acct.energy_source)),
            "domains": [
                {"key": d.key, "kind": d.kind, "source": d.source, "meter": d.meter} for d in domains or []
            ],
            "samples": 0 if samples is None else len(samples),
            "meter": None
            if self._meter is None
            else str(getattr(self._meter, "name", type(self._meter).__name__)),
            "interval_ms": self.interval_s * 1000.0,
            "accounting": {
                "attribution": self.accounting.attribution,
                "min_coverage": self.accounting.min_coverage,
            },
            "flags": [] if acct is None else list(acct.flags),
            "sampler_errors": 0 if self._sampler is None else len(self._sampler.errors),
            "dropped_llm_calls": sum(a.dropped for g in self._goals for a in g.attempts),
            "hashes": self._hashes,
            "baseline": self._baseline_info,
            **self.meta_extra,
        }
        if samples is not None:
            with atomic_path(self.paths.samples) as tmp:
                write_samples(samples, domains, str(tmp))
        with atomic_path(self.paths.goals) as tmp:
            goals.to_csv(tmp, index=False)
        atomic_write_json(self.paths.meta, meta)
        self.result = SessionResult(self.out_dir, meta["run_id"], goals, meta)
        return self.result

    # ------------------------------------------------------------------ context
    def __enter__(self) -> Session:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            self.finish()
            return False
        try:
            self.finish(exc)
        except Exception:
            log.exception("could not write the session's files after %s", type(exc).__name__)
        return False


def _goals_without_energy(
    outcomes: pd.DataFrame, windows: Mapping[Any, Any], run_id: str, source: str
) -> pd.DataFrame:
    """goals.csv rows with no energy (``meter=None``): times and work from the events, energy empty."""

    rows = []
    for o in outcomes.to_dict("records"):
        w = windows.get((str(o["goal_id"]), int(o["rep"]), str(o["mode"]), int(o["attempt"])))
        t0 = float(w.t0) if w is not None else float("nan")
        t1 = float(w.t1) if w is not None else float("nan")
        rows.append(
            {
                **o,
                "t0": t0,
                "t1": t1,
                "duration_s": t1 - t0,
                "llm_calls": w.llm_calls if w else 0,
                "tool_calls": w.tool_calls if w else 0,
                "tokens_in": w.tokens_in if w else 0,
                "tokens_out": w.tokens_out if w else 0,
                "energy_source": source,
                "run_id": run_id,
                "flags": ";".join(sorted({"no_energy", *(w.flags if w else {"no_window"})})),
            }
        )
    return pd.DataFrame(rows, columns=[*GOALS_COLUMNS, *GOALS_EXTRA_COLUMNS])


__all__ = [
    "Attempt",
    "DirLock",
    "Goal",
    "LlmCall",
    "Session",
    "SessionError",
    "SessionLockedError",
    "SessionResult",
]
