"""The study configuration: load YAML, validate it against the workflow schema, fill defaults.

Owns the one place where a config becomes trusted. The schema
(``workflow/schemas/config.schema.yaml``) is the single source of keys, types and
defaults; this module turns every schema violation into a :class:`ConfigError` that
names the offending key and says how to fix it, so a typo fails the Snakemake dry run
with one readable line instead of a traceback deep in a job.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from alems.errors import ConfigError

SCHEMA_RELPATH = Path("workflow") / "schemas" / "config.schema.yaml"
"""Where the workflow reads the schema: a link to the copy the package ships (:func:`default_schema_path`)."""
DOCS = "config/README.md"


def default_schema_path() -> Path:
    """The schema the package ships (``alems/schemas/``), so a library import needs no checkout;
    ``workflow/schemas/config.schema.yaml`` links to it."""
    return Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


#: libyaml's safe loader where PyYAML was built with it (the schema is read at import by every
#: settings class, sampler children included: about 4 ms instead of 30 ms), else the Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader either way


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path is not None else default_schema_path()
    if not p.is_file():
        raise ConfigError(
            f"config schema not found at {p}",
            "reinstall A-LEMS (the package ships alems/schemas/config.schema.yaml), "
            "or pass the schema path explicitly",
        )
    return _load_yaml(p.read_text(encoding="utf-8"))


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge recursively, anything else is replaced."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _key(path: Sequence[Any]) -> str:
    parts: list[str] = []
    for p in path:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "<top level>"


def _subschema(schema: Mapping[str, Any], path: Sequence[Any]) -> Mapping[str, Any]:
    node: Mapping[str, Any] = schema
    for p in path:
        if isinstance(p, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(p, {})
    return node


def _describe_type(schema: Mapping[str, Any]) -> str:
    t = schema.get("type")
    if "enum" in schema:
        return "one of " + ", ".join(repr(e) for e in schema["enum"])
    if isinstance(t, list):
        return " or ".join(t)
    return str(t or "a valid value")


def _error_to_config_error(err: Any, schema: Mapping[str, Any]) -> ConfigError:
    path = list(err.absolute_path)
    where = _key(path)
    sub = _subschema(schema, path)
    if err.validator == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        unknown = sorted(set(err.instance) - set(allowed))
        name = unknown[0] if unknown else "?"
        full = _key([*path, name])
        hint = difflib.get_close_matches(name, allowed, n=1)
        did = f" (did you mean '{_key([*path, hint[0]])}'?)" if hint else ""
        return ConfigError(
            f"unknown config key '{full}'{did}",
            f"remove '{full}' or use one of: {', '.join(allowed)} (each is documented in {DOCS})",
        )
    if err.validator == "required":
        return ConfigError(
            f"config key '{where}' is missing a required entry: {err.message}",
            f"add it; see {DOCS}",
        )
    if err.validator in ("type", "enum"):
        want = _describe_type(sub)
        return ConfigError(
            f"config key '{where}' must be {want}, got {err.instance!r}",
            f"set '{where}' to {want} (see {DOCS})",
        )
    return ConfigError(
        f"config key '{where}' is invalid: {err.message}",
        f"correct '{where}' (see {DOCS})",
    )


def fill_defaults(data: Any, schema: Mapping[str, Any]) -> Any:
    """Return ``data`` with every missing key that has a schema default filled in, recursively."""
    if isinstance(data, dict) and (
        "properties" in schema or isinstance(schema.get("additionalProperties"), Mapping)
    ):
        out = dict(data)
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = fill_defaults(out[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key in out:
                if key not in props:
                    out[key] = fill_defaults(out[key], extra)
        return out
    if isinstance(data, list) and isinstance(schema.get("items"), Mapping):
        return [fill_defaults(x, schema["items"]) for x in data]
    return data


def validate_config(
    raw: Mapping[str, Any] | None,
    schema: Mapping[str, Any] | str | Path | None = None,
    *,
    known_families: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Validate ``raw`` and return a new dict with every default filled in.

    Raises :class:`ConfigError` naming the first offending key (schema order is
    deterministic: the error with the shortest path wins, unknown keys first).
    ``known_families``, when given, are the built-in family names; a family in
    ``study.families`` that is neither built in nor in ``user_families`` fails.
    """
    import jsonschema

    if schema is None or isinstance(schema, (str, Path)):
        schema = load_schema(schema)
    data = dict(raw or {})
    validator = jsonschema.Draft7Validator(schema)
    errors = list(validator.iter_errors(data))
    if errors:
        errors.sort(
            key=lambda e: (len(e.absolute_path), e.validator != "additionalProperties", _key(e.absolute_path))
        )
        raise _error_to_config_error(errors[0], schema)
    cfg = fill_defaults(data, schema)
    # A second pass: defaults must themselves validate (guards the schema file).
    errors = list(validator.iter_errors(cfg))
    if errors:  # pragma: no cover - a broken schema, not a user error
        raise _error_to_config_error(errors[0], schema)
    _check_consistency(cfg, known_families)
    if arm_names(cfg) or cfg["study"].get("reference_arm") is not None:
        arm_configs(cfg, schema, known_families=known_families)  # every arm's merged config must validate
    return cfg


