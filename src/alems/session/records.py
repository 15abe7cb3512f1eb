"""The records of a session a user opens: a goal execution (:class:`Goal`), its attempts
(:class:`Attempt`) and their LLM and tool phases, and the :class:`Recorder` that writes
their events and keeps their outcomes for the session.

The LLM phase hooks :meth:`Attempt.llm_start` / :meth:`Attempt.llm_end` are thread-safe,
so :mod:`alems.proxy` can record calls that arrive on its own threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from alems.agents.events import EventLog
from alems.agents.executors import AttemptOutcome
from alems.session.lock import SessionError
from alems.session.signals import is_interrupt

log = logging.getLogger("alems.session")

NO_VERDICT = "no verdict"


class Recorder:
    """The events and outcomes of one session's goal executions. Every event goes through
    :meth:`emit` under :attr:`lock`, so goals, attempts and the proxy's threads share one
    event log; :attr:`log` is set while the session runs."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.log: EventLog | None = None
        self.goal: Goal | None = None  # the goal open now (goals do not nest)
        self.goals: list[Goal] = []
        self.outcomes: list[AttemptOutcome] = []
        #: Goal executions cut short by an interruption (a signal, Ctrl-C): no outcome, not in goals.csv.
        self.interrupted: list[Goal] = []
        #: Called with each ended execution's outcomes (the session spools them to disk).
        self.on_goal_end: Callable[[list[AttemptOutcome]], None] | None = None
        self._seen: set[tuple[str, int, str]] = set()

    def emit(self, kind: str, goal: Goal, attempt: int, **fields: Any) -> float:
        """Write one event of ``goal``'s attempt ``attempt`` (0: the goal itself); fields that
        are None are left out."""
        status = fields.pop("status", None)
        with self.lock:
            if self.log is None or self.log.closed:
                raise SessionError(
                    "the session is not running", "use the session inside `with Session(...) as s:`"
                )
            fields = {k: v for k, v in fields.items() if v is not None}
            if status is None:
                return self.log.emit(
                    kind, goal_id=goal.goal_id, rep=goal.rep, mode=goal.mode, attempt=attempt, **fields
                )
            return self.log.emit(
                kind,
                goal_id=goal.goal_id,
                rep=goal.rep,
                mode=goal.mode,
                attempt=attempt,
                status=status,
                **fields,
            )

    def enter_goal(self, g: Goal) -> None:
        if self.goal is not None:
            raise SessionError(
                f"goal {self.goal.goal_id} is still open",
                "finish one goal before starting the next (goals do not nest)",
            )
        key = (g.goal_id, g.rep, g.mode)
        if key in self._seen:
            raise SessionError(
                f"goal {g.goal_id} ({g.mode}, rep {g.rep}) was already executed in this session",
                "give a repetition its own rep number",
            )
        self._seen.add(key)
        self.goal = g

    def leave_goal(self, g: Goal, interrupted: bool = False) -> None:
        """Keep the ended goal's outcomes; an interrupted one is kept aside, with none."""
        self.goal = None
        if interrupted:
            self.interrupted.append(g)
            return
        self.goals.append(g)
        ended = [
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
            for a in g.attempts
        ]
        self.outcomes.extend(ended)
        if self.on_goal_end is not None:
            self.on_goal_end(ended)


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
        self.interrupted = False

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
        return self.goal.recorder.emit(kind, self.goal, self.number, **fields)

    @contextmanager
    def llm(self, model: str | None = None, role: str | None = None) -> Iterator[LlmCall]:
        """An LLM phase. Tokens reported with ``call.tokens(...)`` go on its ``llm_end``;
        an exception inside it is recorded as the call's error and re-raised. ``role`` says
        what the call is for (e.g. ``plan``, ``answer``): calls.csv's ``role`` (``llm`` without)."""
        self._check_open("llm")
        call = LlmCall()
        self._emit("llm_start", name=model, role=role)
        try:
            yield call
        except BaseException as exc:
            self._emit(
                "llm_end",
                name=model,
                tokens_in=call.tokens_in,
                tokens_out=call.tokens_out,
                error=type(exc).__name__,
                role=role,
            )
            raise
        self._emit("llm_end", name=model, tokens_in=call.tokens_in, tokens_out=call.tokens_out, role=role)

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
        with self.goal.recorder.lock:
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
        prefill_s: float | None = None,
        tokens_estimated: bool = False,
    ) -> None:
        """Close a phase opened by :meth:`llm_start` (idempotent; thread-safe). ``prefill_s``:
        the time to the call's first streamed chunk; ``tokens_estimated``: ``tokens_out`` was
        counted from the stream's chunks (the server sent no usage)."""
        if phase is None:
            return
        with self.goal.recorder.lock:
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
                prefill_s=prefill_s,
                tokens_estimated=tokens_estimated,
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
    ) -> None:  # never swallows the user's exception
        if exc is not None:
            self.success, self.error = False, type(exc).__name__
            self.interrupted = is_interrupt(exc)
        elif self.success is None:
            self.success, self.error = False, NO_VERDICT
        with self.goal.recorder.lock:
            self._emit("attempt_end", error=self.error or None)
            self.open = False
        self.goal._closed_attempt(self)


class Goal:
    """One goal execution ``(goal_id, rep, mode)``. Use it through ``with session.goal(...) as g:``."""

    def __init__(
        self, recorder: Recorder, goal_id: str, family: str, mode: str, rep: int, expected: str
    ) -> None:
        self.recorder = recorder
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
        if self.recorder.goal is not self:
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
        self.recorder.enter_goal(self)
        self.recorder.emit("goal_start", self, 0)
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.recorder.emit("goal_end", self, 0)
        interrupted = is_interrupt(exc) or any(a.interrupted for a in self.attempts)
        self.recorder.leave_goal(self, interrupted=interrupted)
        if not self.attempts and exc is None:
            raise SessionError(
                f"goal {self.goal_id} ({self.mode}, rep {self.rep}) ended without an attempt; "
                "an execution with no attempt has no energy window and no outcome",
                "wrap the work in `with g.attempt() as a:`",
            )
