"""The LLM layer: one backend protocol (``llamacpp`` embedded, ``openai`` for any
OpenAI-compatible server, ``scripted`` for tests), the model catalog and fetching with
sha256 verification. It knows nothing about tasks.

Heavy modules (llama-cpp-python) load only when a ``llamacpp`` backend is built.
"""

from alems.llm.base import (
    Backend,
    Completion,
    LLMCallError,
    LLMHTTPError,
    LLMTimeout,
    LLMUnavailable,
    Message,
)
from alems.llm.catalog import Catalog, CatalogEntry, WheelPart, default_model, load_catalog
from alems.llm.config import LLMConfig
from alems.llm.factory import backend_provenance, make_backend, resolve_threads
from alems.llm.fetch import ModelFile, fetch_model, list_models, model_sha256, resolve_model

__all__ = [
    "Backend",
    "Catalog",
    "CatalogEntry",
    "Completion",
    "LLMCallError",
    "LLMConfig",
    "LLMHTTPError",
    "LLMTimeout",
    "LLMUnavailable",
    "Message",
    "ModelFile",
    "WheelPart",
    "backend_provenance",
    "default_model",
    "fetch_model",
    "list_models",
    "load_catalog",
    "make_backend",
    "model_sha256",
    "resolve_model",
    "resolve_threads",
]
