"""The canonical config, the provenance hashes and the refusal to mix runs.

``hw_hash``, ``env_hash`` and ``config_hash`` are the sha256 of the canonical JSON of
``hardware.json``, ``environment.json`` and ``config.json``, first 16 hex characters;
``run_id`` is the same over the three hashes together. :func:`check_compatible` refuses
to aggregate runs whose hashes differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alems.config import deep_merge
from alems.errors import ConfigError, ProvenanceError
from alems.io import canonical_json

HASH_LEN = 16
HASH_FIELDS: tuple[str, str, str] = ("hw_hash", "env_hash", "config_hash")


# =========================================================================== config
def _canon(obj: Any, where: str) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canon(obj[k], f"{where}.{k}" if where else str(k)) for k in sorted(obj, key=str)}
    if isinstance(obj, (list, tuple)):
        return [_canon(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return sorted((_canon(v, where) for v in obj), key=canonical_json)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        return _canon(item(), where)
    raise ConfigError(
        f"config value at {where or '<root>'} has type {type(obj).__name__}, which has no canonical JSON form",
        fix="use strings, numbers, booleans, lists and mappings only in the config",
    )


def canonical_config(cfg: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved config in canonical form: ``defaults`` deep-merged under ``cfg``, keys sorted
    at every level, tuples as lists, sets sorted, paths as strings, numpy scalars as Python ones."""
    merged = deep_merge(defaults, cfg) if defaults else dict(cfg)
    return _canon(merged, "")


# =========================================================================== hashes
def sha256_json(obj: Any) -> str:
    """Full sha256 hex of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def short_hash(obj: Any) -> str:
    """The shown form: first 16 hex characters of :func:`sha256_json`."""
    return sha256_json(obj)[:HASH_LEN]


def compute_run_id(hw_hash: str, env_hash: str, config_hash: str | None) -> str | None:
    if config_hash is None:
        return None
    return short_hash({"hw_hash": hw_hash, "env_hash": env_hash, "config_hash": config_hash})


@dataclass(frozen=True)
class Hashes:
    """The three provenance hashes and the ``run_id`` over them (16 hex characters each).

    ``config_hash`` and ``run_id`` are ``None`` when no config was given.
    """

    hw_hash: str
    env_hash: str
    config_hash: str | None
    run_id: str | None

    @classmethod
    def compute(
        cls, hardware: Mapping[str, Any], environment: Mapping[str, Any], config: Mapping[str, Any] | None
    ) -> Hashes:
        hw, env = short_hash(hardware), short_hash(environment)
        cfg = short_hash(config) if config is not None else None
        return cls(hw, env, cfg, compute_run_id(hw, env, cfg))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Hashes:
        try:
            return cls(
                hw_hash=data["hw_hash"],
                env_hash=data["env_hash"],
                config_hash=data.get("config_hash"),
                run_id=data.get("run_id"),
            )
        except (KeyError, TypeError) as exc:
            raise ProvenanceError(
                f"provenance hashes are incomplete (missing {exc})",
                fix="regenerate them with `alems fingerprint` or rerun the provenance rule",
            ) from exc

    def to_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


def load_hashes(path: str | os.PathLike[str]) -> Hashes:
    """Read ``hashes.json`` (or any JSON with the hash fields, such as a manifest's ``hashes``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise ProvenanceError(
            f"cannot read provenance hashes {p}: {exc.strerror}",
            fix="run `snakemake --cores 1 provenance` or `alems fingerprint`",
        ) from exc
    except ValueError as exc:
        raise ProvenanceError(
            f"provenance hashes {p} are not valid JSON", fix=f"delete {p} and rerun the workflow"
        ) from exc
    if isinstance(data, dict) and "hashes" in data and isinstance(data["hashes"], dict):
        data = data["hashes"]
    if not isinstance(data, dict):
        raise ProvenanceError(
            f"provenance hashes {p} hold no mapping", fix=f"delete {p} and rerun the workflow"
        )
    return Hashes.from_mapping(data)


