"""The one protocol every LLM backend implements, the typed failures of a call, and the
body of ``complete`` the backends share.

Backends: ``llamacpp`` (embedded), ``openai`` (any OpenAI-compatible server),
``scripted`` (deterministic test double). Executors only ever see :class:`Backend`.
A backend built on :class:`TimedBackend` implements only ``generate``: the start and end
stamps on its clock and the :class:`Completion` are made here, once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from alems.errors import AlemsError, ModelError

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
    prefill_s: float | None = None  # the backend's own prompt-evaluation time (llama.cpp's perf)
    decode_s: float | None = None  # the backend's own token-generation time


class LLMCallError(AlemsError):
    """An LLM call failed. Executors record it as a failed attempt; it never crashes a run.

    The ``openai`` backend also says whether the failure is worth a retry (``retryable``),
    the HTTP status (``status``, None without one), the URL it called (``url``) and, once it
    gives up, how many tries it made (``attempts``)."""

    retryable: bool = False
    status: int | None = None
    url: str | None = None
    attempts: int | None = None


class LLMUnavailable(LLMCallError):
    """The server could not be reached (connection refused, DNS, reset)."""


class LLMTimeout(LLMCallError):
    """The call did not finish within its timeout."""


class LLMHTTPError(LLMCallError):
    """The server answered with an HTTP error status or an unusable body."""


class BackendNotInstalled(ModelError):
    """The package a backend runs on is not installed (llama-cpp-python for ``llamacpp``)."""


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


@dataclass(frozen=True)
class Request:
    """The settings of one call besides its messages: the keyword arguments of ``complete``."""

    max_tokens: int
    temperature: float = 0.0
    seed: int = 0
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Generation:
    """What one call generated, before :class:`TimedBackend` stamps it into a :class:`Completion`.
    ``ttft_s`` is measured from the call's start stamp."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str
    ttft_s: float | None = None
    prefill_s: float | None = None
    decode_s: float | None = None


class TimedBackend:
    """The shared ``complete`` of the backends: stamp the start on ``_clock``, ``generate``,
    stamp the end (after everything the call did, retries included) and return the
    :class:`Completion`. Subclasses set ``name``, ``model`` and ``_clock``."""

    name: str
    model: str
    _clock: Callable[[], float]

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        stop: list[str] | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        t_start = self._clock()
        request = Request(max_tokens, temperature, seed, stop, json_schema)
        out = self.generate(messages, request, t_start)
        return Completion(
            text=out.text,
            tokens_in=out.tokens_in,
            tokens_out=out.tokens_out,
            t_start=t_start,
            t_end=self._clock(),
            finish_reason=out.finish_reason,
            ttft_s=out.ttft_s,
            prefill_s=out.prefill_s,
            decode_s=out.decode_s,
        )

    def generate(self, messages: list[Message], request: Request, t_start: float) -> Generation:
        """One call's text, token counts and finish reason; ``t_start`` is the call's start stamp."""
        raise NotImplementedError
