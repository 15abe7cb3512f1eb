"""Cross-arm comparison: the arms of one study (or separately made studies) side by side, and
every arm's EpG against the reference arm's with a paired goal-cluster bootstrap.

The tables (``results/compare/``, DESIGN.md "Data contracts"):

- ``epg.csv``: every arm's ``epg.csv`` rows, ``arm`` first;
- ``ooi.csv``: every arm's ``ooi.csv`` rows, ``arm`` first;
- ``ratios.csv`` (:func:`ratios_table`): for every non-reference arm, scope (each family,
  each group, ``overall``) and mode:

  * ``epg_ratio`` = EpG(arm) / EpG(reference) over the goals both arms ran (the same goals:
    the arms share ``study``), EpG pooled over the scope's families as in ``epg.csv``'s
    group and overall rows (Σ energy / Σ successes);
  * ``success_diff`` = success rate(arm) - success rate(reference), over the same executions;
  * ``ooi_ratio`` = OOI(arm) / OOI(reference) from the arms' ``ooi.csv`` (the family row, or
    the scope's headline pooled estimand), where both are defined; mode-independent, so the
    same on both mode rows of a scope. No interval.

The bootstrap is **paired**: the unit is a goal, and one resample draws the same goals for
both arms (a goal's columns hold both arms' energy, successes and executions, summed over its
reps), so the goal's difficulty, shared by the arms, cancels in the ratio instead of widening
its interval. Goals are resampled within each family (stratified); a pooled scope sums its
families' resampled totals, so the family, group and overall intervals share resamples. The
interval is BCa where defined, else percentile, read at the expanded level
(:func:`~alems.metrics.bootstrap.expanded_level`) exactly as ``ooi.csv``'s.

Undefined and small-sample cases follow ``ooi.csv``'s rules: a scope in which either arm has no
success has no ``epg_ratio`` (empty, flagged ``zero_successes_arm`` / ``zero_successes_reference``),
never 0 or inf; a resample in which either arm has no success is undefined (NaN), left out of
the interval and counted in ``n_degenerate_resamples``; more than 5 % of them, or a family with
fewer than ``min_goals`` goals, withholds the intervals (``insufficient_data``). Goals only one
arm ran are left out and counted (``unpaired_goals:N``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alems.accounting import combine_sources
from alems.contracts import BUILTIN_FAMILIES, GROUPS, MODES, OVERALL
from alems.errors import ProvenanceError
from alems.metrics.bootstrap import (
    BootstrapResult,
    Stratum,
    bootstrap_scope,
    make_stratum,
    p_value,
    stratum_rng,
    sufficient_interval,
)
from alems.metrics.config import MetricsConfig
from alems.metrics.estimands import FAMILY_ESTIMAND
from alems.metrics.executions import executions, goal_clusters, group_of, layer_of, ordered

RATIO_COLUMNS: tuple[str, ...] = (
    "arm",
    "reference_arm",
    "scope",
    "mode",
    "epg_ratio",
    "ci_low",
    "ci_high",
    "success_diff",
    "success_diff_ci_low",
    "success_diff_ci_high",
    "flags",
)
"""The ``ratios.csv`` contract (DESIGN.md), in order."""

RATIO_EXTRA_COLUMNS: tuple[str, ...] = (
    "group",
    "epg_arm_j",
    "epg_reference_j",
    "success_rate_arm",
    "success_rate_reference",
    "ooi_ratio",
    "ooi_arm",
    "ooi_reference",
    "n_goals",
    "n_executions",
    "method",
    "success_diff_method",
    "p_value",
    "B",
    "level",
    "n_degenerate_resamples",
    "energy_source",
    "energy_layer",
)
"""Written after :data:`RATIO_COLUMNS`."""

#: Flags of an arm's epg.csv row that carry over to its ratio rows (facts about the measurement).
CARRIED_FLAGS: tuple[str, ...] = (
    "baseline_unstable",
    "baseline_unknown",
    "baseline_host_unknown",
    "baseline_foreign_host",
    "missing_energy",
)
MIXED_HOSTS = "mixed_hosts"

# Per-goal columns of a paired stratum: the arm's energy, successes, executions, then the reference's.
_E_A, _S_A, _N_A, _E_R, _S_R, _N_R = range(6)


# --------------------------------------------------------------------------- statistics
def paired_epg_ratio_stat(totals: np.ndarray) -> np.ndarray:
    """EpG(arm) / EpG(reference) from totals (..., 6); NaN where either arm has no success
    (an EpG without a success is undefined, and so is a ratio with one)."""
    s_a, s_r = totals[..., _S_A], totals[..., _S_R]
    ok = (s_a > 0) & (s_r > 0)
    with np.errstate(all="ignore"):
        ratio = (totals[..., _E_A] / np.where(ok, s_a, 1.0)) / (totals[..., _E_R] / np.where(ok, s_r, 1.0))
    return np.where(ok, ratio, np.nan)


def paired_degenerate(totals: np.ndarray) -> np.ndarray:
    """A resample in which either arm has no success: its ratio is undefined."""
    return (totals[..., _S_A] <= 0) | (totals[..., _S_R] <= 0)


def success_diff_stat(totals: np.ndarray) -> np.ndarray:
    """Success rate(arm) - success rate(reference) from totals (..., 6)."""
    with np.errstate(all="ignore"):
        return totals[..., _S_A] / totals[..., _N_A] - totals[..., _S_R] / totals[..., _N_R]


def _never(totals: np.ndarray) -> np.ndarray:
    return np.zeros(totals.shape[:-1], dtype=bool)


# --------------------------------------------------------------------------- inputs
@dataclass
class ArmTables:
    """One arm's tables (its ``goals.csv``, ``epg.csv``, ``ooi.csv``) and provenance hashes."""

    name: str
    goals: pd.DataFrame
    epg: pd.DataFrame
    ooi: pd.DataFrame
    hashes: Mapping[str, Any] = field(default_factory=dict)