# =========================================================================== mixing runs
@dataclass(frozen=True)
class Compatibility:
    """The outcome of :func:`check_compatible`.

    ``label`` is ``"consistent"`` or ``"mixed"``. ``hashes`` holds each field's common
    value (``"mixed"`` where runs differ). ``differing`` maps a field to
    ``{value: [runs]}`` for each field that differs. ``run_id`` is the common run id, or
    ``"mixed-<hash>"`` over all runs' ids for a mixed aggregate.
    """

    label: str
    runs: list[str]
    hashes: dict[str, str | None]
    differing: dict[str, dict[str, list[str]]]
    run_id: str | None

    @property
    def mixed(self) -> bool:
        return self.label == "mixed"


def _as_hash_mapping(record: Hashes | Mapping[str, Any]) -> dict[str, Any]:
    return record.to_dict() if isinstance(record, Hashes) else dict(record)


def _compare_fields(
    records: Mapping[str, Mapping[str, Any]], runs: list[str]
) -> tuple[dict[str, str | None], dict[str, dict[str, list[str]]]]:
    """``(common, differing)``: each hash field's common value (``"mixed"`` where runs differ)
    and, for each field that differs, ``{value: [runs]}`` (a missing value is ``"<missing>"``)."""
    differing: dict[str, dict[str, list[str]]] = {}
    common: dict[str, str | None] = {}
    for fld in HASH_FIELDS:
        groups: dict[str, list[str]] = {}
        for run in runs:
            value = records[run].get(fld)
            groups.setdefault("<missing>" if value is None else str(value), []).append(run)
        if len(groups) > 1:
            differing[fld] = groups
            common[fld] = "mixed"
        else:
            only = next(iter(groups), None)
            common[fld] = None if only in (None, "<missing>") else only
    return common, differing


def _mixing_refused(differing: Mapping[str, Mapping[str, list[str]]]) -> ProvenanceError:
    """The error naming each differing field with its values and the runs that hold them."""
    lines = []
    for fld, groups in differing.items():
        parts = [f"{value} in {', '.join(members)}" for value, members in sorted(groups.items())]
        lines.append(f"  {fld} differs: " + "; ".join(parts))
    return ProvenanceError(
        f"refusing to mix runs with different provenance ({', '.join(differing)}):\n" + "\n".join(lines),
        fix="rerun the differing runs on one machine, environment and config "
        "(snakemake --cores 1 --forcerun <rule> all), or set `allow_mixed_runs: true` in the config "
        "to aggregate them anyway; the results are then labelled mixed",
    )


def check_compatible(
    hash_records: Mapping[str, Hashes | Mapping[str, Any]], allow_mixed: bool = False
) -> Compatibility:
    """Refuse to aggregate runs whose ``hw_hash``, ``env_hash`` or ``config_hash`` differ.

    ``hash_records`` maps a run label (e.g. ``"arith/rep0"``) to its hashes. A difference
    raises :class:`ProvenanceError` naming the runs and the fields, unless ``allow_mixed``,
    in which case the result is labelled ``mixed``.
    """
    records = {str(run): _as_hash_mapping(rec) for run, rec in hash_records.items()}
    runs = sorted(records)
    common, differing = _compare_fields(records, runs)
    if differing and not allow_mixed:
        raise _mixing_refused(differing)
    if differing:
        ids = sorted({str(records[r].get("run_id")) for r in runs})
        return Compatibility("mixed", runs, common, differing, "mixed-" + short_hash(ids))
    run_ids = {records[r].get("run_id") for r in runs}
    run_id = (
        run_ids.pop()
        if len(run_ids) == 1
        else compute_run_id(str(common["hw_hash"]), str(common["env_hash"]), common["config_hash"])
    )
    return Compatibility("consistent", runs, common, {}, run_id)
