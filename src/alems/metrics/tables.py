"""The tables: ``epg.csv`` (one row per cell and pooled cell) and ``ooi.csv`` (one row per
family, then the pooled estimands of each group and of ``overall``), computed from
executions with the bootstrap of :mod:`alems.metrics.bootstrap`, flagged, and written."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from alems.accounting import combine_sources
from alems.contracts import BUILTIN_FAMILIES, ENERGY_LAYERS, GROUPS, MODES, OVERALL
from alems.io import atomic_write_with
from alems.metrics.bootstrap import (
    BootstrapResult,
    Stratum,
    bootstrap_scope,
    bootstrap_strata,
    holm,
    interval_at,
    make_stratum,
    p_value,
    stratum_rng,
    sufficient_interval,
)
from alems.metrics.config import MetricsConfig
from alems.metrics.estimands import (
    FAMILY_ESTIMAND,
    POOLED_STATS,
    Statistic,
    epg_degenerate,
    epg_stat,
    estimand_order,
    pooled_degenerate,
    pooled_epgs,
    pooled_ratio_stat,
)
from alems.metrics.executions import (
    PAIR_WORK_COLUMNS,
    executions,
    goal_clusters,
    group_of,
    layer_flags,
    layer_of,
    ordered,
    paired_goals,
)

PAIR_COLUMNS = 4 + 2 * len(PAIR_WORK_COLUMNS)
"""Columns of a family's pair stratum (:func:`paired_goals`)."""

EPG_COLUMNS: tuple[str, ...] = (
    "family",
    "group",
    "mode",
    "executions",
    "successes",
    "success_rate",
    "energy_total_j",
    "epg_j",
    "epg_ci_low",
    "epg_ci_high",
    "epg_success_only_j",
    "energy_source",
)
EPG_EXTRA_COLUMNS: tuple[str, ...] = ("ci_method", "B", "level", "n_degenerate_resamples", "flags")
OOI_COLUMNS: tuple[str, ...] = ("scope", "ooi", "ci_low", "ci_high", "n_pairs", "method", "B", "level")
OOI_EXTRA_COLUMNS: tuple[str, ...] = (
    "n_missing_pairs",
    "n_degenerate_resamples",
    "epg_agentic_j",
    "epg_linear_j",
    "energy_source",
    "flags",
)
# Added by the goal-level cluster bootstrap (issue 13); optional for readers of older tables.
OOI_STAT_COLUMNS: tuple[str, ...] = (
    "estimand",
    "n_goals",
    "ci_low_adj",
    "ci_high_adj",
    "p_value",
    "p_value_holm",
)
EPG_STAT_COLUMNS: tuple[str, ...] = ("n_goals",)
EPG_TASK_COLUMNS: tuple[str, ...] = ("truncation_rate",)
EPG_WASTE_COLUMNS: tuple[str, ...] = ("wasted_j", "waste_share")
"""Written last in epg.csv (optional for readers): the energy of every attempt that is not the
final attempt of a successful execution, gaps included, and its share of the cell's energy."""
LAYER_EXTRA_COLUMNS: tuple[str, ...] = ("energy_layer",)
"""Written after the other extra columns of epg.csv and ooi.csv: the layer the row was computed from."""


def _flags(*items: str | None) -> str:
    return ";".join(sorted(i for i in items if i))


def _count_flag(name: str, n: int) -> str | None:
    return f"{name}:{n}" if n else None


