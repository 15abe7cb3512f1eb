"""The one protocol every LLM backend implements, and the typed failures of a call.

Backends: ``llamacpp`` (embedded), ``openai`` (any OpenAI-compatible server),
``scripted`` (deterministic test double). Executors only ever see :class:`Backend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from alems.errors import AlemsError

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class Completion:
    """One finished model call. Times are on the monotonic clock."""

    text: str
    tokens_in: int
    tokens_out: int
    t_start: float
    t_end: float
    finish_reason: str
    ttft_s: float | None = None


class LLMCallError(AlemsError):
    """An LLM call failed. Executors record it as a failed attempt; it never crashes a run."""


class LLMUnavailable(LLMCallError):
    """The server could not be reached (connection refused, DNS, reset)."""


class LLMTimeout(LLMCallError):
    """The call did not finish within its timeout."""


class LLMHTTPError(LLMCallError):
    """The server answered with an HTTP error status or an unusable body."""


@runtime_checkable
class Backend(Protocol):
    """``complete`` is the whole contract."""

    name: str
    model: str

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        stop: list[str] | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion: ...
