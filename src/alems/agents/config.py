"""``AgentConfig``: every setting of the executors, with defaults, built from the
``agents`` section of the workflow config (``AgentConfig.from_dict``).

Styles (``style``): ``plan_execute`` (a JSON plan, its steps, a synthesis) or ``react``
(thought/action/observation steps until the model says ``final`` or ``max_steps``, then
a synthesis). ``linear_tools``: ``none`` (the linear mode has no tools) or
``single_pass`` (one call may name one tool call, which runs; a second call answers).
Both modes' final-answer calls share one output cap, ``max_tokens.answer`` (the older keys
``linear`` and ``synthesise`` still set it, and must agree).

Retries: a failed attempt (plan parse error, tool error, rejected self-check, LLM error)
is followed, while attempts remain, by a pause of ``backoff_s * backoff_factor**(n-1)``
seconds after attempt ``n``. Failure injection is off by default; when on, each LLM call
times out with probability ``inject_timeout_rate`` and each tool call fails with
probability ``inject_tool_failure_rate``, drawn from a generator seeded by
``(seed, goal_id, rep, mode)``.

Repetitions: every LLM call of rep ``r`` passes ``seed + r`` to the backend, and the
injection generator is seeded per rep, so a repetition measures run-to-run variation,
not a copy. (Greedy decoding at temperature 0 ignores the seed: there the reps of a
real model differ only where the call history or the machine makes them differ.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alems.errors import ConfigError
from alems.sections import schema_default, settings_from_dict

#: The final-answer cap of BOTH modes (linear's one call, agentic's synthesis). It has no schema
#: default, so that its older names (:data:`LEGACY_ANSWER_KEYS`) can still set it.
DEFAULT_ANSWER_TOKENS = 384
#: Output-token caps per kind of LLM call: ``answer``, then (from the schema) ``plan`` (the JSON
#: plan), ``step`` (a plain sentence after a tool result, or a sub-question answer), ``react``
#: (one thought/action step), ``decide`` (linear single_pass: the one tool call, or none) and
#: ``verify`` (YES, or NO with a short reason).
DEFAULT_MAX_TOKENS: dict[str, int] = {
    "answer": DEFAULT_ANSWER_TOKENS,
    **{k: schema_default("agents", "max_tokens", k) for k in ("plan", "step", "react", "decide", "verify")},
}
#: Older names of the final-answer cap, still accepted; they must agree with each other.
LEGACY_ANSWER_KEYS: tuple[str, ...] = ("linear", "synthesise")
STYLES: tuple[str, ...] = ("plan_execute", "react")
LINEAR_TOOLS: tuple[str, ...] = ("none", "single_pass")


@dataclass(frozen=True)
class AgentConfig:
    """Settings of the linear and agentic executors."""

    max_attempts: int = schema_default("agents", "max_attempts")
    backoff_s: float = schema_default("agents", "backoff_s")
    backoff_factor: float = schema_default("agents", "backoff_factor")
    verify: bool = schema_default("agents", "verify")
    style: str = schema_default("agents", "style")
    linear_tools: str = schema_default("agents", "linear_tools")
    max_steps: int = schema_default("agents", "max_steps")
    # the schema's default is {}: __post_init__ fills in DEFAULT_MAX_TOKENS
    max_tokens: dict[str, int] = field(default_factory=lambda: schema_default("agents", "max_tokens"))
    temperature: float = schema_default("agents", "temperature")
    seed: int = schema_default("agents", "seed")
    json_schema: bool = schema_default("agents", "json_schema")  # constrain the plan and verify calls
    # override the generated plan schema
    plan_schema: dict[str, Any] | None = field(
        default_factory=lambda: schema_default("agents", "plan_schema")
    )
    inject_tool_failure_rate: float = schema_default("agents", "inject_tool_failure_rate")
    inject_timeout_rate: float = schema_default("agents", "inject_timeout_rate")
    # how long an injected timeout waits before failing
    inject_timeout_s: float = schema_default("agents", "inject_timeout_s")
    keep_workdirs: bool = schema_default("agents", "keep_workdirs")  # keep sandboxes and database copies

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(
                f"agents.max_attempts must be >= 1, got {self.max_attempts}",
                fix="set agents.max_attempts to 1 or more",
            )
        if self.max_steps < 1:
            raise ConfigError(
                f"agents.max_steps must be >= 1, got {self.max_steps}",
                fix="set agents.max_steps to 1 or more",
            )
        for key in ("backoff_s", "backoff_factor", "temperature", "inject_timeout_s"):
            v = getattr(self, key)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(
                    f"agents.{key} must be a finite number >= 0, got {v!r}",
                    fix=f"set agents.{key} to 0 or more",
                )
        for key in ("inject_tool_failure_rate", "inject_timeout_rate"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(
                    f"agents.{key} must be in [0, 1], got {v!r}",
                    fix=f"set agents.{key} between 0 (off) and 1",
                )
        if self.style not in STYLES:
            raise ConfigError(
                f"agents.style must be one of {STYLES}, got {self.style!r}",
                fix="set agents.style to plan_execute or react",
            )
        if self.linear_tools not in LINEAR_TOOLS:
            raise ConfigError(
                f"agents.linear_tools must be one of {LINEAR_TOOLS}, got {self.linear_tools!r}",
                fix="set agents.linear_tools to none or single_pass",
            )
        merged = dict(DEFAULT_MAX_TOKENS)
        given = dict(self.max_tokens)
        answer_caps = {k: given.pop(k) for k in ("answer", *LEGACY_ANSWER_KEYS) if k in given}
        if len(set(answer_caps.values())) > 1:
            raise ConfigError(
                f"agents.max_tokens gives different final-answer caps {answer_caps}; both modes get the same one",
                fix="set only agents.max_tokens.answer (linear and synthesise are its older names)",
            )
        if answer_caps:
            given["answer"] = next(iter(answer_caps.values()))
        for k, v in given.items():
            if k not in DEFAULT_MAX_TOKENS:
                raise ConfigError(
                    f"unknown agents.max_tokens key {k!r}",
                    fix=f"valid keys are: {', '.join(DEFAULT_MAX_TOKENS)}",
                )
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(
                    f"agents.max_tokens.{k} must be a positive integer, got {v!r}",
                    fix=f"set agents.max_tokens.{k} to e.g. {DEFAULT_MAX_TOKENS[k]}",
                )
            merged[k] = v
        object.__setattr__(self, "max_tokens", merged)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return self.backoff_s * self.backoff_factor ** (attempt - 1)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> AgentConfig:
        """Build from a config mapping; unknown keys and wrong types are ConfigErrors naming the key."""
        return settings_from_dict(cls, mapping, "agents")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
