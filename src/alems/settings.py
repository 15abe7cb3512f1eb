"""The study's one settings tree.

:class:`StudySettings` is built once from the schema-validated config
(:func:`alems.config.validate_config`) and holds every layer's typed section (``llm``,
``agents``, ``accounting``, ``metrics``, ``baseline``, ``energy``, the ``study`` itself), so
jobs pass typed sections down instead of the raw config dict. Each section class builds
itself with :func:`alems.sections.settings_from_dict`, its defaults read from the schema
(:func:`alems.sections.schema_default`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alems.accounting import AccountingConfig
from alems.agents.config import AgentConfig
from alems.baseline import BaselineConfig
from alems.config import validate_config
from alems.contracts import BUILTIN_FAMILIES
from alems.energy.model import ModelParams
from alems.llm.config import LLMConfig, llm_settings
from alems.llm.oracle import OracleConfig
from alems.metrics import MetricsConfig
from alems.sections import schema_default, settings_from_dict


# --------------------------------------------------------------------------- the study's settings tree
@dataclass(frozen=True)
class StudySection:
    """The ``study`` section: the families, the modes, goals per family, reps and the generation seed."""

    families: tuple[str, ...] = schema_default("study", "families")
    modes: tuple[str, ...] = schema_default("study", "modes")
    tasks: int = schema_default("study", "tasks")
    reps: int = schema_default("study", "reps")
    seed: int = schema_default("study", "seed")
    arms: dict[str, Any] | None = None  # arm name -> overrides (alems.config.arm_configs); None: no arms
    reference_arm: str | None = None

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> StudySection:
        return settings_from_dict(cls, mapping, "study")


@dataclass(frozen=True)
class EnergySettings:
    """The ``energy`` section: which meter, where powercap lives, the sampler interval, and the
    CPU power model's parameters (``None``: the model meter's defaults)."""

    meter: str = schema_default("energy", "meter")
    powercap_root: str | None = schema_default("energy", "powercap_root")
    interval_ms: float = schema_default("energy", "interval_ms")
    calibrate: bool = schema_default("energy", "calibrate")
    model: ModelParams | None = None

    @property
    def interval_s(self) -> float:
        return float(self.interval_ms) / 1000.0

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> EnergySettings:
        data = dict(mapping or {})
        if data.get("model") is not None:
            data["model"] = ModelParams.from_dict(data["model"])
        return settings_from_dict(cls, data, "energy")


@dataclass(frozen=True)
class StudySettings:
    """Every section of a study's config, typed, built once by :meth:`from_config`.

    ``config`` is the validated config itself (defaults filled): what provenance hashes
    and what the task layer reads ``user_families`` from.
    """

    config: dict[str, Any]
    study: StudySection
    llm: LLMConfig
    oracle: OracleConfig
    agents: AgentConfig
    accounting: AccountingConfig
    metrics: MetricsConfig
    baseline: BaselineConfig
    energy: EnergySettings
    user_families: dict[str, Any]
    allow_mixed_runs: bool

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> StudySettings:
        """Validate ``raw`` against the workflow schema (filling defaults), then build every section.

        A schema violation or a section's own check is a :class:`~alems.errors.ConfigError`
        naming the key.
        """

        cfg = validate_config(raw, known_families=BUILTIN_FAMILIES)
        return cls(
            config=cfg,
            study=StudySection.from_dict(cfg["study"]),
            llm=LLMConfig.from_dict(llm_settings(cfg["llm"])),
            oracle=OracleConfig.from_dict(cfg["llm"]["oracle"]),
            agents=AgentConfig.from_dict(cfg["agents"]),
            accounting=AccountingConfig.from_dict(cfg["accounting"]),
            metrics=MetricsConfig.from_dict(cfg["metrics"]),
            baseline=BaselineConfig.from_dict(cfg["baseline"]),
            energy=EnergySettings.from_dict(cfg["energy"]),
            user_families=dict(cfg["user_families"]),
            allow_mixed_runs=bool(cfg["allow_mixed_runs"]),
        )
