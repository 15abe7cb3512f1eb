"""``make_backend``: turn an :class:`LLMConfig` into a ready backend.

The study's own choice (the oracle policy, :mod:`alems.llm.oracle`, which also needs the
goals, or this) is :func:`alems.jobs.run_family.study_backend`.

Building a ``llamacpp`` backend resolves and verifies the model file (a catalog name
in ``models_dir``, or ``model_path``) and loads it: do it once per job and keep the
object. ``threads`` is the job's thread count; ``LLMConfig.threads`` overrides it.
"""

from __future__ import annotations

import os

from alems.errors import ConfigError
from alems.llm.base import Backend
from alems.llm.config import LLMConfig
from alems.llm.fetch import resolve_model
from alems.llm.llamacpp import LlamaCppBackend
from alems.llm.openai_compat import OpenAIBackend
from alems.llm.scripted import ScriptedBackend


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def resolve_threads(cfg: LLMConfig, threads: int | None) -> int:
    """Config value first, then the job's threads, then the CPUs this process may use."""
    if cfg.threads is not None:
        return cfg.threads
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}", fix="pass the job's thread count")
        return threads
    return _available_cpus()


def make_backend(cfg: LLMConfig, *, threads: int | None = None) -> Backend:
    """The backend ``cfg.backend`` names, configured from ``cfg``."""
    if cfg.backend == "scripted":
        if not cfg.script:
            raise ConfigError(
                "llm.backend is scripted but llm.script is empty",
                fix="set llm.script to a list of replies (used in order, cycling)",
            )
        return ScriptedBackend(list(cfg.script), model=cfg.model, cycle=True)
    if cfg.backend == "openai":
        return OpenAIBackend(
            base_url=cfg.base_url,
            model=cfg.model,
            api_key_env=cfg.api_key_env,
            timeout_s=cfg.timeout_s,
            connect_timeout_s=cfg.connect_timeout_s,
            retries=cfg.retries,
            backoff_s=cfg.backoff_s,
            stream=cfg.stream,
            response_format=cfg.response_format,
        )
    model = resolve_model(
        cfg.model_path or cfg.model, models_dir=cfg.models_dir, expected_sha256=cfg.model_sha256
    )
    return LlamaCppBackend(
        model,
        threads=resolve_threads(cfg, threads),
        n_ctx=cfg.n_ctx,
        n_batch=cfg.n_batch,
        seed=cfg.seed,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        min_p=cfg.min_p,
        repeat_penalty=cfg.repeat_penalty,
        prompt_cache=cfg.prompt_cache,
    )


def close_backend(backend: object) -> None:
    """``backend.close()`` where the backend has one (llama.cpp frees its model, a client its connection)."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def backend_provenance(backend: object) -> dict[str, object]:
    """``backend.provenance()`` where the backend has one, else its name and model."""
    prov = getattr(backend, "provenance", None)
    if callable(prov):
        return dict(prov())
    return {
        "backend": getattr(backend, "name", type(backend).__name__),
        "model": getattr(backend, "model", None),
    }
