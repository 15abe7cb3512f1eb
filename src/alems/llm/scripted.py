"""The ``scripted`` backend: deterministic completions for tests and dry pipeline runs.

A script is either a list of replies (consumed in order, cycling if ``cycle``) or a
callable ``(messages) -> str``. A reply may also be an exception instance, raised
in place of an answer, to script failures. Token counts come from a whitespace
tokenizer, which is this backend's tokenizer: deterministic and documented.
``cost_s_per_token`` optionally burns CPU so energy tests see work that scales with
tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from alems.llm.base import Generation, Message, Request, TimedBackend

Reply = str | BaseException
Script = Sequence[Reply] | Callable[[list[Message]], Reply]


def count_tokens(text: str) -> int:
    """The scripted backend's tokenizer: whitespace-separated pieces, at least 1 for non-empty text."""
    return len(text.split())


class ScriptedBackend(TimedBackend):
    name = "scripted"

    def __init__(
        self,
        script: Script,
        *,
        model: str = "scripted",
        cycle: bool = False,
        cost_s_per_token: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self._script = script
        self._cycle = cycle
        self._i = 0
        self._cost = cost_s_per_token
        self._clock = clock
        self.calls: list[dict[str, Any]] = []

    def _next(self, messages: list[Message]) -> Reply:
        if callable(self._script):
            return self._script(messages)
        replies = self._script
        if self._i >= len(replies):
            if not self._cycle or not replies:
                raise IndexError(f"scripted backend ran out of replies after {self._i} calls")
            self._i = 0
        reply = replies[self._i]
        self._i += 1
        return reply

    def _burn(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        x = 0
        while time.perf_counter() < end:
            x += 1

    def generate(self, messages: list[Message], request: Request, t_start: float) -> Generation:
        self.calls.append(
            {"messages": messages, "max_tokens": request.max_tokens, "json_schema": request.json_schema}
        )
        reply = self._next(messages)
        if isinstance(reply, BaseException):
            raise reply
        pieces = reply.split()
        finish = "stop"
        if len(pieces) > request.max_tokens:
            reply = " ".join(pieces[: request.max_tokens])
            finish = "length"
        if request.stop:
            for s in request.stop:
                if s and s in reply:
                    reply = reply[: reply.index(s)]
                    finish = "stop"
        tokens_in = sum(count_tokens(m.get("content", "")) for m in messages)
        tokens_out = count_tokens(reply)
        if self._cost:
            self._burn(self._cost * (tokens_in + tokens_out))
        return Generation(reply, tokens_in, tokens_out, finish)

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "model_sha256": None,
            "server_url": None,
            "client_side_only": False,
            "energy_scope": "in-process: scripted replies (test double), no model runs",
            "tokenizer": "whitespace",
        }