def _check_consistency(cfg: Mapping[str, Any], known_families: Iterable[str] | None) -> None:
    llm = cfg["llm"]
    if llm["backend"] == "openai" and not llm.get("base_url"):
        raise ConfigError(
            "config key 'llm.base_url' is required when llm.backend is 'openai'",
            "set llm.base_url to your server's OpenAI-compatible root, e.g. http://127.0.0.1:8080/v1",
        )
    if llm["backend"] == "llamacpp" and not llm.get("model_path"):
        _check_known(
            "llm.model", llm["model"], _catalog_models(), "or set llm.model_path to a local .gguf file"
        )
    for name, spec in sorted(cfg["user_families"].items()):
        if "benchmark" in spec:
            _check_known(f"user_families.{name}.benchmark", spec["benchmark"], _catalog_benchmarks(), "")
    users = sorted(cfg["user_families"])
    if known_families is not None:
        known = set(known_families)
        clash = sorted(set(users) & known)
        if clash:
            raise ConfigError(
                f"config key 'user_families.{clash[0]}' reuses a built-in family name",
                "rename the user family",
            )
        available = sorted(known | set(users))
        for i, fam in enumerate(cfg["study"]["families"]):
            if fam not in available:
                hint = difflib.get_close_matches(fam, available, n=1)
                did = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ConfigError(
                    f"config key 'study.families[{i}]' names unknown family '{fam}'{did}",
                    f"use one of: {', '.join(available)}, or declare it under user_families",
                )
    tl = cfg["figures"]["timeline_family"]
    if tl is not None and tl not in cfg["study"]["families"]:
        raise ConfigError(
            f"config key 'figures.timeline_family' is '{tl}', which is not in study.families",
            "set it to one of study.families, or to null for the first family",
        )


def _catalog_models() -> list[str]:
    from alems.llm.catalog import load_catalog  # the catalogs load only when a config names one

    return load_catalog().names


def _catalog_benchmarks() -> list[str]:
    from alems.tasks.catalog import benchmark_names

    return benchmark_names()


def _check_known(key: str, value: str, valid: Sequence[str], extra: str) -> None:
    """A ConfigError naming ``key``, the unknown ``value`` and every valid name."""
    if value in valid:
        return
    hint = difflib.get_close_matches(value, list(valid), n=1)
    did = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise ConfigError(
        f"config key '{key}' names unknown '{value}'{did}",
        f"use one of: {', '.join(valid)}" + (f", {extra}" if extra else ""),
    )


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """One YAML (or JSON) config file as a mapping, not yet validated; ``{}`` when ``path`` is None."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found", "pass an existing YAML file")
    try:
        data = _load_yaml(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}", "fix the YAML syntax") from None
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"config file {p} must hold a mapping at the top level",
            f"write sections such as llm: and agents: (see {DOCS})",
        )
    return dict(data)


def load_config(
    paths: str | Path | Sequence[str | Path],
    *,
    overrides: Mapping[str, Any] | None = None,
    schema: Mapping[str, Any] | str | Path | None = None,
    known_families: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Load one or more YAML files (later ones overlay earlier ones, like Snakemake) and validate."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    merged: dict[str, Any] = {}
    for p in paths:
        merged = deep_merge(merged, read_config_file(p))
    if overrides:
        merged = deep_merge(merged, overrides)
    return validate_config(merged, schema, known_families=known_families)


def model_file(cfg: Mapping[str, Any]) -> str | None:
    """The GGUF file the embedded backend needs, or ``None`` when nothing is to be fetched."""
    llm = cfg["llm"]
    if llm["backend"] != "llamacpp":
        return None
    if llm.get("model_path"):
        return str(llm["model_path"])
    return f"{str(llm.get('models_dir', 'resources/models')).rstrip('/')}/{llm['model']}.gguf"


def needs_fetch(cfg: Mapping[str, Any]) -> bool:
    llm = cfg["llm"]
    return llm["backend"] == "llamacpp" and not llm.get("model_path")


# --------------------------------------------------------------------------- arms
ARM_KEYS: tuple[str, ...] = ("arms", "reference_arm")
"""The keys of ``study`` that declare arms; an arm's own config has neither."""

