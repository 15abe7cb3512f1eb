"""``LLMConfig``: every setting of the LLM layer, with defaults, built from the ``llm``
section of the workflow config (``LLMConfig.from_dict``).

Settings that change results (model, sampling, limits) live here; so do the client
knobs of the ``openai`` backend (timeouts, retries), because they decide when a call
counts as failed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alems.errors import ConfigError
from alems.sections import schema_default, settings_from_dict

BACKENDS = ("llamacpp", "openai", "scripted")
RESPONSE_FORMATS = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class LLMConfig:
    """Settings of the LLM layer. ``model`` is a catalog name; ``model_path`` (a local GGUF)
    overrides it and skips fetching. ``threads=None`` means the job's threads."""

    backend: str = schema_default("llm", "backend")
    model: str = schema_default("llm", "model")
    model_path: str | None = schema_default("llm", "model_path")
    model_sha256: str | None = schema_default("llm", "model_sha256")
    models_dir: str = schema_default("llm", "models_dir")
    # llamacpp
    threads: int | None = schema_default("llm", "threads")
    n_ctx: int = schema_default("llm", "n_ctx")
    n_batch: int = schema_default("llm", "n_batch")
    top_k: int = schema_default("llm", "top_k")
    top_p: float = schema_default("llm", "top_p")
    min_p: float = schema_default("llm", "min_p")
    repeat_penalty: float = schema_default("llm", "repeat_penalty")
    prompt_cache: bool = schema_default("llm", "prompt_cache")
    # sampling and limits (all backends)
    max_tokens: int = schema_default("llm", "max_tokens")
    temperature: float = schema_default("llm", "temperature")
    seed: int = schema_default("llm", "seed")
    # openai
    base_url: str = schema_default("llm", "base_url")
    api_key_env: str | None = schema_default("llm", "api_key_env")
    timeout_s: float = float(schema_default("llm", "timeout_s"))
    connect_timeout_s: float = float(schema_default("llm", "connect_timeout_s"))
    retries: int = schema_default("llm", "retries")
    backoff_s: float = schema_default("llm", "backoff_s")
    stream: bool = schema_default("llm", "stream")
    response_format: str = schema_default("llm", "response_format")
    # scripted
    script: tuple[str, ...] = schema_default("llm", "script")

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"llm.backend is {self.backend!r}; it must be one of {', '.join(BACKENDS)}",
                fix="set llm.backend to llamacpp, openai or scripted",
            )
        if self.response_format not in RESPONSE_FORMATS:
            raise ConfigError(
                f"llm.response_format is {self.response_format!r}; it must be one of {', '.join(RESPONSE_FORMATS)}",
                fix="json_schema for OpenAI, vLLM and llama.cpp's server; json_object for llama-cpp-python's server",
            )
        positive = {
            "n_ctx": self.n_ctx,
            "n_batch": self.n_batch,
            "max_tokens": self.max_tokens,
            "timeout_s": self.timeout_s,
            "connect_timeout_s": self.connect_timeout_s,
        }
        for key, value in positive.items():
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"llm.{key} must be positive, got {value!r}", fix=f"set llm.{key} > 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(
                f"llm.threads must be >= 1, got {self.threads}", fix="set llm.threads or leave it null"
            )
        if self.retries < 0 or self.backoff_s < 0 or self.temperature < 0:
            raise ConfigError(
                "llm.retries, llm.backoff_s and llm.temperature must not be negative",
                fix="set them to 0 or more",
            )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> LLMConfig:
        """Build from a config mapping; unknown keys and wrong types are ConfigErrors naming the key."""
        return settings_from_dict(cls, mapping, "llm")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["script"] = list(self.script)
        return d


def llm_settings(llm: Mapping[str, Any]) -> dict[str, Any]:
    """The ``llm`` config section without the keys only the study reads (the oracle policy)."""
    return {k: v for k, v in llm.items() if k != "oracle"}
