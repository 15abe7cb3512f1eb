"""The metrics layer's settings (:class:`MetricsConfig`), built from the config's ``metrics:`` block."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alems.contracts import ENERGY_LAYERS, POOLED_ESTIMANDS
from alems.errors import ConfigError
from alems.sections import schema_default, settings_from_dict


def _check_integer(name: str, value: Any, minimum: int, fix: str) -> None:
    """A ConfigError unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"metrics.{name} is {value!r}; it must be an integer >= {minimum}", fix)


def _check_choice(name: str, value: str, choices: tuple[str, ...], fix: str) -> None:
    """A ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"metrics.{name} is {value!r}; it must be one of {list(choices)}", fix)


@dataclass(frozen=True)
class MetricsConfig:
    """Bootstrap settings; the workflow config's ``metrics:`` block mirrors it.

    ``bootstrap`` is B, the number of resamples (0: no intervals); ``level`` the
    confidence level; ``seed`` the generator seed (same seed -> identical tables);
    ``min_goals`` the fewest goals (clusters) a family needs for an interval;
    ``pooled_estimand`` the headline pooled estimand (listed first in each pooled scope,
    drawn by the figures).
    """

    bootstrap: int = schema_default("metrics", "bootstrap")
    level: float = schema_default("metrics", "level")
    seed: int = schema_default("metrics", "seed")
    min_goals: int = schema_default("metrics", "min_goals")
    pooled_estimand: str = schema_default("metrics", "pooled_estimand")
    energy_layer: str = schema_default("metrics", "energy_layer")

    def __post_init__(self) -> None:
        _check_integer(
            "min_goals",
            self.min_goals,
            1,
            "set `metrics: {min_goals: 10}` in the config (or pass --min-goals 10)",
        )
        _check_choice(
            "pooled_estimand",
            self.pooled_estimand,
            POOLED_ESTIMANDS,
            "set `metrics: {pooled_estimand: ratio_of_means}` in the config (the paper's estimand)",
        )
        _check_choice(
            "energy_layer",
            self.energy_layer,
            ENERGY_LAYERS,
            "set `metrics: {energy_layer: total}` in the config (or pass --layer total)",
        )
        _check_integer(
            "bootstrap",
            self.bootstrap,
            0,
            "set `metrics: {bootstrap: 10000}` in the config (or pass --bootstrap 10000)",
        )
        if not (isinstance(self.level, float | int) and 0.0 < float(self.level) < 1.0):
            raise ConfigError(
                f"metrics.level is {self.level!r}; it must lie strictly between 0 and 1",
                "set `metrics: {level: 0.95}` in the config (or pass --level 0.95)",
            )
        _check_integer("seed", self.seed, 0, "set `metrics: {seed: 0}` in the config (or pass --seed 0)")

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> MetricsConfig:
        """The settings of a ``metrics:`` block (``None``: the defaults); see :func:`settings_from_dict`."""
        return settings_from_dict(cls, mapping, "metrics")
