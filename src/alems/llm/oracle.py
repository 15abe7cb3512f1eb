"""The ``scripted`` backend's oracle policy: a fake LLM that knows every goal's expected answer.

With ``llm.backend: scripted`` and no ``llm.script``, the study runs on :class:`OracleBackend`
(:func:`uses_oracle`), so pipeline tests have successes, failures and retries without a model.

**It depends on the agents' prompts.** The oracle is the one backend that reads the
conversation it is given: it finds the goal by its prompt text and the executor's step
by the texts of :mod:`alems.agents.prompts` (and so only plays the ``plan_execute``
agentic style and the linear mode without tools). The texts it matches are named below,
each with the prompt it comes from; ``tests/test_pipeline_units.py`` checks that every one
still occurs where :mod:`alems.agents.prompts` writes it. Change a prompt there, and
change the marker here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alems.agents import prompts
from alems.errors import ConfigError
from alems.llm.base import Generation, Message, Request, TimedBackend
from alems.llm.config import LLMConfig
from alems.llm.scripted import count_tokens
from alems.sections import schema_default, settings_from_dict
from alems.tasks import Goal

#: In the system prompt (lower case): the agentic one (:func:`prompts.agentic_system`) asks for a plan.
AGENTIC_SYSTEM_MARKER = "plan"
#: In the first agentic request (:func:`prompts.plan_request`).
PLAN_REQUEST_MARKER = "Write the plan now"
#: Starts the message after a tool step (:func:`prompts.tool_result_message`).
TOOL_RESULT_PREFIX = "Result of step"
#: Starts an ``llm`` step's sub-question (:func:`prompts.llm_step_message`).
LLM_STEP_PREFIX = "Step "
#: The self-check request, exactly (:data:`prompts.VERIFY`).
VERIFY_REQUEST = prompts.VERIFY


@dataclass(frozen=True)
class OracleConfig:
    """The ``llm.oracle`` config section: the oracle's designed failures and its cost."""

    fail_rate: float = schema_default("llm", "oracle", "fail_rate")
    seed: int = schema_default("llm", "oracle", "seed")
    cost_s_per_token: float = schema_default("llm", "oracle", "cost_s_per_token")
    sleep_s_per_call: float = schema_default("llm", "oracle", "sleep_s_per_call")

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ConfigError(
                f"llm.oracle.fail_rate must be in [0, 1], got {self.fail_rate!r}",
                fix="set llm.oracle.fail_rate between 0 (never wrong) and 1",
            )
        if self.cost_s_per_token < 0 or self.sleep_s_per_call < 0:
            raise ConfigError(
                "llm.oracle.cost_s_per_token and llm.oracle.sleep_s_per_call must not be negative",
                fix="set them to 0 or more",
            )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> OracleConfig:
        return settings_from_dict(cls, mapping, "llm.oracle")


def uses_oracle(llm: LLMConfig) -> bool:
    """``scripted`` with no fixed ``script``: the oracle policy plays the study in process."""
    return llm.backend == "scripted" and not llm.script