ARM_SECTIONS: tuple[str, ...] = ("llm", "agents", "figures")
"""The sections an arm may override: the treatment (model, agent design) and the drawing."""

GOAL_SECTIONS: tuple[str, ...] = ("study", "user_families")
"""Sections that decide which goals run: shared by every arm, so the arms are paired goal by goal."""


def arm_names(cfg: Mapping[str, Any]) -> list[str]:
    """The arms of a study, in the config's order; ``[]`` for a study without arms."""
    return list((cfg.get("study") or {}).get("arms") or {})


def reference_arm(cfg: Mapping[str, Any]) -> str | None:
    """The arm the others are compared with: ``study.reference_arm``, else the first arm; ``None`` without arms."""
    names = arm_names(cfg)
    if not names:
        return None
    return str((cfg.get("study") or {}).get("reference_arm") or names[0])


def without_arms(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` without ``study.arms`` and ``study.reference_arm`` (what every arm shares). A config
    without arms comes back equal to itself, so its hash is today's."""
    out = dict(cfg)
    if "study" in out and any(k in out["study"] for k in ARM_KEYS):
        out["study"] = {k: v for k, v in out["study"].items() if k not in ARM_KEYS}
    return out


def _first_leaf(over: Any, path: list[str]) -> str:
    if isinstance(over, Mapping) and over:
        k = next(iter(over))
        return _first_leaf(over[k], [*path, str(k)])
    return ".".join(path)


def check_arm_overrides(arm: str, over: Mapping[str, Any]) -> None:
    """A :class:`ConfigError` naming the arm and the key when ``over`` touches anything but
    :data:`ARM_SECTIONS`: the goals (:data:`GOAL_SECTIONS`) and the measurement (energy,
    baseline, accounting, metrics) are shared by every arm."""
    for section in over:
        if section in ARM_SECTIONS:
            continue
        key = _first_leaf(over[section], [str(section)])
        if section in GOAL_SECTIONS:
            why = "it changes which goals run, and every arm must run the same goals (they are compared goal by goal)"
        else:
            why = (
                "the measurement (energy, baseline, accounting, metrics, allow_mixed_runs) is shared by every arm, "
                "so that their numbers can be compared"
            )
        raise ConfigError(
            f"arm '{arm}' overrides '{key}': {why}",
            f"move '{key}' to the base config (for every arm), or run a separate study; an arm may override only "
            f"{', '.join(ARM_SECTIONS)} (see {DOCS}, 'Arms')",
        )


def arm_configs(
    cfg: Mapping[str, Any],
    schema: Mapping[str, Any] | str | Path | None = None,
    *,
    known_families: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each arm's config: its overrides deep-merged onto the base config (without the arms), validated.

    Raises :class:`ConfigError` naming the arm for a refused key (:func:`check_arm_overrides`),
    an invalid merged config, or a ``study.reference_arm`` that names no arm.
    """
    study = cfg.get("study") or {}
    arms = study.get("arms") or {}
    ref = study.get("reference_arm")
    if ref is not None and ref not in arms:
        hint = difflib.get_close_matches(str(ref), list(arms), n=1)
        did = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ConfigError(
            f"config key 'study.reference_arm' names '{ref}', which is not an arm{did}",
            f"set it to one of study.arms ({', '.join(arms) or 'none declared'}), or remove it for the first arm",
        )
    base = without_arms(cfg)
    out: dict[str, dict[str, Any]] = {}
    for name, over in arms.items():
        check_arm_overrides(name, over)
        try:
            out[name] = validate_config(deep_merge(base, over), schema, known_families=known_families)
        except ConfigError as exc:
            raise ConfigError(f"arm '{name}': {exc.message}", exc.fix) from None
    return out
