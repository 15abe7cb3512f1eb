"""A layer's settings dataclass, built from its section of the workflow config.

``settings_from_dict(cls, mapping, section)`` owns the checks every strict settings
class shares: unknown keys are a :class:`~alems.errors.ConfigError` naming them and
listing the valid ones, and each value is checked (and, where safe, converted) against
its field's annotation. Range and choice checks stay in each class's ``__post_init__``.

``schema_default(section, key)`` reads a default from the config schema the package ships,
the single source of config defaults: a settings dataclass declares ``field: float =
schema_default("accounting", "min_coverage")`` instead of repeating the number.

Every layer's settings class imports this module; :mod:`alems.settings` (the study's whole
settings tree) imports those classes, so this module imports none of them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from alems.config import load_schema
from alems.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

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