def check_hosts(arms: Sequence[ArmTables], *, allow_mixed_hosts: bool) -> bool:
    """True when the arms were measured on hosts with different ``hw_hash``; a
    :class:`~alems.errors.ProvenanceError` then, unless ``allow_mixed_hosts``."""
    hw = {a.name: a.hashes.get("hw_hash") for a in arms}
    if len(set(hw.values())) <= 1:
        return False
    if not allow_mixed_hosts:
        listing = ", ".join(f"{k}: {v}" for k, v in hw.items())
        raise ProvenanceError(
            f"the arms were measured on different hardware (hw_hash {listing})",
            fix="compare arms measured on one kind of host, or pass --allow-mixed-hosts "
            "(allow_mixed_runs: true in a study) to compare them anyway, flagged mixed_hosts",
        )
    return True


# --------------------------------------------------------------------------- ratios.csv
def _paired_cells(
    arm: pd.DataFrame, ref: pd.DataFrame, family: str, mode: str
) -> tuple[np.ndarray, int, int, str]:
    """One (family, mode) cell of both arms as (n_goals, 6) per-goal values over the goals both
    ran, the executions in them (both arms), the goals only one arm ran, and the energy source."""
    cols = ["energy_j", "success", "n"]
    per = []
    for ex in (arm, ref):
        cell = ex[(ex["family"] == family) & (ex["mode"] == mode)].assign(n=1.0)
        vals = goal_clusters(cell["goal_id"], cell[cols].to_numpy(float))
        ids = np.unique(cell["goal_id"].astype(str).to_numpy())
        per.append((pd.DataFrame(vals, index=ids, columns=cols), cell))
    (a, cell_a), (r, cell_r) = per
    both = a.index.intersection(r.index)
    unpaired = len(a.index.union(r.index)) - len(both)
    values = (
        np.column_stack([a.loc[both].to_numpy(), r.loc[both].to_numpy()]) if len(both) else np.zeros((0, 6))
    )
    inside = lambda c: c[c["goal_id"].astype(str).isin(both)]  # noqa: E731
    src = combine_sources(list(inside(cell_a)["energy_source"]) + list(inside(cell_r)["energy_source"]))
    return values, int(values[:, [_N_A, _N_R]].sum()) if len(values) else 0, unpaired, src


def _scopes(families: Sequence[str], fam_group: Mapping[str, str]) -> list[tuple[str, str, list[str]]]:
    """``(scope, group, member families)``: each family, each group, then overall."""
    out = [(f, fam_group[f], [f]) for f in families]
    for g in ordered(fam_group.values(), GROUPS):
        out.append((g, g, [f for f in families if fam_group[f] == g]))
    return [*out, (OVERALL, OVERALL, list(families))]


def _ooi_of(ooi: pd.DataFrame, scope: str, estimand: str) -> float:
    rows = ooi[(ooi["scope"].astype(str) == scope) & (ooi["estimand"].astype(str) == estimand)]
    if rows.empty:
        return math.nan
    v = float(rows["ooi"].iloc[0])
    return v if math.isfinite(v) and v > 0 else math.nan


