"""A-LEMS: Energy per Successful Goal (EpG) and the Orchestration Overhead Index (OOI).

Layers (see DESIGN.md): ``energy`` (meters and sampler), ``baseline``, ``provenance``,
``llm`` (backends and model catalog), ``tasks``, ``agents``, ``accounting``,
``metrics``, ``figures``; ``cli`` is the ``alems`` command.
"""

__version__ = "0.1.0"