# --------------------------------------------------------------------------- epg.csv
def epg_table(
    goals: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The epg.csv table (contract columns, then :data:`EPG_EXTRA_COLUMNS`)."""
    return epg_from_executions(executions(goals, cfg.energy_layer), cfg, groups)


def epg_from_executions(
    ex: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None
) -> pd.DataFrame:
    """The epg.csv table from an :func:`executions` frame (what :func:`epg_table` returns)."""
    families = ordered(ex["family"], BUILTIN_FAMILIES)
    modes = ordered(ex["mode"], MODES)
    fam_group = {f: group_of(f, groups) for f in families}
    cells, strata = _epg_cells(ex, families, modes, cfg)
    rows = []
    for family, group, mode, members in _epg_scopes(families, modes, fam_group):
        keys = [(f, mode) for f in members if (f, mode) in cells]
        if keys:
            row = _epg_row([cells[k] for k in keys], [strata[k] for k in keys], cfg)
            rows.append({"family": family, "group": group, "mode": mode, **row})
    columns = [
        *EPG_COLUMNS,
        *EPG_EXTRA_COLUMNS,
        *EPG_STAT_COLUMNS,
        *LAYER_EXTRA_COLUMNS,
        *EPG_TASK_COLUMNS,
        *EPG_WASTE_COLUMNS,
    ]
    return pd.DataFrame(rows, columns=columns)


def _epg_cells(
    ex: pd.DataFrame, families: Sequence[str], modes: Sequence[str], cfg: MetricsConfig
) -> tuple[dict[tuple[str, str], pd.DataFrame], dict[tuple[str, str], Stratum]]:
    """The executions of each (family, mode) cell that has any, and its stratum of goals."""
    cells: dict[tuple[str, str], pd.DataFrame] = {}
    strata: dict[tuple[str, str], Stratum] = {}
    for f in families:
        for m in modes:
            cell = ex[(ex["family"] == f) & (ex["mode"] == m)]
            if len(cell) == 0:
                continue
            cells[(f, m)] = cell
            vals = np.column_stack([cell["energy_j"].to_numpy(float), cell["success"].to_numpy(float)])
            vals = goal_clusters(cell["goal_id"], vals)  # the resampling unit is the goal, all its reps
            strata[(f, m)] = make_stratum(
                f, vals, int(cfg.bootstrap), stratum_rng(cfg.seed, f"epg\0{f}\0{m}")
            )
    return cells, strata


def _epg_scopes(
    families: Sequence[str], modes: Sequence[str], fam_group: Mapping[str, str]
) -> Iterator[tuple[str, str, str, list[str]]]:
    """``(family, group, mode, member families)`` of each epg.csv row, in table order:
    the cells, then each group's, then the overall ones."""
    for f in families:
        for m in modes:
            yield f, fam_group[f], m, [f]
    for gname in ordered(fam_group.values(), GROUPS):
        for m in modes:
            yield gname, gname, m, [f for f in families if fam_group[f] == gname]
    for m in modes:
        yield OVERALL, OVERALL, m, list(families)


def _epg_row(cells: Sequence[pd.DataFrame], strata: Sequence[Stratum], cfg: MetricsConfig) -> dict[str, Any]:
    """The numbers and flags of one epg.csv row over the executions ``cells`` (their goals: ``strata``)."""
    cell = pd.concat(cells, ignore_index=True)
    n = len(cell)
    succ = cell["success"].to_numpy(bool)
    e = cell["energy_j"].to_numpy(float)
    s = int(succ.sum())
    res = bootstrap_scope(strata, epg_stat, epg_degenerate, float(cfg.level))
    n_goals = [len(st.values) for st in strata]
    res, short = sufficient_interval(res, n_goals, int(cfg.min_goals), float(cfg.level))
    return {
        "executions": n,
        "successes": s,
        "success_rate": s / n,
        "energy_total_j": float(e.sum()),
        "epg_j": res.estimate,
        "epg_ci_low": res.ci_low,
        "epg_ci_high": res.ci_high,
        "epg_success_only_j": float(e[succ].sum()) / s if s else math.inf,
        "energy_source": combine_sources(cell["energy_source"]),
        "ci_method": res.method,
        "B": int(cfg.bootstrap),
        "level": float(cfg.level),
        "n_degenerate_resamples": res.n_degenerate,
        "n_goals": sum(n_goals),
        "truncation_rate": float(cell["truncated"].mean()) if cell["truncated"].notna().all() else math.nan,
        "wasted_j": float(cell["wasted_j"].to_numpy(float).sum()) if "wasted_j" in cell.columns else math.nan,
        "waste_share": _share(cell),
        "flags": _flags(
            "zero_successes" if s == 0 else None,
            "insufficient_data" if short else None,
            "missing_energy" if bool(np.isnan(e).any()) else None,
            _count_flag("low_coverage", int(cell["low_coverage"].sum())),
            _count_flag("negative_energy", int((e < 0).sum())),
            *layer_flags(cell),
        ),
        "energy_layer": layer_of(cell),
    }


def _share(cell: pd.DataFrame) -> float:
    """Wasted energy / the cell's energy (NaN without energy, or with none to divide by)."""
    if "wasted_j" not in cell.columns:
        return math.nan
    total = float(cell["energy_j"].to_numpy(float).sum())
    wasted = float(cell["wasted_j"].to_numpy(float).sum())
    return wasted / total if total != 0 and math.isfinite(total) else math.nan


# --------------------------------------------------------------------------- ooi.csv
@dataclass(frozen=True)
class FamilyPairs:
    """One family's complete pairs as a stratum of goals, and what ooi.csv says about them."""

    stratum: Stratum
    n_pairs: int
    n_missing: int
    source: str

    @property
    def totals(self) -> np.ndarray:
        """(E_agentic, S_agentic, E_linear, S_linear) summed over the family's complete pairs."""
        return self.stratum.values.sum(axis=0)

    def undefined_flags(self) -> list[str | None]:
        """Why the family's OOI is undefined (``None`` entries where it is not for that reason)."""
        t = self.totals
        return [
            "no_pairs" if self.n_pairs == 0 else None,
            "zero_successes_agentic" if self.n_pairs and t[1] == 0 else None,
            "zero_successes_linear" if self.n_pairs and t[3] == 0 else None,
        ]

    @property
    def defined(self) -> bool:
        """An EpG without a success is undefined (inf), so is a ratio with one."""
        return not any(self.undefined_flags())


@dataclass(frozen=True)
class _Scope:
    """What one ooi.csv row is computed over: the families ``inside`` it, their ``totals``
    (one row per family), the statistic and its degenerate resamples, whether the OOI is
    defined (``ok``), the EpG pair whose ratio it is, and the row's scope flags."""

    inside: list[str]
    totals: np.ndarray
    stat: Statistic
    degenerate: Statistic
    ok: bool
    epgs: tuple[float, float]
    flags: list[str | None]


def ooi_table(
    goals: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The ooi.csv table (contract columns, then :data:`OOI_EXTRA_COLUMNS`, :data:`OOI_STAT_COLUMNS`)."""
    return ooi_from_executions(executions(goals, cfg.energy_layer), cfg, groups)


def ooi_from_executions(
    ex: pd.DataFrame,
    cfg: MetricsConfig,
    groups: Mapping[str, str] | None = None,
    pairs: Mapping[str, FamilyPairs] | None = None,
) -> pd.DataFrame:
    """The ooi.csv table from an :func:`executions` frame (what :func:`ooi_table` returns);
    ``pairs``: the families' resampled pairs (:func:`family_pairs`), drawn here when not given."""
    families = ordered(ex["family"], BUILTIN_FAMILIES)
    fam_group = {f: group_of(f, groups) for f in families}
    pairs = pairs if pairs is not None else family_pairs(ex, families, cfg)
    rows: list[dict[str, Any]] = []
    results: list[BootstrapResult | None] = []
    for scope, estimand, members in ooi_scopes(families, fam_group, cfg.pooled_estimand):
        row, res = _ooi_row(_scope(estimand, members, pairs), members, pairs, ex, cfg)
        rows.append({"scope": scope, "estimand": estimand, **row})
        results.append(res if estimand == FAMILY_ESTIMAND and res and res.method != "none" else None)
    out = pd.DataFrame(
        rows, columns=[*OOI_COLUMNS, *OOI_EXTRA_COLUMNS, *OOI_STAT_COLUMNS, *LAYER_EXTRA_COLUMNS]
    )
    return _adjust_families(out, results, float(cfg.level))


def family_pairs(ex: pd.DataFrame, families: Sequence[str], cfg: MetricsConfig) -> dict[str, FamilyPairs]:
    """Each family's complete pairs (:func:`paired_goals`) with its resampled stratum of goals."""
    paired = paired_goals(ex, families)
    out = {}
    for f in families:
        vals, n_complete, n_missing, src = paired[f]
        stratum = make_stratum(f, vals, int(cfg.bootstrap), stratum_rng(cfg.seed, f"ooi\0{f}"))
        out[f] = FamilyPairs(stratum, n_complete, n_missing, src)
    return out


def ooi_scopes(
    families: Sequence[str], fam_group: Mapping[str, str], headline: str
) -> Iterator[tuple[str, str, list[str]]]:
    """``(scope, estimand, member families)`` of each ooi.csv row, in table order: the
    families, then each group's and the overall pooled estimands (``headline`` first)."""
    for f in families:
        yield f, FAMILY_ESTIMAND, [f]
    pooled = [(g, [f for f in families if fam_group[f] == g]) for g in ordered(fam_group.values(), GROUPS)]
    for scope, members in [*pooled, (OVERALL, list(families))]:
        for estimand in estimand_order(headline):
            yield scope, estimand, members


def _scope(estimand: str, members: Sequence[str], pairs: Mapping[str, FamilyPairs]) -> _Scope:
    """A family's own OOI, or a pooled estimand over the members whose OOI is defined.

    An EpG without a success is undefined (inf), so is a ratio with one: no estimate and
    no interval, never the arithmetic 0 or inf (the flags say why). Pooled estimands
    take only the families whose OOI is defined.
    """
    if estimand == FAMILY_ESTIMAND:
        inside = list(members)
        t = np.stack([pairs[f].totals for f in inside])
        own = pairs[members[0]]
        return _Scope(
            inside,
            t,
            pooled_ratio_stat,
            pooled_degenerate,
            own.defined,
            pooled_epgs("pooled_ratio", t),
            own.undefined_flags(),
        )
    inside = [f for f in members if pairs[f].defined]
    t = np.stack([pairs[f].totals for f in inside]) if inside else np.zeros((0, PAIR_COLUMNS))
    stat, degenerate = POOLED_STATS[estimand]
    epgs = pooled_epgs(estimand, t) if inside else (math.nan, math.nan)
    excluded: list[str | None] = [f"excluded:{f}" for f in members if not pairs[f].defined]
    return _Scope(inside, t, stat, degenerate, bool(inside), epgs, excluded)


def _ooi_row(
    sc: _Scope,
    members: Sequence[str],
    pairs: Mapping[str, FamilyPairs],
    ex: pd.DataFrame,
    cfg: MetricsConfig,
) -> tuple[dict[str, Any], BootstrapResult | None]:
    """The numbers and flags of one ooi.csv row (all but ``scope`` and ``estimand``), and its result."""
    level = float(cfg.level)
    strata = [pairs[f].stratum for f in sc.inside]
    boot = bootstrap_strata(strata, sc.stat, sc.degenerate, level)
    n_goals = [len(s.values) for s in strata]
    res, short = sufficient_interval(boot, n_goals, int(cfg.min_goals), level) if sc.ok else (None, False)
    row = {
        "ooi": res.estimate if res else math.nan,
        "ci_low": res.ci_low if res else math.nan,
        "ci_high": res.ci_high if res else math.nan,
        "n_pairs": sum(pairs[f].n_pairs for f in sc.inside),
        "method": res.method if res else "none",
        "B": int(cfg.bootstrap),
        "level": level,
        "n_missing_pairs": sum(pairs[f].n_missing for f in members),
        "n_degenerate_resamples": boot.n_degenerate,
        "epg_agentic_j": sc.epgs[0],
        "epg_linear_j": sc.epgs[1],
        "energy_source": combine_sources(pairs[f].source for f in sc.inside if pairs[f].n_pairs),
        "flags": _flags(
            *sc.flags,
            "insufficient_data" if short else None,
            "missing_energy" if len(sc.totals) and bool(np.isnan(sc.totals[:, :4]).any()) else None,
            *layer_flags(ex),
        ),
        "n_goals": sum(n_goals),
        "ci_low_adj": math.nan,
        "ci_high_adj": math.nan,
        "p_value": p_value(res) if res and res.method != "none" else math.nan,
        "p_value_holm": math.nan,
        "energy_layer": layer_of(ex),
    }
    return row, res


def _adjust_families(
    ooi: pd.DataFrame, results: Sequence[BootstrapResult | None], level: float
) -> pd.DataFrame:
    """Bonferroni-simultaneous intervals and Holm p-values over the family rows that have an interval."""
    tested = [(i, r) for i, r in enumerate(results) if r is not None]
    m = len(tested)
    if m == 0:
        return ooi
    level_adj = 1.0 - (1.0 - level) / m
    adj = np.array([interval_at(r, level_adj) for _, r in tested])
    rows = ooi.index[[i for i, _ in tested]]
    ooi.loc[rows, "ci_low_adj"], ooi.loc[rows, "ci_high_adj"] = adj[:, 0], adj[:, 1]
    ooi.loc[rows, "p_value_holm"] = holm(ooi.loc[rows, "p_value"].to_numpy(float))
    return ooi


# --------------------------------------------------------------------------- both tables
def compute_tables(
    goals_df: pd.DataFrame, cfg: MetricsConfig | None = None, groups: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(epg_df, ooi_df)`` from a goals table. Same inputs and seed -> identical tables."""
    cfg = cfg or MetricsConfig()
    ex = executions(goals_df, cfg.energy_layer)
    return epg_from_executions(ex, cfg, groups), ooi_from_executions(ex, cfg, groups)


def compute_layer_tables(
    goals_df: pd.DataFrame, cfg: MetricsConfig | None = None, groups: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """EpG and OOI for every energy layer (:data:`ENERGY_LAYERS`), stacked, ``energy_layer`` naming each.

    One set of executions, successes and pairs underlies all three: only the energy
    column differs, so the layers can be compared row by row.
    """
    cfg = cfg or MetricsConfig()
    epgs, oois = [], []
    for layer in ENERGY_LAYERS:
        epg, ooi = compute_tables(goals_df, replace(cfg, energy_layer=layer), groups)
        epgs.append(epg)
        oois.append(ooi)
    return pd.concat(epgs, ignore_index=True), pd.concat(oois, ignore_index=True)


def flag_families(
    epg_df: pd.DataFrame,
    ooi_df: pd.DataFrame,
    families: Iterable[str],
    flag: str,
    groups: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of the tables with ``flag`` added to every row that includes one of ``families``.

    That is each family's own rows, its group's rows and the overall rows. Used for
    facts about the measurement that the goals table does not carry, e.g. an unstable
    idle baseline (``baseline_unstable``).
    """
    fams = set(families)
    if not fams:
        return epg_df, ooi_df
    scopes = fams | {group_of(f, groups) for f in fams} | {OVERALL}

    def add(df: pd.DataFrame, col: str) -> pd.DataFrame:
        out = df.copy()
        out["flags"] = out["flags"].astype(object)  # a table read back with no flags has a float column
        hit = out[col].astype(str).isin(scopes)
        out.loc[hit, "flags"] = [
            _flags(*str(v if isinstance(v, str) else "").split(";"), flag) for v in out.loc[hit, "flags"]
        ]
        return out

    return add(epg_df, "family"), add(ooi_df, "scope")


# --------------------------------------------------------------------------- output
def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a metrics table atomically as CSV (``inf`` written as ``inf``, NaN as empty)."""
    atomic_write_with(path, lambda tmp: df.to_csv(tmp, index=False, lineterminator="\n"))


def write_tables(
    epg_df: pd.DataFrame,
    ooi_df: pd.DataFrame,
    epg_path: str | os.PathLike[str],
    ooi_path: str | os.PathLike[str],
) -> None:
    write_table(epg_df, epg_path)
    write_table(ooi_df, ooi_path)