def _carried(epg: pd.DataFrame, scope: str, mode: str) -> list[str]:
    rows = epg[(epg["family"].astype(str) == scope) & (epg["mode"].astype(str) == mode)]
    flags: list[str] = []
    for v in rows.get("flags", pd.Series(dtype=object)):
        flags += [f for f in str(v if isinstance(v, str) else "").split(";") if f in CARRIED_FLAGS]
    return flags


def _flags(*items: str | None) -> str:
    return ";".join(sorted({i for i in items if i}))


@dataclass(frozen=True)
class _Pair:
    """One non-reference arm against the reference in one mode: each family's paired stratum."""

    strata: dict[str, Stratum]
    n_exec: dict[str, int]
    unpaired: dict[str, int]
    source: dict[str, str]


def _pair(
    arm_ex: pd.DataFrame,
    ref_ex: pd.DataFrame,
    arm: str,
    mode: str,
    families: Sequence[str],
    cfg: MetricsConfig,
) -> _Pair:
    strata, n_exec, unpaired, source = {}, {}, {}, {}
    for f in families:
        vals, n, un, src = _paired_cells(arm_ex, ref_ex, f, mode)
        rng = stratum_rng(cfg.seed, f"ratio\0{arm}\0{f}\0{mode}")
        strata[f] = make_stratum(f, vals.reshape(-1, 6), int(cfg.bootstrap), rng)
        n_exec[f], unpaired[f], source[f] = n, un, src
    return _Pair(strata, n_exec, unpaired, source)


def _ratio_row(pair: _Pair, members: Sequence[str], cfg: MetricsConfig) -> dict[str, Any]:
    """The numbers and flags of one ratios.csv row over the scope's ``members``."""
    level, min_goals = float(cfg.level), int(cfg.min_goals)
    strata = [pair.strata[f] for f in members if len(pair.strata[f].values)]
    n_goals = [len(s.values) for s in strata]
    t = np.sum([s.values.sum(axis=0) for s in strata], axis=0) if strata else np.zeros(6)
    undefined = [
        "no_paired_goals" if not strata else None,
        "zero_successes_arm" if strata and t[_S_A] <= 0 else None,
        "zero_successes_reference" if strata and t[_S_R] <= 0 else None,
    ]
    none = BootstrapResult(math.nan, math.nan, math.nan, "none", 0, 0)
    ratio, short_r, diff, short_d = none, False, none, False
    if strata:
        boot = bootstrap_scope(strata, paired_epg_ratio_stat, paired_degenerate, level)
        if not any(undefined):
            ratio, short_r = sufficient_interval(boot, n_goals, min_goals, level)
        else:
            ratio = BootstrapResult(math.nan, math.nan, math.nan, "none", boot.n_resamples, boot.n_degenerate)
        diff, short_d = sufficient_interval(
            bootstrap_scope(strata, success_diff_stat, _never, level), n_goals, min_goals, level
        )
    unpaired = sum(pair.unpaired[f] for f in members)
    with np.errstate(all="ignore"):
        epg_a = t[_E_A] / t[_S_A] if t[_S_A] > 0 else math.nan
        epg_r = t[_E_R] / t[_S_R] if t[_S_R] > 0 else math.nan
    return {
        "epg_ratio": ratio.estimate,
        "ci_low": ratio.ci_low,
        "ci_high": ratio.ci_high,
        "success_diff": diff.estimate,
        "success_diff_ci_low": diff.ci_low,
        "success_diff_ci_high": diff.ci_high,
        "flags": [
            *undefined,
            "insufficient_data" if short_r or short_d else None,
            "missing_energy" if bool(np.isnan(t[[_E_A, _E_R]]).any()) else None,
            f"unpaired_goals:{unpaired}" if unpaired else None,
        ],
        "epg_arm_j": float(epg_a),
        "epg_reference_j": float(epg_r),
        "success_rate_arm": float(t[_S_A] / t[_N_A]) if t[_N_A] else math.nan,
        "success_rate_reference": float(t[_S_R] / t[_N_R]) if t[_N_R] else math.nan,
        "n_goals": sum(n_goals),
        "n_executions": sum(pair.n_exec[f] for f in members),
        "method": ratio.method,
        "success_diff_method": diff.method,
        "p_value": p_value(ratio) if ratio.method != "none" else math.nan,
        "B": int(cfg.bootstrap),
        "level": level,
        "n_degenerate_resamples": ratio.n_degenerate,
        "energy_source": combine_sources(pair.source[f] for f in members if pair.n_exec[f]),
    }


