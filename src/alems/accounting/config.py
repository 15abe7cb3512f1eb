"""Accounting settings: the ``accounting:`` config section and the attribution modes it names.

Defaults come from the workflow schema (:func:`alems.sections.schema_default`); key and
type checks from :func:`alems.sections.settings_from_dict`. This module keeps only the
checks the schema cannot state for the dataclass: the attribution modes and the range of
``min_coverage``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alems.errors import ConfigError
from alems.sections import schema_default, settings_from_dict

ATTRIBUTIONS: tuple[str, ...] = ("cpu_share", "none")
GPU_ATTRIBUTIONS: tuple[str, ...] = ("exclusive", "cpu_share", "none")
DEFAULT_ATTRIBUTION: str = schema_default("accounting", "attribution")
DEFAULT_MIN_COVERAGE: float = schema_default("accounting", "min_coverage")


@dataclass(frozen=True)
class AccountingConfig:
    """Accounting settings; the workflow config's ``accounting:`` block mirrors it."""

    # The mapping form is named first: settings_from_dict passes this union through
    # unconverted, and attribution_modes (in __post_init__) checks both forms.
    attribution: Mapping[str, str] | str = DEFAULT_ATTRIBUTION
    min_coverage: float = DEFAULT_MIN_COVERAGE
    gpu_study_processes: tuple[str, ...] = ()  # the schema gives this key no default

    def __post_init__(self) -> None:
        attribution_modes(self.attribution)
        if isinstance(self.attribution, Mapping):
            # a frozen config holds its own copy, never the caller's mapping
            object.__setattr__(self, "attribution", dict(self.attribution))
        cov = float(self.min_coverage)
        if not (0.0 <= cov <= 1.0) or math.isnan(cov):
            raise ConfigError(
                f"accounting.min_coverage is {self.min_coverage!r}; it must be in [0, 1]",
                "set `accounting: {min_coverage: 0.8}` in the config",
            )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> AccountingConfig:
        """Build from the ``accounting:`` config section; unknown keys and ill-typed values are a
        :class:`ConfigError` (:func:`alems.sections.settings_from_dict`)."""
        return settings_from_dict(cls, mapping, "accounting")

    @property
    def modes(self) -> tuple[str, str]:
        """``(cpu, gpu)`` attribution modes (:func:`attribution_modes`)."""
        return attribution_modes(self.attribution)


def attribution_modes(attribution: str | Mapping[str, str]) -> tuple[str, str]:
    """``(cpu, gpu)`` modes from ``accounting.attribution``: a single switch or one per domain kind.

    The single switch keeps its old meaning for the CPU: ``cpu_share`` is
    ``{cpu: cpu_share, gpu: exclusive}`` (a GPU goes whole to the study that alone uses
    it), ``none`` is ``{cpu: none, gpu: none}`` (α = 1 everywhere). The mapping form names
    ``cpu`` (package, dram, psys, cpu-model: ``cpu_share`` | ``none``) and ``gpu``
    (``exclusive`` | ``cpu_share`` | ``none``); a kind left out takes the default.
    """
    fix = (
        "set `accounting: {attribution: cpu_share}` (or `none`), or per domain kind "
        "`accounting: {attribution: {cpu: cpu_share, gpu: exclusive}}`"
    )
    if isinstance(attribution, str):
        if attribution not in ATTRIBUTIONS:
            raise ConfigError(
                f"accounting.attribution is {attribution!r}; it must be one of {list(ATTRIBUTIONS)} "
                "or a mapping {cpu: ..., gpu: ...}",
                fix,
            )
        return (attribution, "exclusive" if attribution == "cpu_share" else "none")
    if not isinstance(attribution, Mapping):
        raise ConfigError(f"accounting.attribution is {attribution!r}; it must be a string or a mapping", fix)
    unknown = sorted(set(attribution) - {"cpu", "gpu"})
    cpu = attribution.get("cpu", "cpu_share")
    gpu = attribution.get("gpu", "exclusive")
    if unknown or cpu not in ATTRIBUTIONS or gpu not in GPU_ATTRIBUTIONS:
        raise ConfigError(
            f"accounting.attribution is {dict(attribution)!r}; keys are cpu ({list(ATTRIBUTIONS)}) "
            f"and gpu ({list(GPU_ATTRIBUTIONS)})",
            fix,
        )
    return (str(cpu), str(gpu))
