"""A-LEMS: Energy per Successful Goal (EpG) and the Orchestration Overhead Index (OOI).

Layers (see DESIGN.md): ``energy`` (meters and sampler), ``baseline``, ``provenance``,
``llm`` (backends and model catalog), ``tasks``, ``agents``, ``accounting``,
``metrics``, ``figures``; ``session`` (the ``Session`` API for your own agent) and
``proxy`` (the recording OpenAI-compatible proxy); ``cli`` is the ``alems`` command.
"""

__version__ = "0.1.0"

__all__ = ["Session", "__version__"]


def __getattr__(name: str) -> object:
    """``from alems import Session`` without importing the measurement layers at ``import alems``."""
    if name == "Session":
        from alems.session import Session

        return Session
    raise AttributeError(f"module 'alems' has no attribute {name!r}")