def ratios_table(
    arms: Sequence[ArmTables],
    reference: str,
    cfg: MetricsConfig,
    groups: Mapping[str, str] | None = None,
    *,
    mixed_hosts: bool = False,
    arm_executions: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """``ratios.csv``: every non-reference arm against ``reference`` (module docstring).

    ``arm_executions`` (arm -> an :func:`~alems.metrics.executions` frame) stands in for the
    arms' goals tables where given (the coverage benchmark simulates executions)."""
    by_name = {a.name: a for a in arms}
    ref = by_name[reference]
    ex = dict(arm_executions or {a.name: executions(a.goals, cfg.energy_layer) for a in arms})
    families = ordered(pd.concat([e["family"] for e in ex.values()]), BUILTIN_FAMILIES)
    modes = ordered(pd.concat([e["mode"] for e in ex.values()]), MODES)
    fam_group = {f: group_of(f, groups) for f in families}
    rows = []
    for a in arms:
        if a.name == reference:
            continue
        for mode in modes:
            pair = _pair(ex[a.name], ex[reference], a.name, mode, families, cfg)
            for scope, group, members in _scopes(families, fam_group):
                row = _ratio_row(pair, members, cfg)
                estimand = FAMILY_ESTIMAND if scope in families else cfg.pooled_estimand
                ooi_a, ooi_r = _ooi_of(a.ooi, scope, estimand), _ooi_of(ref.ooi, scope, estimand)
                flags = [
                    *row.pop("flags"),
                    *_carried(a.epg, scope, mode),
                    *_carried(ref.epg, scope, mode),
                    MIXED_HOSTS if mixed_hosts else None,
                ]
                rows.append(
                    {
                        "arm": a.name,
                        "reference_arm": reference,
                        "scope": scope,
                        "mode": mode,
                        **row,
                        "flags": _flags(*flags),
                        "group": group,
                        "ooi_ratio": ooi_a / ooi_r,
                        "ooi_arm": ooi_a,
                        "ooi_reference": ooi_r,
                        "energy_layer": layer_of(ex[a.name]),
                    }
                )
    return pd.DataFrame(rows, columns=[*RATIO_COLUMNS, *RATIO_EXTRA_COLUMNS])


# --------------------------------------------------------------------------- epg.csv, ooi.csv
def stacked(frames: Mapping[str, pd.DataFrame], *, mixed_hosts: bool = False) -> pd.DataFrame:
    """The arms' tables one under the other, ``arm`` first (flagged ``mixed_hosts`` when so)."""
    out = []
    for name, df in frames.items():
        df = df.copy()
        df.insert(0, "arm", name)
        if mixed_hosts:
            df["flags"] = [
                _flags(*str(v if isinstance(v, str) else "").split(";"), MIXED_HOSTS) for v in df["flags"]
            ]
        out.append(df)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame({"arm": []})


@dataclass
class CompareTables:
    epg: pd.DataFrame
    ooi: pd.DataFrame
    ratios: pd.DataFrame
    mixed_hosts: bool


def compare_tables(
    arms: Sequence[ArmTables],
    reference: str,
    cfg: MetricsConfig,
    groups: Mapping[str, str] | None = None,
    *,
    allow_mixed_hosts: bool = False,
) -> CompareTables:
    """The three cross-arm tables, the reference arm's rows first, then the others in the order
    given. ``reference`` must be one of ``arms``; arms measured on different hardware are
    refused unless ``allow_mixed_hosts`` (then flagged ``mixed_hosts``)."""
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ProvenanceError(
            f"arm names repeat: {names}", fix="give every study a distinct name (alems compare NAME=DIR)"
        )
    if reference not in names:
        raise ProvenanceError(
            f"the reference arm '{reference}' is not one of the arms ({', '.join(names)})",
            fix="name one of them as the reference (--reference NAME, or study.reference_arm)",
        )
    mixed = check_hosts(arms, allow_mixed_hosts=allow_mixed_hosts)
    arms = [by for by in arms if by.name == reference] + [a for a in arms if a.name != reference]
    return CompareTables(
        epg=stacked({a.name: a.epg for a in arms}, mixed_hosts=mixed),
        ooi=stacked({a.name: a.ooi for a in arms}, mixed_hosts=mixed),
        ratios=ratios_table(arms, reference, cfg, groups, mixed_hosts=mixed),
        mixed_hosts=mixed,
    )
