"""The Snakemake ``compare_tables`` and ``compare_figures`` rules, and ``alems compare``: the arms
of one study (``results/arms/{arm}/``) or separately made study result directories, compared
(:mod:`alems.metrics.compare`) into ``epg.csv``, ``ooi.csv`` and ``ratios.csv``, then drawn."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alems.contracts import COMPARE_TABLE_FILES
from alems.errors import ConfigError
from alems.metrics import MetricsConfig, read_goals, write_table
from alems.metrics.compare import ArmTables, CompareTables, compare_tables

log = logging.getLogger("alems.jobs")

PathLike = str | os.PathLike[str]


def load_arm(
    name: str, *, goals: PathLike, epg: PathLike, ooi: PathLike, hashes: PathLike | None = None
) -> ArmTables:
    """One arm's tables and hashes (``hashes`` may be absent: then no host check is possible)."""
    h: dict[str, Any] = {}
    if hashes is not None and Path(hashes).is_file():
        h = json.loads(Path(hashes).read_text())
    return ArmTables(name, read_goals(goals), pd.read_csv(epg), pd.read_csv(ooi), h)


def load_study_dir(name: str, root: PathLike) -> ArmTables:
    """An arm from a study's results directory (``tables/{goals,epg,ooi}.csv``, ``provenance/hashes.json``)."""
    d = Path(root)
    missing = [p for p in ("tables/goals.csv", "tables/epg.csv", "tables/ooi.csv") if not (d / p).is_file()]
    if missing:
        raise ConfigError(
            f"{d} is not a study's results directory: {', '.join(missing)} missing",
            "pass directories made by `snakemake all` (results/ or results/arms/NAME/)",
        )
    t = d / "tables"
    return load_arm(
        name,
        goals=t / "goals.csv",
        epg=t / "epg.csv",
        ooi=t / "ooi.csv",
        hashes=d / "provenance" / "hashes.json",
    )


def study_metrics(root: PathLike) -> dict[str, Any]:
    """The ``metrics`` section a study was made with (its ``provenance/config.json``), ``{}`` if unknown."""
    p = Path(root) / "provenance" / "config.json"
    if not p.is_file():
        return {}
    cfg = json.loads(p.read_text())
    return dict(cfg.get("metrics") or {}) if isinstance(cfg, dict) else {}


def write_compare(tables: CompareTables, outputs: Mapping[str, PathLike]) -> None:
    """Write ``epg``, ``ooi``, ``ratios`` to their paths (atomically)."""
    write_table(tables.epg, outputs["epg"])
    write_table(tables.ooi, outputs["ooi"])
    write_table(tables.ratios, outputs["ratios"])


def compare_job(
    arms: Sequence[str],
    *,
    goals: Sequence[PathLike],
    epg: Sequence[PathLike],
    ooi: Sequence[PathLike],
    hashes: Sequence[PathLike],
    outputs: Mapping[str, PathLike],
    reference: str,
    metrics: Mapping[str, Any],
    groups: Mapping[str, str],
    allow_mixed_hosts: bool,
) -> CompareTables:
    """The Snakemake ``compare_tables`` job: the inputs are lists in the order of ``arms``."""
    loaded = [
        load_arm(a, goals=g, epg=e, ooi=o, hashes=h)
        for a, g, e, o, h in zip(arms, goals, epg, ooi, hashes, strict=True)
    ]
    tables = compare_tables(
        loaded, reference, MetricsConfig.from_dict(metrics), groups, allow_mixed_hosts=allow_mixed_hosts
    )
    write_compare(tables, outputs)
    return tables


def compare_figures_job(
    *, epg: PathLike, ooi: PathLike, ratios: PathLike, reference: str, pooled_estimand: str, out_dir: PathLike
) -> list[Path]:
    """The Snakemake ``compare_figures`` job (matplotlib loads inside :mod:`alems.figures.compare`)."""
    from alems.figures.compare import draw_compare

    return draw_compare(
        pd.read_csv(epg),
        pd.read_csv(ooi),
        pd.read_csv(ratios),
        out_dir,
        reference=reference,
        pooled_estimand=pooled_estimand,
    )


def parse_named_dirs(items: Sequence[str]) -> list[tuple[str, Path]]:
    """``NAME=DIR`` or ``DIR`` (named after its folder) for each item; names must differ."""
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).resolve().name, item
        out.append((name, Path(path)))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"two studies get the same name ({', '.join(names)})",
            "name each one: alems compare base=DIR_A big=DIR_B --reference base",
        )
    return out


def compare_dirs(
    items: Sequence[str],
    out_dir: PathLike,
    *,
    reference: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    groups: Mapping[str, str] | None = None,
    allow_mixed_hosts: bool = False,
    figures: bool = True,
) -> tuple[CompareTables, list[Path]]:
    """``alems compare``: the cross-arm tables (and figures) of separately made study directories
    into ``out_dir`` (``epg.csv``, ``ooi.csv``, ``ratios.csv``, ``figures/``). The bootstrap
    settings are the first study's (``provenance/config.json``) under ``metrics``."""
    named = parse_named_dirs(items)
    if len(named) < 2:
        raise ConfigError("alems compare needs at least two study directories", "pass DIR_A DIR_B [...]")
    ref = reference or named[0][0]
    arms = [load_study_dir(n, d) for n, d in named]
    cfg = MetricsConfig.from_dict({**study_metrics(named[0][1]), **dict(metrics or {})})
    tables = compare_tables(arms, ref, cfg, groups, allow_mixed_hosts=allow_mixed_hosts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {Path(n).stem: out / n for n in COMPARE_TABLE_FILES}
    write_compare(tables, paths)
    written = list(paths.values())
    if figures:
        written += compare_figures_job(
            epg=paths["epg"],
            ooi=paths["ooi"],
            ratios=paths["ratios"],
            reference=ref,
            pooled_estimand=cfg.pooled_estimand,
            out_dir=out / "figures",
        )
    return tables, written
