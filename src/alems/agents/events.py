"""The event log: one JSON record per line, the ``events.jsonl`` contract of DESIGN.md::

    {"t": 12.345678, "goal_id": "...", "rep": 0, "mode": "agentic", "attempt": 1,
     "kind": "tool_end", "name": "calculator", "error": "injected: tool failure"}

``kind`` is one of :data:`EVENT_KINDS`. ``name``, ``tokens_in``, ``tokens_out``, ``error`` and
``status`` (the HTTP status of an LLM call recorded by :mod:`alems.proxy`) appear only when set. Goal-level events (``goal_start``/``goal_end``) carry ``attempt`` 0;
attempts are numbered from 1.

Every ``t`` comes from the injected ``clock()``: the energy integration passes a clock that
performs an exact counter read and returns its timestamp, so each edge of an attempt,
LLM call or tool call has a counter read at exactly the event's ``t``. The log never
reads energy counters itself.

Writing: each record is flushed as soon as it is emitted, into a temporary sibling
(``.events.jsonl.partial``). :meth:`EventLog.close` moves it onto the final path, so
``events.jsonl`` exists only once it is complete; a killed run leaves the partial file
for diagnosis and no half-written output.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from alems.contracts import EVENT_KINDS


class EventLog:
    """Append-only JSONL event log with an injected clock.

    >>> import tempfile, itertools, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> ticks = itertools.count()
    >>> with EventLog(d / "events.jsonl", clock=lambda: float(next(ticks))) as log:
    ...     t = log.emit("goal_start", goal_id="g1", rep=0, mode="linear", attempt=0)
    >>> read_events(d / "events.jsonl")[0]["kind"]
    'goal_start'
    """

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_path = self.path.with_name(f".{self.path.name}.partial")
        self.clock = clock
        self._fh: TextIO | None = open(self.partial_path, "w", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def emit(
        self,
        kind: str,
        *,
        goal_id: str,
        rep: int,
        mode: str,
        attempt: int,
        name: str | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        error: str | None = None,
        status: int | None = None,
        role: str | None = None,
        prefill_s: float | None = None,
        decode_s: float | None = None,
        tokens_estimated: bool | None = None,
    ) -> float:
        """Stamp ``clock()``, write one record, flush; return the stamp.

        Optional call fields (DESIGN.md, events.jsonl): ``role`` (what an LLM call is for),
        ``prefill_s`` / ``decode_s`` (the backend's own timings of the call) and
        ``tokens_estimated`` (the token counts were estimated, not reported)."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
        if self._fh is None:
            raise ValueError(f"event log {self.path} is closed")
        t = float(self.clock())
        rec: dict[str, Any] = {
            "t": t,
            "goal_id": goal_id,
            "rep": int(rep),
            "mode": mode,
            "attempt": int(attempt),
            "kind": kind,
        }
        if name is not None:
            rec["name"] = name
        if tokens_in is not None:
            rec["tokens_in"] = int(tokens_in)
        if tokens_out is not None:
            rec["tokens_out"] = int(tokens_out)
        if error is not None:
            rec["error"] = error
        if status is not None:
            rec["status"] = int(status)
        if role is not None:
            rec["role"] = str(role)
        if prefill_s is not None:
            rec["prefill_s"] = float(prefill_s)
        if decode_s is not None:
            rec["decode_s"] = float(decode_s)
        if tokens_estimated:
            rec["tokens_estimated"] = True
        self._fh.write(json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n")
        self._fh.flush()
        self.count += 1
        return t

    def scope(self, *, goal_id: str, rep: int, mode: str) -> EventScope:
        """A handle that fills in ``goal_id``, ``rep`` and ``mode`` for one execution."""
        return EventScope(self, goal_id=goal_id, rep=rep, mode=mode)

    @property
    def closed(self) -> bool:
        return self._fh is None

    def close(self) -> None:
        """Fsync and move the partial file onto ``path``. Idempotent."""
        if self._fh is None:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        os.replace(self.partial_path, self.path)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class EventScope:
    """Events of one goal execution ``(goal_id, rep, mode)``."""

    log: EventLog
    goal_id: str
    rep: int
    mode: str

    def emit(self, kind: str, attempt: int, **fields: Any) -> float:
        return self.log.emit(
            kind, goal_id=self.goal_id, rep=self.rep, mode=self.mode, attempt=attempt, **fields
        )

    @contextmanager
    def span(self, start: str, end: str, attempt: int, name: str | None = None) -> Iterator[dict[str, Any]]:
        """Emit ``start`` now and ``end`` on exit. The caller may put ``tokens_in``,
        ``tokens_out`` or ``error`` into the yielded dict for the end record. An exception
        inside the block is recorded as the end record's error and re-raised."""
        self.emit(start, attempt, name=name)
        extra: dict[str, Any] = {}
        try:
            yield extra
        except BaseException as exc:
            extra.setdefault("error", f"{type(exc).__name__}: {exc}")
            self.emit(end, attempt, name=name, **extra)
            raise
        self.emit(end, attempt, name=name, **extra)


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of an event log, in file order. Blank lines are skipped; a malformed
    line raises ``ValueError`` naming its line number."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: malformed event record ({exc.msg})") from None
            out.append(rec)
    return out


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The events as a DataFrame with every contract column present (missing ones as NA)."""
    cols = ["t", "goal_id", "rep", "mode", "attempt", "kind", "name", "tokens_in", "tokens_out", "error"]
    df = pd.DataFrame.from_records(events)
    for c in cols:
        if c not in df.columns:
            df[c] = pd.NA
    return df[cols]
