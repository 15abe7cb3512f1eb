"""Where the proxy records its calls: the :class:`LlmSink` protocol (an
:class:`~alems.session.Attempt` is one) and the :class:`EventLogSink` of ``alems proxy``."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from alems.agents.events import EventLog


class LlmSink(Protocol):
    """Where the proxy records its calls (thread-safe)."""

    def llm_start(self, name: str | None = None) -> Any: ...

    def llm_end(
        self,
        phase: Any,
        *,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        error: str | None = None,
        status: int | None = None,
        prefill_s: float | None = None,
        tokens_estimated: bool = False,
    ) -> None: ...


class EventLogSink:
    """Records each call as an ``llm_start``/``llm_end`` pair of one fixed execution
    ``(goal_id, rep, mode, attempt)`` in an :class:`~alems.agents.events.EventLog`."""

    def __init__(
        self,
        events: EventLog,
        *,
        goal_id: str = "proxy",
        rep: int = 0,
        mode: str = "agentic",
        attempt: int = 1,
    ) -> None:
        self.events = events
        self.attempt = int(attempt)
        self._scope = events.scope(goal_id=goal_id, rep=int(rep), mode=mode)
        self._lock = threading.Lock()

    def llm_start(self, name: str | None = None) -> dict[str, Any]:
        with self._lock:
            self._scope.emit("llm_start", self.attempt, name=name)
        return {"name": name, "closed": False}

    def llm_end(
        self,
        phase: Any,
        *,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        error: str | None = None,
        status: int | None = None,
        prefill_s: float | None = None,
        tokens_estimated: bool = False,
    ) -> None:
        with self._lock:
            if phase is None or phase["closed"]:
                return
            phase["closed"] = True
            self._scope.emit(
                "llm_end",
                self.attempt,
                name=phase["name"],
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                error=error,
                status=status,
                prefill_s=prefill_s,
                tokens_estimated=tokens_estimated,
            )
