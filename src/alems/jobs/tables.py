"""The Snakemake ``tables`` rule: every run's goals, EpG and OOI, refusing to mix runs whose
provenance differs (:func:`aggregate`, :func:`write_tables`, :func:`tables_job`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alems.accounting import empty_calls
from alems.errors import ProvenanceError
from alems.metrics import (
    MetricsConfig,
    compute_layer_decomposition,
    compute_tables,
    flag_families,
    roles_table,
    write_table,
)
from alems.provenance import check_compatible, load_hashes

log = logging.getLogger("alems.jobs")

#: Run-level baseline flags, in the order they are applied to the tables.
BASELINE_FLAGS: tuple[str, ...] = (
    "baseline_unstable",
    "baseline_unknown",
    "baseline_host_unknown",
    "baseline_foreign_host",
)


@dataclass
class Tables:
    goals: pd.DataFrame
    epg: pd.DataFrame
    ooi: pd.DataFrame
    label: str
    run_id: str
    epg_layers: pd.DataFrame | None = None  # EpG for every energy layer, stacked (energy_layer column)
    ooi_layers: pd.DataFrame | None = None
    decomposition: pd.DataFrame | None = None  # the OOI's factors, every layer (ooi_decomposition.csv)


@dataclass
class _RunRecords:
    """What the runs' ``run.json`` files say: their hashes, and which families carry which baseline flag."""

    hashes: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    flags: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in BASELINE_FLAGS})
    foreign: list[str] = field(default_factory=list)


def _run_label(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    return f"{p.parent.parent.name}/{p.parent.name}"


def _read_run_records(meta_paths: Iterable[str | os.PathLike[str]]) -> _RunRecords:
    out = _RunRecords()
    for mp in meta_paths:
        meta = json.loads(Path(mp).read_text())
        out.hashes[_run_label(mp)] = meta.get("hashes") or {}
        family = str(meta.get("family"))
        status = (meta.get("baseline") or {}).get("status")
        if status != "stable":
            out.flags["baseline_unknown" if status is None else "baseline_unstable"].add(family)
        host, base_host = meta.get("host"), (meta.get("baseline") or {}).get("host")
        if not host or not base_host:
            out.flags["baseline_host_unknown"].add(family)
        elif host != base_host:
            out.flags["baseline_foreign_host"].add(family)
            out.foreign.append(f"{_run_label(mp)} ran on {host} with the idle baseline of {base_host}")
    return out


def aggregate(
    goal_paths: Iterable[str | os.PathLike[str]],
    meta_paths: Iterable[str | os.PathLike[str]],
    *,
    metrics: MetricsConfig,
    groups: Mapping[str, str],
    allow_mixed: bool = False,
    current_hashes: Mapping[str, Any] | None = None,
) -> Tables:
    """Concatenate the runs' goals and compute EpG and OOI.

    Every run's hashes (from its ``run.json``) must agree, and agree with
    ``current_hashes`` when given, unless ``allow_mixed``; a mixed aggregate is labelled
    ``mixed`` and its ``run_id`` says so. Rows that include a run measured against an
    unstable idle baseline are flagged ``baseline_unstable`` (``baseline_unknown`` where
    the run's ``run.json`` records no baseline status).

    Each run's baseline must come from the host the run measured (``run.json``: ``host``
    and ``baseline.host``): a run whose baseline is another host's is a
    :class:`~alems.errors.ProvenanceError` (with ``allow_mixed``, its rows are flagged
    ``baseline_foreign_host``); one that records no host is flagged ``baseline_host_unknown``.
    """
    runs = _read_run_records(meta_paths)
    if runs.foreign and not allow_mixed:
        raise ProvenanceError(
            "idle baseline from another host: " + "; ".join(runs.foreign),
            fix="rerun those run_family jobs (each measures or reuses its own host's baseline), "
            "or set allow_mixed_runs: true to keep them, flagged baseline_foreign_host",
        )
    if current_hashes is not None:
        runs.hashes["current provenance (results/provenance/hashes.json)"] = current_hashes
    compat = check_compatible(runs.hashes, allow_mixed=allow_mixed)
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in goal_paths]
    goals = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if compat.mixed:
        goals["run_id"] = compat.run_id
    grp = dict(groups)
    epg, ooi = compute_tables(goals, metrics, grp)
    epg_l, ooi_l, dec = compute_layer_decomposition(goals, metrics, grp)
    for flag, fams in runs.flags.items():
        if fams:
            log.warning("runs of %s: %s; their rows are flagged", ", ".join(sorted(fams)), flag)
            epg, ooi = flag_families(epg, ooi, fams, flag, grp)
            epg_l, ooi_l = flag_families(epg_l, ooi_l, fams, flag, grp)
            _, dec = flag_families(epg_l, dec, fams, flag, grp)
    return Tables(goals, epg, ooi, compat.label, str(compat.run_id or ""), epg_l, ooi_l, dec)


def write_tables(
    tables: Tables,
    goals_path: str | os.PathLike[str],
    epg_path: str | os.PathLike[str],
    ooi_path: str | os.PathLike[str],
    epg_layers_path: str | os.PathLike[str] | None = None,
    ooi_layers_path: str | os.PathLike[str] | None = None,
) -> None:
    """Write the tables; the per-layer ones (``epg_layers.csv``, ``ooi_layers.csv``) where paths are given."""
    for df, path in (
        (tables.goals, goals_path),
        (tables.epg, epg_path),
        (tables.ooi, ooi_path),
        (tables.epg_layers, epg_layers_path),
        (tables.ooi_layers, ooi_layers_path),
    ):
        if path is not None and df is not None:
            write_table(df, path)


def tables_job(
    goal_paths: Iterable[str | os.PathLike[str]],
    meta_paths: Iterable[str | os.PathLike[str]],
    outputs: Mapping[str, str],
    *,
    hashes_path: str | os.PathLike[str],
    metrics: Mapping[str, Any],
    groups: Mapping[str, str],
    allow_mixed: bool,
    call_paths: Iterable[str | os.PathLike[str]] = (),
) -> Tables:
    """The Snakemake ``tables`` job: :func:`aggregate` against the current provenance, then
    :func:`write_tables` to ``outputs`` (``goals``, ``epg``, ``ooi``, ``epg_layers``,
    ``ooi_layers``; ``calls``: the runs' ``call_paths`` concatenated)."""
    tables = aggregate(
        goal_paths,
        meta_paths,
        metrics=MetricsConfig.from_dict(metrics),
        groups=groups,
        allow_mixed=allow_mixed,
        current_hashes=load_hashes(hashes_path).to_dict(),
    )
    write_tables(
        tables,
        outputs["goals"],
        outputs["epg"],
        outputs["ooi"],
        outputs["epg_layers"],
        outputs["ooi_layers"],
    )
    if outputs.get("calls") or outputs.get("roles"):
        calls = read_calls(call_paths)
        if outputs.get("calls"):
            write_table(calls, outputs["calls"])
        if outputs.get("roles"):
            write_table(roles_table(tables.goals, calls), outputs["roles"])
    if outputs.get("ooi_decomposition") and tables.decomposition is not None:
        write_table(tables.decomposition, outputs["ooi_decomposition"])
    return tables


def read_calls(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The runs' ``calls.csv`` files, concatenated in the order given (the contract's columns
    when there are none)."""
    frames = [
        pd.read_csv(p, keep_default_na=False, na_values=[""], dtype={"goal_id": str, "family": str})
        for p in paths
    ]
    frames = [f for f in frames if len(f.columns)]
    return pd.concat(frames, ignore_index=True) if frames else empty_calls()
