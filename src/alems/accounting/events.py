"""The event log read as windows: per attempt, its span and its LLM and tool call windows.

:func:`parse_events` groups ``events.jsonl`` records (DESIGN.md's event kinds,
:data:`alems.contracts.EVENT_KINDS`) into one :class:`AttemptWindows` per attempt, with
the flags a malformed log earns (``unclosed_attempt``, ``unclosed_phase``,
``phase_outside_attempt``, ``overlapping_phases``). :func:`unknown_kinds` lists the kinds
it ignores.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

from alems.accounting.errors import AccountingInputError
from alems.contracts import EVENT_KINDS, LLM_ROLES, WINDOW_EVENT_KINDS

AttemptKey = tuple[str, int, str, int]  # (goal_id, rep, mode, attempt)
ExecutionKey = tuple[str, int, str]  # (goal_id, rep, mode)


@dataclass
class CallInfo:
    """What the event log says about one LLM or tool call besides its window.

    ``role``: the ``role`` of its events, else (LLM calls) the ``name`` when it is one of
    :data:`alems.contracts.LLM_ROLES`, else ``llm``; a tool call's role is the tool's name.
    ``prefill_s`` / ``decode_s``: the backend's own timings (NaN where it gives none);
    ``tokens_estimated``: the token counts were estimated (the proxy, from a stream's chunks).
    """

    kind: str  # "llm" | "tool"
    role: str
    tokens_in: int = 0
    tokens_out: int = 0
    prefill_s: float = math.nan
    decode_s: float = math.nan
    tokens_estimated: bool = False
    error: str = ""


@dataclass
class AttemptWindows:
    """What the event log says about one attempt."""

    t0: float | None = None
    t1: float | None = None
    first_t: float = math.inf
    last_t: float = -math.inf
    llm: list[tuple[float, float]] = field(default_factory=list)
    tool: list[tuple[float, float]] = field(default_factory=list)
    llm_info: list[CallInfo] = field(default_factory=list)  # one per ``llm`` window, same order
    tool_info: list[CallInfo] = field(default_factory=list)  # one per ``tool`` window
    llm_calls: int = 0
    tool_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    flags: set[str] = field(default_factory=set)
    open_llm: list[dict[str, Any]] = field(default_factory=list)
    open_tool: list[dict[str, Any]] = field(default_factory=list)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _tokens(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None, name: str) -> int:
    """Token count of one call: the end event's value if it has one, else the start's."""
    for ev in (end, start):
        if ev is not None and not _is_missing(ev.get(name)):
            return int(ev[name])
    return 0


def _number(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None, name: str) -> float:
    """A float field of one call (the end event's, else the start's); NaN where neither has it."""
    for ev in (end, start):
        if ev is not None and not _is_missing(ev.get(name)):
            try:
                return float(ev[name])
            except (TypeError, ValueError):
                return math.nan
    return math.nan


def _text(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None, name: str) -> str:
    for ev in (end, start):
        if ev is not None and not _is_missing(ev.get(name)):
            return str(ev[name])
    return ""


def call_role(kind: str, role: Any, name: Any) -> str:
    """The role of one call (see :class:`CallInfo`)."""
    if not _is_missing(role) and str(role):
        return str(role)
    if kind == "tool":
        return str(name) if not _is_missing(name) and str(name) else "tool"
    return str(name) if not _is_missing(name) and str(name) in LLM_ROLES else "llm"


def _call_info(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None, is_llm: bool) -> CallInfo:
    """One call's :class:`CallInfo` from its start and end records."""
    kind = "llm" if is_llm else "tool"
    est = _text(start, end, "tokens_estimated").strip().lower() in ("true", "1", "1.0")
    return CallInfo(
        kind=kind,
        role=call_role(kind, _text(start, end, "role") or None, _text(start, end, "name") or None),
        tokens_in=_tokens(start, end, "tokens_in") if is_llm else 0,
        tokens_out=_tokens(start, end, "tokens_out") if is_llm else 0,
        prefill_s=_number(start, end, "prefill_s"),
        decode_s=_number(start, end, "decode_s"),
        tokens_estimated=est,
        error=_text(start, end, "error"),
    )


def _records(events: Any) -> list[dict[str, Any]]:
    """The window events (attempt, LLM and tool starts and ends), each checked for its keys."""
    if isinstance(events, pd.DataFrame):
        recs = cast(list[dict[str, Any]], events.to_dict("records"))
    else:
        recs = [dict(e) for e in events]
    out = []
    for i, r in enumerate(recs):
        if r.get("kind") not in WINDOW_EVENT_KINDS:
            continue  # goal_start/goal_end and kinds this module does not use
        for k in ("t", "goal_id", "rep", "mode"):
            if _is_missing(r.get(k)):
                raise AccountingInputError(
                    f"event #{i} ({r['kind']}) lacks {k!r}: {r}",
                    "events.jsonl records need t, goal_id, rep, mode, attempt, kind (DESIGN.md); "
                    "write them with alems.agents.events.EventLog",
                )
        out.append(r)
    return out


def unknown_kinds(events: Any) -> list[str]:
    """Event kinds outside the DESIGN.md list (they are ignored; :func:`account` flags them)."""
    kinds = events["kind"] if isinstance(events, pd.DataFrame) else [dict(e).get("kind") for e in events]
    return sorted({str(k) for k in kinds if k not in EVENT_KINDS})


def _attempt_key(ev: Mapping[str, Any], open_attempt: Mapping[ExecutionKey, int]) -> AttemptKey | None:
    """The attempt an event belongs to: its ``attempt``, else the one open for its execution.

    ``None`` for an LLM/tool call outside every attempt (framework overhead)."""
    ex: ExecutionKey = (str(ev["goal_id"]), int(ev["rep"]), str(ev["mode"]))
    att = ev.get("attempt")
    if not _is_missing(att):
        return (*ex, int(cast(Any, att)))
    if ex not in open_attempt:
        return None
    return (*ex, open_attempt[ex])


def _end_call(w: AttemptWindows, ev: dict[str, Any], t: float) -> None:
    """An ``llm_end``/``tool_end`` closes the latest open start of its kind (or counts unpaired)."""
    is_llm = ev["kind"] == "llm_end"
    stack = w.open_llm if is_llm else w.open_tool
    start = stack.pop() if stack else None
    if start is None:
        w.flags.add("unclosed_phase")
        if is_llm:
            w.llm_calls += 1
        else:
            w.tool_calls += 1
    else:
        (w.llm if is_llm else w.tool).append((float(start["t"]), t))
        (w.llm_info if is_llm else w.tool_info).append(_call_info(start, ev, is_llm))
    if is_llm:
        w.tokens_in += _tokens(start, ev, "tokens_in")
        w.tokens_out += _tokens(start, ev, "tokens_out")


def _apply(
    w: AttemptWindows, ev: dict[str, Any], key: AttemptKey, open_attempt: dict[ExecutionKey, int]
) -> None:
    """One event's effect on its attempt's windows (and on which attempt is open)."""
    kind = ev["kind"]
    t = float(ev["t"])
    w.first_t = min(w.first_t, t)
    w.last_t = max(w.last_t, t)
    if kind == "attempt_start":
        if w.t0 is not None:
            w.flags.add("unclosed_attempt")
        w.t0 = t
        open_attempt[key[:3]] = key[3]
    elif kind == "attempt_end":
        w.t1 = t
        open_attempt.pop(key[:3], None)
    elif kind == "llm_start":
        w.open_llm.append(ev)
        w.llm_calls += 1
    elif kind == "tool_start":
        w.open_tool.append(ev)
        w.tool_calls += 1
    else:  # llm_end / tool_end
        _end_call(w, ev, t)


def _close(w: AttemptWindows) -> None:
    """After the last event: close what is still open, clip calls to the attempt, flag overlaps."""
    t0 = w.first_t if w.t0 is None else w.t0
    t1 = w.last_t if w.t1 is None else w.t1
    if w.t0 is None or w.t1 is None:
        w.flags.add("unclosed_attempt")
    w.t0, w.t1 = t0, t1
    for stack, windows, info in ((w.open_llm, w.llm, w.llm_info), (w.open_tool, w.tool, w.tool_info)):
        for start in stack:
            w.flags.add("unclosed_phase")
            windows.append((float(start["t"]), float(t1)))
            info.append(_call_info(start, None, start["kind"] == "llm_start"))
            if start["kind"] == "llm_start":
                w.tokens_in += _tokens(start, None, "tokens_in")
                w.tokens_out += _tokens(start, None, "tokens_out")
        stack.clear()
    for windows in (w.llm, w.tool):
        clipped = [(max(a, t0), min(b, t1)) for a, b in windows]
        if clipped != windows:
            w.flags.add("phase_outside_attempt")
        windows[:] = [(a, max(a, b)) for a, b in clipped]
    both = sorted(w.llm + w.tool)
    if any(b[0] < a[1] for a, b in itertools.pairwise(both)):
        w.flags.add("overlapping_phases")


def parse_events(events: Any) -> dict[AttemptKey, AttemptWindows]:
    """Group event records into attempt windows with their LLM and tool windows.

    Starts and ends pair up in order (an end closes the latest open start of its kind).
    LLM/tool events without an ``attempt`` go to the attempt open for their execution.
    """
    recs = _records(events)
    order = sorted(range(len(recs)), key=lambda i: (float(recs[i]["t"]), i))
    out: dict[AttemptKey, AttemptWindows] = {}
    open_attempt: dict[ExecutionKey, int] = {}
    for i in order:
        key = _attempt_key(recs[i], open_attempt)
        if key is not None:
            _apply(out.setdefault(key, AttemptWindows()), recs[i], key, open_attempt)
    for w in out.values():
        _close(w)
    return out
