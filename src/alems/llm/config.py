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
from dataclasses import dataclass, field
from typing import Any

from alems.errors import ConfigError
from alems.settings import settings_from_dict

BACKENDS = ("llamacpp", "openai", "scripted")
RESPONSE_FORMATS = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class LLMConfig:
    """Settings of the LLM layer. ``model`` is a catalog name; ``model_path`` (a local GGUF)
    overrides it and skips fetching. ``threads=None`` means the job's threads."""

    backend: str = "llamacpp"
    model: str = "qwen2.5-coder-0.5b"
    model_path: str | None = None
    model_sha256: str | None = None
    models_dir: str = "resources/models"
    # llamacpp
    threads: int | None = None
    n_ctx: int = 4096
    n_batch: int = 512
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    prompt_cache: bool = True
    # sampling and limits (all backends)
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    # openai
    base_url: str = "http://127.0.0.1:8080/v1"
    api_key_env: str | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    retries: int = 2
    backoff_s: float = 1.0
    stream: bool = False
    response_format: str = "json_schema"
    # scripted
    script: tuple[str, ...] = field(default_factory=tuple)

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
