"""``AgentConfig``: every setting of the executors, with defaults, built from the
``agents`` section of the workflow config (``AgentConfig.from_dict``).

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
from alems.settings import settings_from_dict

#: Output-token caps per kind of LLM call.
DEFAULT_MAX_TOKENS: dict[str, int] = {
    "linear": 384,  # the one call of the linear mode (room to reason, then "Answer: ...")
    "plan": 192,  # the JSON plan
    "step": 48,  # a plain sentence after a tool result, or a sub-question answer
    "synthesise": 128,  # the final answer of the agentic mode
    "verify": 8,  # YES or NO
}


@dataclass(frozen=True)
class AgentConfig:
    """Settings of the linear and agentic executors."""

    max_attempts: int = 3
    backoff_s: float = 0.5
    backoff_factor: float = 2.0
    verify: bool = True
    max_steps: int = 5
    max_tokens: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_TOKENS))
    temperature: float = 0.0
    seed: int = 0
    json_schema: bool = True  # constrain the plan and verify calls with a JSON schema
    plan_schema: dict[str, Any] | None = None  # override the generated plan schema
    inject_tool_failure_rate: float = 0.0
    inject_timeout_rate: float = 0.0
    inject_timeout_s: float = 0.0  # how long an injected timeout waits before failing
    keep_workdirs: bool = True  # keep per-attempt sandboxes and database copies

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"agents.max_attempts must be >= 1, got {self.max_attempts}",
                              fix="set agents.max_attempts to 1 or more")
        if self.max_steps < 1:
            raise ConfigError(f"agents.max_steps must be >= 1, got {self.max_steps}",
                              fix="set agents.max_steps to 1 or more")
        for key in ("backoff_s", "backoff_factor", "temperature", "inject_timeout_s"):
            v = getattr(self, key)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"agents.{key} must be a finite number >= 0, got {v!r}",
                                  fix=f"set agents.{key} to 0 or more")
        for key in ("inject_tool_failure_rate", "inject_timeout_rate"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"agents.{key} must be in [0, 1], got {v!r}",
                                  fix=f"set agents.{key} between 0 (off) and 1")
        merged = dict(DEFAULT_MAX_TOKENS)
        for k, v in dict(self.max_tokens).items():
            if k not in DEFAULT_MAX_TOKENS:
                raise ConfigError(f"unknown agents.max_tokens key {k!r}",
                                  fix=f"valid keys are: {', '.join(DEFAULT_MAX_TOKENS)}")
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"agents.max_tokens.{k} must be a positive integer, got {v!r}",
                                  fix=f"set agents.max_tokens.{k} to e.g. {DEFAULT_MAX_TOKENS[k]}")
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