def _u01(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from the given parts (platform independent)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") / 2.0**64


def _wrong_value(expected: str) -> str:
    try:
        v = float(expected.replace(",", ""))
    except ValueError:
        return "unknown"
    return str(int(v) + 7) if v == int(v) else f"{v + 7.5:g}"


class OracleBackend(TimedBackend):
    """The ``scripted`` backend's oracle policy: it knows every goal's expected answer.

    It plays both modes by the executors' protocol (``alems.agents``): in linear mode it
    answers ``Answer: <expected>``; in agentic mode it returns a valid JSON plan that uses
    the goal's real tools (``sql`` with the goal's query, ``write_file`` with the answer,
    ``calculator`` on the answer), a plain sentence after each tool result, the final
    answer, and a self-check that says NO exactly when its own answer was wrong.

    Designed failures, seeded per ``(seed + call seed, goal_id, mode, attempt)``, where the
    call seed is the ``seed`` the executor passes (``agents.seed + rep``), so every rep
    draws its own failures: with probability
    ``fail_rate`` an attempt's answer is wrong (linear: a failed execution; agentic: the
    self-check rejects it and the executor retries), and with ``fail_rate / 3`` an agentic
    plan is not JSON (a parse failure, retried). So a run has successes, failures and
    retries, and its energy scales with tokens through ``cost_s_per_token`` (CPU time
    burned per token, measured on the process clock so it does not depend on load).
    Tokens are whitespace-separated pieces, like :class:`alems.llm.scripted.ScriptedBackend`;
    calls are stamped on ``clock`` (:class:`~alems.llm.base.TimedBackend`).
    """

    name = "scripted"

    def __init__(
        self,
        goals: Sequence[Goal],
        *,
        fail_rate: float = 0.25,
        seed: int = 0,
        cost_s_per_token: float = 0.0,
        sleep_s_per_call: float = 0.0,
        model: str = "oracle",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.goals = list(goals)
        self.fail_rate = float(fail_rate)
        self.seed = int(seed)
        self.cost = float(cost_s_per_token)
        self.sleep_s = float(sleep_s_per_call)
        self.model = model
        self._clock = clock
        self._attempt: dict[tuple[str, str, int], int] = {}
        self._call_seed = 0
        self._wrong: dict[tuple[str, str], bool] = {}
        self.calls = 0

    @classmethod
    def from_config(cls, goals: Sequence[Goal], config: OracleConfig) -> OracleBackend:
        return cls(
            goals,
            fail_rate=config.fail_rate,
            seed=config.seed,
            cost_s_per_token=config.cost_s_per_token,
            sleep_s_per_call=config.sleep_s_per_call,
        )

    # -- helpers
    def _goal(self, messages: Sequence[Mapping[str, str]]) -> Goal | None:
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        first = users[0] if users else ""
        found = [g for g in self.goals if g.prompt and g.prompt in first]
        return max(found, key=lambda g: len(g.prompt)) if found else None

    @staticmethod
    def _mode(messages: Sequence[Mapping[str, str]]) -> str:
        system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
        return "agentic" if AGENTIC_SYSTEM_MARKER in system.lower() else "linear"

    def _new_attempt(self, goal: Goal, mode: str) -> tuple[int, bool]:
        key = (goal.goal_id, mode)
        k = self._attempt.get((*key, self._call_seed), 0) + 1
        self._attempt[(*key, self._call_seed)] = k
        wrong = _u01(self.seed + self._call_seed, goal.goal_id, mode, k, "answer") < self.fail_rate
        self._wrong[key] = wrong
        return k, wrong

    def _answer(self, goal: Goal, mode: str) -> str:
        wrong = self._wrong.get((goal.goal_id, mode), False)
        value = _wrong_value(goal.expected) if wrong else goal.expected
        return f"The result follows from the task.\nAnswer: {value}"

    def _plan(self, goal: Goal, k: int, wrong: bool) -> str:
        if _u01(self.seed + self._call_seed, goal.goal_id, "agentic", k, "plan") < self.fail_rate / 3:
            return "I would first look at the task and then answer it."  # not JSON: a parse failure
        tools = set(goal.tools or ())
        value = _wrong_value(goal.expected) if wrong else goal.expected
        steps: list[dict[str, str]] = []
        if "sql" in tools and goal.db_query:
            steps.append({"tool": "sql", "input": goal.db_query})
        if "write_file" in tools and goal.output_file:
            steps.append({"tool": "write_file", "file": goal.output_file, "input": value})
        if not steps and "calculator" in tools and goal.answer_kind == "numeric":
            steps.append({"tool": "calculator", "input": value})
        if not steps:
            steps.append({"tool": "llm", "input": "Which facts does the task give?"})
        return json.dumps({"steps": steps})

    def _reply(self, messages: list[Message], json_schema: Mapping[str, Any] | None) -> str:
        goal = self._goal(messages)
        if goal is None:
            return "Answer: unknown"
        mode = self._mode(messages)
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        if mode == "linear":
            self._new_attempt(goal, mode)
            return self._answer(goal, mode)
        is_plan = (
            json_schema is not None and "steps" in json.dumps(json_schema)
        ) or PLAN_REQUEST_MARKER in last
        if is_plan and len([m for m in messages if m.get("role") == "user"]) == 1:
            k, wrong = self._new_attempt(goal, mode)
            return self._plan(goal, k, wrong)
        if last.startswith(TOOL_RESULT_PREFIX):
            head = last.split("\n", 1)[0]
            return "The step returned " + head.split(":", 1)[-1].strip() + "."
        if last.startswith(LLM_STEP_PREFIX):
            return "The task gives all the facts needed."
        if last == VERIFY_REQUEST:
            return "NO" if self._wrong.get((goal.goal_id, mode), False) else "YES"
        return self._answer(goal, mode)

    _BLOCK = b"\x5a" * (1 << 16)

    def _burn(self, seconds: float) -> None:
        """Burn ``seconds`` of this process's CPU time, mostly outside the GIL.

        sha256 over a 64 KiB block releases the GIL (as llama.cpp does while it
        computes), so the sampler thread keeps its pace instead of queuing behind a
        pure-Python loop.
        """
        if seconds <= 0:
            return
        start, wall_end = time.process_time(), time.monotonic() + 20 * seconds + 1.0
        while time.process_time() - start < seconds and time.monotonic() < wall_end:
            hashlib.sha256(self._BLOCK).digest()

    def generate(self, messages: list[Message], request: Request, t_start: float) -> Generation:
        self.calls += 1
        self._call_seed = int(request.seed)
        text = self._reply(messages, request.json_schema)
        finish = "stop"
        pieces = text.split(" ")
        if count_tokens(text) > request.max_tokens:
            text, finish = " ".join(pieces[: request.max_tokens]), "length"
        tokens_in = sum(count_tokens(m.get("content", "")) for m in messages)
        tokens_out = count_tokens(text)
        self._burn(self.cost * (tokens_in + tokens_out))
        if self.sleep_s:  # after the work: a call ends idle, like a server waiting on I/O
            time.sleep(self.sleep_s)
        return Generation(text, tokens_in, tokens_out, finish)


__all__ = ["OracleBackend", "OracleConfig", "uses_oracle"]
