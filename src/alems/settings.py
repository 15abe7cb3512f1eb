"""Building a layer's settings dataclass from its section of the workflow config.

``settings_from_dict(cls, mapping, section)`` owns the checks every strict settings
class shares: unknown keys are a :class:`~alems.errors.ConfigError` naming them and
listing the valid ones, and each value is checked (and, where safe, converted) against
its field's annotation. Range and choice checks stay in each class's ``__post_init__``.

``schema_default(section, key)`` reads a default from the workflow schema, the single
source of config defaults: a settings dataclass declares ``field: float =
schema_default("accounting", "min_coverage")`` instead of repeating the number.

:class:`StudySettings` is the one settings tree of a study: built once from the
schema-validated config (:func:`alems.config.validate_config`), it holds every layer's
typed section (``llm``, ``agents``, ``accounting``, ``metrics``, ``baseline``, ``energy``,
the ``study`` itself), so jobs and the CLI pass typed sections down instead of the raw
config dict.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from alems.config import load_schema, validate_config
from alems.contracts import BUILTIN_FAMILIES
from alems.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    # StudySettings' sections: their modules import this one (see StudySettings.from_config)
    from alems.accounting import AccountingConfig
    from alems.agents.config import AgentConfig
    from alems.baseline import BaselineConfig
    from alems.energy.model import ModelParams
    from alems.llm.config import LLMConfig
    from alems.llm.oracle import OracleConfig
    from alems.metrics import MetricsConfig

T = TypeVar("T", bound="DataclassInstance")


@functools.cache
def _schema() -> dict[str, Any]:
    return load_schema()


def schema_default(*path: str) -> Any:
    """The schema's default for the config key ``path`` (``schema_default("accounting", "min_coverage")``).

    A key without a default in the schema is a programming error (KeyError naming it)."""
    node: Mapping[str, Any] = _schema()
    for key in path:
        node = node["properties"][key]
    if "default" not in node:
        raise KeyError(f"config key {'.'.join(path)} has no default in the schema")
    value = copy.deepcopy(node["default"])
    return tuple(value) if isinstance(value, list) else value


def settings_from_dict(cls: type[T], mapping: Mapping[str, Any] | None, section: str) -> T:
    """``cls(**checked)`` for the config section ``section`` given as ``mapping`` (``None``: defaults).

    Per annotation: ``bool`` takes only bools; ``int`` ints but not bools; ``float`` ints
    and floats but not bools (stored as float); ``str`` only strings; ``tuple[...]`` a
    list or tuple (not a string), stored as a tuple of strings; ``dict[...]`` a mapping,
    stored as a dict; ``X | None`` also ``None``. Other annotations pass values through.
    """
    data = dict(mapping or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown {section} config key(s): {', '.join(unknown)}",
            fix=f"valid keys are: {', '.join(fields)}",
        )
    kwargs = {key: coerce(section, key, value, fields[key].type) for key, value in data.items()}
    return cls(**kwargs)


def annotation_text(annotation: Any) -> str:
    """The annotation as written in the source (``"int | None"``, ``"tuple[str, ...]"``)."""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def coerce(section: str, key: str, value: Any, annotation: Any) -> Any:
    """``value`` checked against ``annotation``; a mismatch is a ConfigError naming ``section.key``."""
    t = annotation_text(annotation)
    bad = ConfigError(
        f"{section}.{key} has the wrong type: {value!r} (expected {t})",
        fix=f"set {section}.{key} to a {t}",
    )
    if value is None:
        if "None" in t:
            return None
        raise bad
    if t.startswith("dict"):
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if t.startswith("tuple"):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise bad
        return tuple(str(v) for v in value)
    if t.startswith("bool"):
        if not isinstance(value, bool):
            raise bad
        return value
    if t.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if t.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if t.startswith("str"):
        if not isinstance(value, str):
            raise bad
        return value
    return value


# --------------------------------------------------------------------------- the study's settings tree
def llm_settings(llm: Mapping[str, Any]) -> dict[str, Any]:
    """The ``llm`` config section without the keys only the study reads (the oracle policy)."""
    return {k: v for k, v in llm.items() if k != "oracle"}


@dataclass(frozen=True)
class StudySection:
    """The ``study`` section: the families, the modes, goals per family, reps and the generation seed."""

    families: tuple[str, ...] = schema_default("study", "families")
    modes: tuple[str, ...] = schema_default("study", "modes")
    tasks: int = schema_default("study", "tasks")
    reps: int = schema_default("study", "reps")
    seed: int = schema_default("study", "seed")

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
        from alems.energy.model import (
            ModelParams,
        )  # like every layer's settings class, it imports this module

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
        naming the key. The section classes are imported here, not at the top: each of their
        modules imports :func:`settings_from_dict` from this one.
        """
        from alems.accounting import AccountingConfig
        from alems.agents.config import AgentConfig
        from alems.baseline import BaselineConfig
        from alems.llm.config import LLMConfig
        from alems.llm.oracle import OracleConfig
        from alems.metrics import MetricsConfig

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
