"""Metrics: Energy per Successful Goal (EpG), the Orchestration Overhead Index (OOI), and
their paired, stratified, goal-level (cluster) bootstrap confidence intervals.

This module owns the numbers in ``epg.csv`` and ``ooi.csv``. It reads only the
``goals.csv`` table (one row per attempt, see :mod:`alems.accounting`) and never plots.

Definitions (DESIGN.md):

- An **execution** is ``(family, mode, goal_id, rep)``. Its energy E is the sum of
  ``energy_j + gap_j`` over its attempts (failed attempts included); its success is the
  success of its final attempt (the row with ``final_attempt`` true; the highest
  ``attempt`` if none is marked). A missing (NaN) energy propagates: it is never read as 0.
- **EpG** of a cell = Σ E over all executions / number of successful executions.
  ``epg_success_only_j`` = Σ E over successful executions / their number. With zero
  successes both are ``inf`` and the row is flagged ``zero_successes``; nothing is
  divided by zero and nothing crashes.
- **OOI** of a scope = EpG(agentic) / EpG(linear), computed over the complete
  ``(goal_id, rep)`` pairs only (those measured in both modes). Pairs missing a mode are
  left out and counted in ``n_missing_pairs``. OOI therefore may differ from the ratio of
  the ``epg.csv`` cells when pairs are missing. When either mode has no success in the
  scope, its EpG is undefined and so is the OOI: ``ooi``, ``ci_low`` and ``ci_high`` are
  NaN (empty in the CSV), ``method`` is ``none``, and the row is flagged
  ``zero_successes_agentic`` and/or ``zero_successes_linear``. It is never written as the
  arithmetic ``0`` (finite / inf) or ``inf``.
- **Scopes and rows.** ``epg.csv`` has one row per (family, mode), then one per (group,
  mode) with ``family`` = ``group`` = the group name (e.g. ``reasoning``), then one per
  mode with ``family`` = ``group`` = ``overall``. ``ooi.csv`` has one row per family
  (``estimand`` = ``family``), then three per group and three for ``overall``, one per
  pooled estimand, the headline (``metrics.pooled_estimand``) first. Groups come from the
  ``groups`` mapping (family -> group); a family not in it is ``tool`` when its name
  starts with ``tg_`` and ``reasoning`` otherwise.
- **Pooled estimands** take only the families whose OOI is defined (the others are
  flagged ``excluded:FAMILY`` on the row): ``ratio_of_means`` = mean EpG(agentic) over
  those families / mean EpG(linear) over the same families (the paper's headline; its
  ``epg_*_j`` columns are those means), ``geomean_ooi`` = the geometric mean of the family
  OOIs (``epg_*_j``: geometric means of the family EpGs), ``pooled_ratio`` = EpG(agentic)
  / EpG(linear) of the pooled energy and successes (``epg_*_j``: the pooled EpGs).

Bootstrap (:func:`bootstrap_strata`, :func:`bootstrap_scope`):

- The resampling unit is the **goal**: for EpG the goal's executions in the cell (all its
  reps) summed; for OOI the goal's complete ``(goal_id, rep)`` pairs summed, both modes
  together. Reps of a goal share the goal's difficulty, so resampling them as if they
  were independent would pass copies off as data (duplicating every rep would narrow the
  interval by 1/sqrt(2)); resampling goals does not. Goals are resampled with
  replacement **within each family** (stratified); a pooled scope combines its families'
  resampled totals, so the family, group and overall intervals of one table share
  resamples. ``n_goals`` counts the goals (clusters), ``n_pairs`` the pairs.
- Each resample is a row of a count-weight matrix built with one ``bincount`` per
  stratum; totals are weighted column sums. There is no Python loop over resamples
  (large strata are processed in blocks of resamples to bound memory).
- The interval is **BCa** (bias correction from the share of resamples below the
  estimate, acceleration from the grouped, stratified jackknife: leave one goal out of
  its family) where it is defined: finite estimate, finite jackknife values that are not
  all equal, a bias-correction share strictly between 0 and 1. Otherwise it is the
  **percentile** interval; ``method`` (EpG: ``ci_method``) says which. ``none``: no
  interval (B = 0, no data, or insufficient data).
- The tables read each interval at an **expanded** level (:func:`expanded_level`): as wide
  as ``sqrt(n/(n-1)) t_df`` standard errors instead of ``z``, n the goals of the smallest
  stratum and df = Σ(n_s - 1), which undoes the bootstrap's known narrowness with few
  goals. The ``level`` column stays the nominal level. ``benchmarks/coverage.py`` checks
  the coverage on simulated studies with a known OOI.
- **Insufficient data**: with fewer than ``min_goals`` goals in a family (in any family of
  a pooled scope), or more than 5 % degenerate resamples, a row keeps its estimate but
  gets no interval (empty ``ci_low``/``ci_high``, ``method`` ``none``) and the flag
  ``insufficient_data``.
- **Multiplicity** (family rows of ``ooi.csv``): ``ci_low_adj``/``ci_high_adj`` are
  Bonferroni-simultaneous intervals over the m families that have an interval (each read
  at level 1 - (1 - level)/m); ``p_value`` is the two-sided bootstrap p-value for OOI = 1
  (:func:`p_value`: the interval inverted, floor 1/B) and ``p_value_holm`` its Holm
  adjustment over the same m families. Pooled rows have ``p_value`` only.
- A resample with zero successes on one side (OOI) or zero successes (EpG) is
  **degenerate**: it is kept in the distribution with its limiting value (``inf``; ``0``
  for an OOI whose linear side has none; a resample with none on either side is ``nan``
  and is left out of the quantiles) and counted in ``n_degenerate_resamples``. Keeping
  them widens the interval towards 0 or ``inf``, which is what a handful of successes
  supports; dropping them would narrow it.
- Every stratum gets its own generator seeded by ``(seed, a stable hash of the stratum
  name)``: the same seed and inputs give byte-identical tables, and adding a family does
  not change the others' resamples.

Extra columns after the contract columns: ``epg.csv`` adds ``ci_method, B, level,
n_degenerate_resamples, flags``, then ``n_goals``, ``energy_layer``, and last ``truncation_rate`` (the share of
the cell's executions whose final attempt has ``check_reason == "truncated"``: its final
answer was cut at the token cap; NaN when the goals table has no ``check_reason`` column, as
older ones do); ``ooi.csv`` adds ``n_missing_pairs,
n_degenerate_resamples, epg_agentic_j, epg_linear_j, energy_source, flags``, then
``estimand, n_goals, ci_low_adj, ci_high_adj, p_value, p_value_holm``. ``flags`` is
``;``-separated (``zero_successes``, ``zero_successes_agentic``, ``zero_successes_linear``,
``no_pairs``, ``missing_energy``, ``insufficient_data``, ``excluded:FAMILY``,
``low_coverage:N`` = attempts under ``min_coverage``,
``negative_energy:N`` = executions with negative energy; :func:`flag_families` adds
``baseline_unstable`` where the pipeline measured against an unstable idle baseline).

JSON (:func:`tables_to_json`): ``inf`` / ``-inf`` become the strings ``"inf"`` /
``"-inf"``, NaN becomes ``null``; the ``flags`` column says why.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import t as student_t

from alems.accounting import as_bool, combine_sources
from alems.contracts import (
    BUILTIN_FAMILIES,
    ENERGY_LAYERS,
    GOALS_REQUIRED,
    GROUPS,
    LAYER_SOURCE_COLUMNS,
    MODES,
    OVERALL,
    POOLED_ESTIMANDS,
    default_group,
)
from alems.errors import AlemsError, ConfigError
from alems.io import atomic_write_with

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

FAMILY_ESTIMAND = "family"
MAX_DEGENERATE_SHARE = 0.05  # more degenerate resamples than this: no interval (insufficient_data)


LAYER_EXTRA_COLUMNS: tuple[str, ...] = ("energy_layer",)
"""Written after the other extra columns of epg.csv and ooi.csv: the layer the row was computed from."""

_BLOCK_ELEMENTS = 4_000_000  # resample-weight cells per block (bounds memory for big strata)


class MetricsInputError(AlemsError):
    """A goals table cannot be turned into metrics (missing file or columns)."""


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class MetricsConfig:
    """Bootstrap settings; the workflow config's ``metrics:`` block mirrors it.

    ``bootstrap`` is B, the number of resamples (0: no intervals); ``level`` the
    confidence level; ``seed`` the generator seed (same seed -> identical tables);
    ``min_goals`` the fewest goals (clusters) a family needs for an interval;
    ``pooled_estimand`` the headline pooled estimand (listed first in each pooled scope,
    drawn by the figures).
    """

    bootstrap: int = 10_000
    level: float = 0.95
    seed: int = 0
    min_goals: int = 10
    pooled_estimand: str = "ratio_of_means"
    energy_layer: str = "total"

    def __post_init__(self) -> None:
        if (
            isinstance(self.min_goals, bool)
            or not isinstance(self.min_goals, int | np.integer)
            or self.min_goals < 1
        ):
            raise ConfigError(
                f"metrics.min_goals is {self.min_goals!r}; it must be an integer >= 1",
                "set `metrics: {min_goals: 10}` in the config (or pass --min-goals 10)",
            )
        if self.pooled_estimand not in POOLED_ESTIMANDS:
            raise ConfigError(
                f"metrics.pooled_estimand is {self.pooled_estimand!r}; it must be one of {list(POOLED_ESTIMANDS)}",
                "set `metrics: {pooled_estimand: ratio_of_means}` in the config (the paper's estimand)",
            )
        if self.energy_layer not in ENERGY_LAYERS:
            raise ConfigError(
                f"metrics.energy_layer is {self.energy_layer!r}; it must be one of {list(ENERGY_LAYERS)}",
                "set `metrics: {energy_layer: total}` in the config (or pass --layer total)",
            )
        if (
            isinstance(self.bootstrap, bool)
            or not isinstance(self.bootstrap, int | np.integer)
            or self.bootstrap < 0
        ):
            raise ConfigError(
                f"metrics.bootstrap is {self.bootstrap!r}; it must be an integer >= 0",
                "set `metrics: {bootstrap: 10000}` in the config (or pass --bootstrap 10000)",
            )
        if not (isinstance(self.level, float | int) and 0.0 < float(self.level) < 1.0):
            raise ConfigError(
                f"metrics.level is {self.level!r}; it must lie strictly between 0 and 1",
                "set `metrics: {level: 0.95}` in the config (or pass --level 0.95)",
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ConfigError(
                f"metrics.seed is {self.seed!r}; it must be an integer >= 0",
                "set `metrics: {seed: 0}` in the config (or pass --seed 0)",
            )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> MetricsConfig:
        data = dict(mapping or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown metrics config key(s): {unknown}",
                f"use only {sorted(known)} under `metrics:`",
            )
        if "level" in data:
            data["level"] = float(data["level"])
        return cls(**data)


# --------------------------------------------------------------------------- groups and order
def group_of(family: str, groups: Mapping[str, str] | None = None) -> str:
    """The group of ``family``: from ``groups`` if listed, else ``tool`` for ``tg_*``, else ``reasoning``."""
    if groups and family in groups:
        return str(groups[family])
    return default_group(family)


def _ordered(names: Iterable[str], known: Sequence[str]) -> list[str]:
    uniq = set(names)
    return [n for n in known if n in uniq] + sorted(uniq - set(known))


# --------------------------------------------------------------------------- executions
def read_goals(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read one or more goals.csv files (concatenated, in the order given)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    frames = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise MetricsInputError(
                f"goals table {str(path)!r} does not exist",
                "pass results/tables/goals.csv (made by `snakemake --cores 1 all`) or a run's goals.csv",
            )
        frames.append(
            pd.read_csv(path, dtype={"goal_id": str, "family": str, "mode": str}, keep_default_na=True)
        )
    if not frames:
        raise MetricsInputError("no goals table given", "pass at least one goals.csv")
    return pd.concat(frames, ignore_index=True)


def layer_energy(goals: pd.DataFrame, layer: str) -> tuple[pd.Series, str, list[str]]:
    """Per-attempt energy (attempt + the gap before it) of ``layer``, the layer used, and flags.

    ``total`` is ``raw_j + gap_raw_j``, ``dynamic`` ``dynamic_j + gap_dynamic_j``,
    ``attributed`` ``energy_j + gap_j``. A table without the layer's attempt column (a
    goals table with only the minimal columns, no ``raw_j``) falls back to ``attributed``,
    and the ``energy_layer`` column of every row says so (the CLI warns). A goals.csv written
    before the gap columns existed has no ``gap_raw_j`` / ``gap_dynamic_j``: where every
    ``gap_j`` is 0 there was no gap window, so the gap is 0 in every layer; otherwise
    ``gap_j`` stands in, flagged ``gap_attributed``.
    """
    if layer not in ENERGY_LAYERS:
        raise ConfigError(
            f"energy layer {layer!r} is not one of {list(ENERGY_LAYERS)}",
            "pass --layer total|dynamic|attributed",
        )
    flags: list[str] = []
    col, gap_col = LAYER_SOURCE_COLUMNS[layer]
    if col not in goals.columns:
        layer = "attributed"
        col, gap_col = LAYER_SOURCE_COLUMNS[layer]
    gap = goals["gap_j"].astype(float)
    if gap_col in goals.columns:
        gap = goals[gap_col].astype(float)
    elif bool((gap.fillna(0.0) != 0.0).any()):
        flags.append("gap_attributed")
    return goals[col].astype(float) + gap, layer, flags


def executions(goals: pd.DataFrame, layer: str = "attributed") -> pd.DataFrame:
    """One row per execution ``(family, mode, goal_id, rep)``, energy from ``layer``
    (:func:`layer_energy`; the default is the goals table's ``energy_j``).

    Columns: ``family, mode, goal_id, rep, energy_j`` (Σ energy_j + gap_j over attempts,
    NaN if any is NaN), ``success`` (final attempt's), ``attempts``, ``energy_source``,
    ``low_coverage`` (attempts flagged low_coverage), ``truncated`` (the final attempt's
    ``check_reason`` is ``truncated``; NaN without a ``check_reason`` column).
    """
    missing = [c for c in GOALS_REQUIRED if c not in goals.columns]
    if missing:
        raise MetricsInputError(
            f"goals table lacks column(s) {missing}",
            "pass a goals.csv written by alems.accounting (DESIGN.md, goals.csv contract)",
        )
    goals = goals.reset_index(drop=True)
    e_layer, used_layer, layer_flags = layer_energy(goals, layer)
    g = pd.DataFrame(
        {
            "family": goals["family"].astype(str),
            "mode": goals["mode"].astype(str),
            "goal_id": goals["goal_id"].astype(str),
            "rep": goals["rep"].astype(int),
            "attempt": goals["attempt"].astype(int),
            "success": as_bool(goals["success"]),
            "final": as_bool(goals["final_attempt"]),
            "e": e_layer,
            "src": goals["energy_source"].astype(str) if "energy_source" in goals.columns else "unknown",
            "lowcov": (
                goals["flags"]
                .astype(object)
                .where(goals["flags"].notna(), "")
                .astype(str)
                .str.contains(r"(?:^|;)low_coverage(?:;|$)", regex=True)
                if "flags" in goals.columns
                else False
            ),
            "cut": (
                (goals["check_reason"].astype(str) == "truncated").astype(float)
                if "check_reason" in goals.columns
                else np.nan
            ),
        }
    )
    keys = ["family", "mode", "goal_id", "rep"]
    # final attempt: marked rows first, then by attempt number; take the last after sorting
    g = g.sort_values([*keys, "final", "attempt"], kind="mergesort")
    g["e_nan"] = g["e"].isna()
    g["is_measured"] = g["src"] == "measured"
    g["is_modeled"] = g["src"] == "modeled"
    grouped = g.groupby(keys, sort=True)
    out = grouped.agg(
        energy_j=("e", "sum"),
        e_nan=("e_nan", "any"),
        success=("success", "last"),
        attempts=("attempt", "size"),
        low_coverage=("lowcov", "sum"),
        truncated=("cut", "last"),
        all_measured=("is_measured", "all"),
        all_modeled=("is_modeled", "all"),
    ).reset_index()
    out.loc[out["e_nan"], "energy_j"] = np.nan
    out["energy_source"] = np.where(
        out["all_measured"], "measured", np.where(out["all_modeled"], "modeled", "mixed")
    )
    out = out.drop(columns=["e_nan", "all_measured", "all_modeled"])
    out["success"] = out["success"].astype(bool)
    out["low_coverage"] = out["low_coverage"].astype(int)
    out["energy_layer"] = used_layer
    out["layer_flags"] = ";".join(layer_flags)
    return out


# --------------------------------------------------------------------------- bootstrap engine
@dataclass(frozen=True)
class BootstrapResult:
    """One scope's estimate and interval.

    ``theta`` holds the sorted finite-or-infinite resample statistics (NaN left out);
    ``z0`` and ``accel`` are the BCa bias correction and acceleration (0 for a
    percentile interval), so the interval can be read at other levels
    (:func:`interval_at`) and inverted into a p-value (:func:`p_value`).
    """

    estimate: float
    ci_low: float
    ci_high: float
    method: str  # "BCa" | "percentile" | "none"
    n_resamples: int
    n_degenerate: int
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    z0: float = 0.0
    accel: float = 0.0
    n_min: int = 0  # smallest stratum (goals); with df > 0 the interval is expanded (see expanded_level)
    df: int = 0


@dataclass(frozen=True)
class Stratum:
    """One stratum's units: ``values`` (n, k) per-unit columns; ``boot`` (B, k) resampled totals."""

    name: str
    values: np.ndarray
    boot: np.ndarray


def stratum_rng(seed: int, tag: str) -> np.random.Generator:
    """The generator of one stratum: seeded by the config seed and a stable hash of ``tag``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(tag.encode("utf-8"))]))


def resample_totals(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Column totals of ``n_resamples`` with-replacement resamples of the rows of ``values``.

    Returns (B, k). Each block of resamples draws an index matrix, turns it into a count
    matrix with one ``bincount``, and takes weighted column sums with ``einsum``'s own loop
    (no BLAS, whose summation order may depend on threading), so reruns are bit-for-bit equal.
    """
    values = np.asarray(values, dtype=float)
    n, k = values.shape
    out = np.zeros((n_resamples, k))
    if n == 0 or n_resamples == 0:
        return out
    block = max(1, min(n_resamples, _BLOCK_ELEMENTS // n))
    values_t = np.ascontiguousarray(values.T)
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        idx += (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(float)
        out[start : start + b] = np.einsum("bn,kn->bk", counts, values_t)
    return out


def make_stratum(name: str, values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> Stratum:
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    return Stratum(name=name, values=values, boot=resample_totals(values, n_resamples, rng))


def _quantile(sorted_x: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile (NumPy's default rule) that is exact across ``inf`` ties."""
    n = len(sorted_x)
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    a, b = float(sorted_x[lo]), float(sorted_x[hi])
    if a == b or h == lo:
        return a
    if math.isinf(a) or math.isinf(b):
        return a if math.isinf(a) else b  # the limit of interpolating towards an infinity
    return a + (h - lo) * (b - a)


def _acceleration(
    strata: Sequence[Stratum], total: np.ndarray, stat: Callable[[np.ndarray], np.ndarray]
) -> float:
    """BCa acceleration of a statistic of the summed totals (see :func:`_grouped_acceleration`)."""
    return _grouped_acceleration(strata, lambda t: stat(t.sum(axis=-2)))


def _grouped_acceleration(strata: Sequence[Stratum], stat: Callable[[np.ndarray], np.ndarray]) -> float:
    """BCa acceleration from a stratified jackknife (leave one unit out of its stratum).

    ``stat`` maps per-stratum totals (..., S, k) to the statistic. A unit is a goal
    (all its reps), so this is the grouped (leave-one-goal-out) jackknife.
    a = Σ_s Σ_i (u_si / n_s)^3 / (6 (Σ_s Σ_i (u_si / n_s)^2)^(3/2)), with
    u_si = (n_s - 1)(mean_i θ_(-si) - θ_(-si)); single-stratum it is the usual formula.
    NaN where undefined (a non-finite jackknife value, or all of them equal).
    """
    totals = np.stack([s.values.sum(axis=0) for s in strata]) if strata else np.zeros((0, 0))
    num = 0.0
    den = 0.0
    for j, s in enumerate(strata):
        n = len(s.values)
        if n < 2:
            continue
        loo = np.repeat(totals[None, :, :], n, axis=0)
        loo[:, j, :] -= s.values
        with np.errstate(all="ignore"):
            theta = stat(loo)
        if not np.all(np.isfinite(theta)):
            return math.nan
        u = (n - 1) * (theta.mean() - theta) / n
        num += float(np.sum(u**3))
        den += float(np.sum(u**2))
    if not den > 0:
        return math.nan
    return num / (6.0 * den**1.5)


def bootstrap_scope(
    strata: Sequence[Stratum],
    stat: Callable[[np.ndarray], np.ndarray],
    degenerate: Callable[[np.ndarray], np.ndarray],
    level: float,
) -> BootstrapResult:
    """Estimate and BCa (else percentile) interval of ``stat`` of the totals summed over ``strata``.

    ``stat`` maps totals (..., k) to the statistic; ``degenerate`` marks resample totals to
    count as degenerate. Strata must share B.
    """
    return bootstrap_strata(
        strata, lambda t: stat(t.sum(axis=-2)), lambda t: degenerate(t.sum(axis=-2)), level
    )


def bootstrap_strata(
    strata: Sequence[Stratum],
    stat: Callable[[np.ndarray], np.ndarray],
    degenerate: Callable[[np.ndarray], np.ndarray],
    level: float,
) -> BootstrapResult:
    """Estimate and BCa (else percentile) interval of a statistic of per-stratum totals.

    ``stat`` maps per-stratum totals (..., S, k) to the statistic (S = len(strata));
    ``degenerate`` marks resamples to count as degenerate. Strata must share B.
    """
    k = strata[0].values.shape[1] if strata else 0
    n_units = sum(len(s.values) for s in strata)
    if n_units == 0:
        return BootstrapResult(math.nan, math.nan, math.nan, "none", 0, 0)
    total = np.stack([s.values.sum(axis=0) for s in strata])
    with np.errstate(all="ignore"):
        estimate = float(stat(total[None, :, :])[0])
    b = strata[0].boot.shape[0]
    if b == 0:
        return BootstrapResult(estimate, math.nan, math.nan, "none", 0, 0)
    boot_total = np.stack([s.boot for s in strata], axis=1) if k else np.zeros((b, len(strata), 0))
    with np.errstate(all="ignore"):
        theta = stat(boot_total)
    n_degenerate = int(np.count_nonzero(degenerate(boot_total)))
    theta = np.sort(theta[~np.isnan(theta)])
    if len(theta) == 0:
        return BootstrapResult(estimate, math.nan, math.nan, "none", b, n_degenerate)

    z0, accel, method = 0.0, 0.0, "percentile"
    if math.isfinite(estimate):
        share_below = float(np.count_nonzero(theta < estimate)) / len(theta)
        a = _grouped_acceleration(strata, stat)
        if 0.0 < share_below < 1.0 and math.isfinite(a):
            z0, accel, method = float(ndtri(share_below)), a, "BCa"
    res = BootstrapResult(estimate, math.nan, math.nan, method, b, n_degenerate, theta, z0, accel)
    lo, hi, method = _interval(res, level)
    return BootstrapResult(
        estimate,
        lo,
        hi,
        method,
        b,
        n_degenerate,
        theta,
        res.z0 if method == "BCa" else 0.0,
        res.accel if method == "BCa" else 0.0,
    )


def _bca_quantile(z0: float, accel: float, z: float) -> float:
    return float(ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z))))


def _expansion(n_min: int) -> float:
    return math.sqrt(n_min / (n_min - 1.0))


def expanded_level(level: float, n_min: int, df: int) -> float:
    """The level at which a bootstrap interval is read so that it is as wide as
    ``sqrt(n/(n-1)) * t_df`` standard errors instead of ``z``: Hesterberg's expanded
    interval, which undoes the bootstrap's narrowness in small samples (the plug-in
    variance lacks the factor n/(n-1), and z is not t). ``level`` itself when
    ``n_min < 2`` or ``df < 1``."""
    if n_min < 2 or df < 1:
        return level
    z = _expansion(n_min) * float(student_t.ppf(1.0 - (1.0 - level) / 2.0, df))
    return 1.0 - 2.0 * float(ndtr(-z))


def _interval(res: BootstrapResult, level: float) -> tuple[float, float, str]:
    """``(low, high, method)`` of ``res`` at ``level`` (expanded when ``res.df`` is set):
    BCa where its quantiles are valid, else percentile."""
    theta = res.theta
    if len(theta) == 0:
        return math.nan, math.nan, "none"
    level = expanded_level(level, res.n_min, res.df)
    tail = (1.0 - level) / 2.0
    q_lo, q_hi, method = tail, 1.0 - tail, "percentile"
    if res.method == "BCa":
        qa = _bca_quantile(res.z0, res.accel, float(ndtri(tail)))
        qb = _bca_quantile(res.z0, res.accel, float(ndtri(1.0 - tail)))
        if all(math.isfinite(q) and 0.0 <= q <= 1.0 for q in (qa, qb)):
            q_lo, q_hi, method = qa, qb, "BCa"
    return _quantile(theta, q_lo), _quantile(theta, q_hi), method


def interval_at(res: BootstrapResult, level: float) -> tuple[float, float]:
    """The interval of ``res`` read at another ``level`` (e.g. a Bonferroni-adjusted one)."""
    lo, hi, _ = _interval(res, level)
    return lo, hi


def p_value(res: BootstrapResult, null: float = 1.0) -> float:
    """Two-sided bootstrap p-value for ``statistic = null``, by inverting the interval.

    It is the smallest 1 - level at which the interval of ``res`` (BCa or percentile,
    as reported) excludes ``null``, from the share of resamples below ``null`` (ties
    count half). When every one of the n resamples lies on one side of ``null`` the
    p-value is reported as the floor 1/n (it is smaller than n resamples resolve).
    NaN without resamples or without an estimate.
    """
    theta = res.theta
    n = len(theta)
    if n == 0 or not math.isfinite(res.estimate):
        return math.nan
    below = float(np.count_nonzero(theta < null)) + 0.5 * float(np.count_nonzero(theta == null))
    if below in (0.0, float(n)):
        return 1.0 / n  # every resample on one side of null: below what n resamples resolve
    z = float(ndtri(below / n))
    if res.method == "BCa":
        t = z - res.z0
        if 1.0 + res.accel * t > 0:
            z = t / (1.0 + res.accel * t) - res.z0
    if res.n_min >= 2 and res.df >= 1:  # the level whose expanded interval ends at null
        return min(1.0, 2.0 * float(student_t.sf(abs(z) / _expansion(res.n_min), res.df)))
    return min(1.0, 2.0 * float(ndtr(-abs(z))))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and are not counted."""
    p_arr = np.asarray(p, dtype=float)
    out = np.full(len(p_arr), np.nan)
    idx = np.flatnonzero(~np.isnan(p_arr))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p_arr[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_arr[i]))
        out[i] = running
    return out


def epg_stat(totals: np.ndarray) -> np.ndarray:
    """EpG from totals (..., 2) = (Σ energy, Σ successes); ``inf`` with no success."""
    e, s = totals[..., 0], totals[..., 1]
    with np.errstate(all="ignore"):
        return np.where(s > 0, e / np.where(s > 0, s, 1.0), np.inf)


def epg_degenerate(totals: np.ndarray) -> np.ndarray:
    return totals[..., 1] <= 0


def ooi_stat(totals: np.ndarray) -> np.ndarray:
    """OOI from totals (..., 4) = (E_agentic, S_agentic, E_linear, S_linear).

    EpG(agentic) / EpG(linear) of each resample: ``inf`` when the agentic side has no
    success, ``0`` when only the linear side has none, ``nan`` when neither has one (the
    table's point estimate for such a scope is left undefined instead, see the module doc).
    """
    a = epg_stat(totals[..., 0:2])
    lin = epg_stat(totals[..., 2:4])
    with np.errstate(all="ignore"):
        return a / lin


def ooi_degenerate(totals: np.ndarray) -> np.ndarray:
    return (totals[..., 1] <= 0) | (totals[..., 3] <= 0)


# --------------------------------------------------------------------------- tables
def _flags(*items: str | None) -> str:
    return ";".join(sorted(i for i in items if i))


def _count_flag(name: str, n: int) -> str | None:
    return f"{name}:{n}" if n else None


def epg_table(
    goals: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The epg.csv table (contract columns, then :data:`EPG_EXTRA_COLUMNS`)."""
    return _epg_from_executions(executions(goals, cfg.energy_layer), cfg, groups)


def _epg_from_executions(
    ex: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None
) -> pd.DataFrame:
    families = _ordered(ex["family"], BUILTIN_FAMILIES)
    modes = _ordered(ex["mode"], MODES)
    fam_group = {f: group_of(f, groups) for f in families}
    group_names = _ordered(fam_group.values(), GROUPS)
    B = int(cfg.bootstrap)

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
            strata[(f, m)] = make_stratum(f, vals, B, stratum_rng(cfg.seed, f"epg\0{f}\0{m}"))

    rows: list[dict[str, Any]] = []

    def add_row(family: str, group: str, mode: str, members: list[str]) -> None:
        keys = [(f, mode) for f in members if (f, mode) in cells]
        if not keys:
            return
        cell = pd.concat([cells[k] for k in keys], ignore_index=True)
        n = len(cell)
        succ = cell["success"].to_numpy(bool)
        e = cell["energy_j"].to_numpy(float)
        s = int(succ.sum())
        total = float(e.sum())
        res = bootstrap_scope([strata[k] for k in keys], epg_stat, epg_degenerate, float(cfg.level))
        n_goals = [len(strata[k].values) for k in keys]
        res, short = _sufficient(res, n_goals, cfg)
        missing = bool(np.isnan(e).any())
        rows.append(
            {
                "family": family,
                "group": group,
                "mode": mode,
                "executions": n,
                "successes": s,
                "success_rate": s / n,
                "energy_total_j": total,
                "epg_j": res.estimate,
                "epg_ci_low": res.ci_low,
                "epg_ci_high": res.ci_high,
                "epg_success_only_j": float(e[succ].sum()) / s if s else math.inf,
                "energy_source": combine_sources(cell["energy_source"]),
                "ci_method": res.method,
                "B": B,
                "level": float(cfg.level),
                "n_degenerate_resamples": res.n_degenerate,
                "n_goals": sum(n_goals),
                "truncation_rate": float(cell["truncated"].mean())
                if cell["truncated"].notna().all()
                else math.nan,
                "flags": _flags(
                    "zero_successes" if s == 0 else None,
                    "insufficient_data" if short else None,
                    "missing_energy" if missing else None,
                    _count_flag("low_coverage", int(cell["low_coverage"].sum())),
                    _count_flag("negative_energy", int((e < 0).sum())),
                    *_layer_flags(cell),
                ),
                "energy_layer": _layer_of(cell),
            }
        )

    for f in families:
        for m in modes:
            add_row(f, fam_group[f], m, [f])
    for gname in group_names:
        for m in modes:
            add_row(gname, gname, m, [f for f in families if fam_group[f] == gname])
    for m in modes:
        add_row(OVERALL, OVERALL, m, families)
    return pd.DataFrame(
        rows,
        columns=[
            *EPG_COLUMNS,
            *EPG_EXTRA_COLUMNS,
            *EPG_STAT_COLUMNS,
            *LAYER_EXTRA_COLUMNS,
            *EPG_TASK_COLUMNS,
        ],
    )


def _layer_of(ex: pd.DataFrame) -> str:
    """The energy layer an executions frame was computed from (one per frame)."""
    return str(ex["energy_layer"].iloc[0]) if "energy_layer" in ex.columns and len(ex) else "attributed"


def _layer_flags(ex: pd.DataFrame) -> list[str]:
    if "layer_flags" not in ex.columns or not len(ex):
        return []
    return [f for f in str(ex["layer_flags"].iloc[0]).split(";") if f]


def goal_clusters(goal_ids: Iterable[str], values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` summed per goal (goals in sorted order): one bootstrap unit per goal.

    A goal's reps share the goal's difficulty, so they are not independent draws; summing
    them makes the goal the unit that is resampled. A NaN in a goal's rows stays NaN.
    """
    values = np.asarray(values, dtype=float)
    values = values.reshape(len(values), -1) if values.ndim != 2 else values
    uniq, codes = np.unique(np.asarray(list(goal_ids), dtype=str), return_inverse=True)
    out = np.zeros((len(uniq), values.shape[1]))
    np.add.at(out, codes, values)
    return out


def _sufficient(
    res: BootstrapResult, n_goals: Sequence[int], cfg: MetricsConfig
) -> tuple[BootstrapResult, bool]:
    """``(res, False)`` with the interval expanded for the goal counts (:func:`expanded_level`),
    or ``res`` without its interval and ``True`` when the data cannot support one.

    That is when a stratum (a family) has fewer than ``cfg.min_goals`` goals, or when more
    than :data:`MAX_DEGENERATE_SHARE` of the resamples are degenerate. The estimate stays.
    """
    if res.method == "none":
        return res, False
    few = min(n_goals, default=0) < int(cfg.min_goals)
    degenerate = res.n_degenerate > MAX_DEGENERATE_SHARE * res.n_resamples
    if not (few or degenerate):
        res = replace(res, n_min=min(n_goals), df=sum(n - 1 for n in n_goals))
        lo, hi, method = _interval(res, float(cfg.level))
        return replace(res, ci_low=lo, ci_high=hi, method=method), False
    return BootstrapResult(res.estimate, math.nan, math.nan, "none", res.n_resamples, res.n_degenerate), True


def _pairs(ex: pd.DataFrame, families: Sequence[str]) -> dict[str, tuple[np.ndarray, int, int, str]]:
    """Per family: its complete ``(goal_id, rep)`` pairs summed per goal as (n_goals, 4)
    values (E_agentic, S_agentic, E_linear, S_linear), the number of complete pairs, the
    number of incomplete pairs (a mode missing) and the energy source of the complete ones."""
    sub = ex[ex["mode"].isin(MODES)]
    wide = sub.set_index(["family", "goal_id", "rep", "mode"])[
        ["energy_j", "success", "energy_source"]
    ].unstack("mode")
    fam_of = wide.index.get_level_values("family")
    has = {
        m: wide[("success", m)].notna().to_numpy()
        if ("success", m) in wide.columns
        else np.zeros(len(wide), bool)
        for m in MODES
    }
    both = has["agentic"] & has["linear"]
    goal_ids = wide.index.get_level_values("goal_id").to_numpy()
    cols = [("energy_j", "agentic"), ("success", "agentic"), ("energy_j", "linear"), ("success", "linear")]
    vals_all = (
        np.column_stack([wide[c].to_numpy(float) for c in cols]) if both.any() else np.zeros((len(wide), 4))
    )
    src_a = wide[("energy_source", "agentic")].to_numpy(object) if both.any() else np.zeros(0, object)
    src_l = wide[("energy_source", "linear")].to_numpy(object) if both.any() else np.zeros(0, object)
    out: dict[str, tuple[np.ndarray, int, int, str]] = {}
    for f in families:
        in_f = np.asarray(fam_of == f)
        sel = in_f & both
        n_missing = int(np.count_nonzero(in_f & ~both))
        if not sel.any():
            out[f] = (np.zeros((0, 4)), 0, n_missing, combine_sources([]))
            continue
        src = combine_sources(list(src_a[sel]) + list(src_l[sel]))
        out[f] = (goal_clusters(goal_ids[sel], vals_all[sel]), int(sel.sum()), n_missing, src)
    return out


def _family_epgs(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-family EpG(agentic), EpG(linear) from per-family totals (..., S, 4)."""
    return epg_stat(t[..., 0:2]), epg_stat(t[..., 2:4])


def ratio_of_means_stat(t: np.ndarray) -> np.ndarray:
    """Mean EpG(agentic) over families / mean EpG(linear) over the same families (the paper's)."""
    a, lin = _family_epgs(t)
    with np.errstate(all="ignore"):
        return a.mean(axis=-1) / lin.mean(axis=-1)


def geomean_ooi_stat(t: np.ndarray) -> np.ndarray:
    """Geometric mean of the family OOIs (= geometric-mean EpG(agentic) / geometric-mean EpG(linear))."""
    a, lin = _family_epgs(t)
    with np.errstate(all="ignore"):
        return np.exp(np.log(a / lin).mean(axis=-1))


def pooled_ratio_stat(t: np.ndarray) -> np.ndarray:
    """EpG(agentic) / EpG(linear) of the families' pooled energy and successes."""
    return ooi_stat(t.sum(axis=-2))


def any_family_degenerate(t: np.ndarray) -> np.ndarray:
    """A resample in which some family has no success in a mode (its EpG is inf there)."""
    return ((t[..., 1] <= 0) | (t[..., 3] <= 0)).any(axis=-1)


def pooled_degenerate(t: np.ndarray) -> np.ndarray:
    return ooi_degenerate(t.sum(axis=-2))


POOLED_STATS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "ratio_of_means": (ratio_of_means_stat, any_family_degenerate),
    "geomean_ooi": (geomean_ooi_stat, any_family_degenerate),
    "pooled_ratio": (pooled_ratio_stat, pooled_degenerate),
}


def _pooled_epgs(estimand: str, t: np.ndarray) -> tuple[float, float]:
    """The EpG pair whose ratio is the estimand: means, geometric means or pooled EpGs."""
    if estimand == "pooled_ratio":
        s = t.sum(axis=0)
        return float(epg_stat(s[None, 0:2])[0]), float(epg_stat(s[None, 2:4])[0])
    a, lin = _family_epgs(t)
    with np.errstate(all="ignore"):
        if estimand == "geomean_ooi":
            return float(np.exp(np.log(a).mean())), float(np.exp(np.log(lin).mean()))
        return float(a.mean()), float(lin.mean())


def estimand_order(headline: str) -> list[str]:
    """The pooled estimands of a scope, headline first (the figures draw the first)."""
    return [headline, *(e for e in POOLED_ESTIMANDS if e != headline)]


def ooi_table(
    goals: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The ooi.csv table (contract columns, then :data:`OOI_EXTRA_COLUMNS`, :data:`OOI_STAT_COLUMNS`)."""
    return ooi_from_executions(executions(goals, cfg.energy_layer), cfg, groups)


def ooi_from_executions(
    ex: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The ooi.csv table from an :func:`executions` frame (what :func:`ooi_table` returns)."""
    families = _ordered(ex["family"], BUILTIN_FAMILIES)
    fam_group = {f: group_of(f, groups) for f in families}
    group_names = _ordered(fam_group.values(), GROUPS)
    B = int(cfg.bootstrap)
    level = float(cfg.level)

    strata: dict[str, Stratum] = {}
    n_pairs: dict[str, int] = {}
    missing: dict[str, int] = {}
    sources: dict[str, str] = {}
    paired = _pairs(ex, families)
    for f in families:
        vals, n_complete, n_missing, src = paired[f]
        strata[f] = make_stratum(f, vals, B, stratum_rng(cfg.seed, f"ooi\0{f}"))
        n_pairs[f], missing[f], sources[f] = n_complete, n_missing, src

    def totals(f: str) -> np.ndarray:
        return strata[f].values.sum(axis=0)

    def undefined_flags(f: str) -> list[str | None]:
        t = totals(f)
        return [
            "no_pairs" if n_pairs[f] == 0 else None,
            "zero_successes_agentic" if n_pairs[f] and t[1] == 0 else None,
            "zero_successes_linear" if n_pairs[f] and t[3] == 0 else None,
        ]

    # An EpG without a success is undefined (inf), so is a ratio with one: no estimate and
    # no interval, never the arithmetic 0 or inf (the flags say why). Pooled estimands
    # take only the families whose OOI is defined.
    defined = {f: not any(undefined_flags(f)) for f in families}
    rows: list[dict[str, Any]] = []
    results: list[BootstrapResult | None] = []

    def add_row(scope: str, estimand: str, members: list[str]) -> None:
        inside = members if estimand == FAMILY_ESTIMAND else [f for f in members if defined[f]]
        st = [strata[f] for f in inside]
        t = np.stack([totals(f) for f in inside]) if inside else np.zeros((0, 4))
        if estimand == FAMILY_ESTIMAND:
            stat, degen = pooled_ratio_stat, pooled_degenerate
            ok = defined[members[0]]
            epg_a, epg_l = _pooled_epgs("pooled_ratio", t)
            extra = undefined_flags(members[0])
        else:
            stat, degen = POOLED_STATS[estimand]
            ok = bool(inside)
            epg_a, epg_l = _pooled_epgs(estimand, t) if inside else (math.nan, math.nan)
            extra = [f"excluded:{f}" for f in members if not defined[f]]
        boot = bootstrap_strata(st, stat, degen, level)
        res, short = _sufficient(boot, [len(s.values) for s in st], cfg) if ok else (None, False)
        results.append(res if estimand == FAMILY_ESTIMAND and res and res.method != "none" else None)
        rows.append(
            {
                "scope": scope,
                "ooi": res.estimate if res else math.nan,
                "ci_low": res.ci_low if res else math.nan,
                "ci_high": res.ci_high if res else math.nan,
                "n_pairs": sum(n_pairs[f] for f in inside),
                "method": res.method if res else "none",
                "B": B,
                "level": level,
                "n_missing_pairs": sum(missing[f] for f in members),
                "n_degenerate_resamples": boot.n_degenerate,
                "epg_agentic_j": epg_a,
                "epg_linear_j": epg_l,
                "energy_source": combine_sources(sources[f] for f in inside if n_pairs[f]),
                "flags": _flags(
                    *extra,
                    "insufficient_data" if short else None,
                    "missing_energy" if len(t) and bool(np.isnan(t).any()) else None,
                    *_layer_flags(ex),
                ),
                "estimand": estimand,
                "n_goals": sum(len(s.values) for s in st),
                "ci_low_adj": math.nan,
                "ci_high_adj": math.nan,
                "p_value": p_value(res) if res and res.method != "none" else math.nan,
                "p_value_holm": math.nan,
                "energy_layer": _layer_of(ex),
            }
        )

    for f in families:
        add_row(f, FAMILY_ESTIMAND, [f])
    for scope, members in [
        *((g, [f for f in families if fam_group[f] == g]) for g in group_names),
        (OVERALL, families),
    ]:
        for estimand in estimand_order(cfg.pooled_estimand):
            add_row(scope, estimand, members)
    out = pd.DataFrame(
        rows, columns=[*OOI_COLUMNS, *OOI_EXTRA_COLUMNS, *OOI_STAT_COLUMNS, *LAYER_EXTRA_COLUMNS]
    )
    return _adjust_families(out, results, level)


def _adjust_families(
    ooi: pd.DataFrame, results: Sequence[BootstrapResult | None], level: float
) -> pd.DataFrame:
    """Bonferroni-simultaneous intervals and Holm p-values over the family rows that have an interval."""
    tested = [i for i, r in enumerate(results) if r is not None]
    m = len(tested)
    if m == 0:
        return ooi
    level_adj = 1.0 - (1.0 - level) / m
    adj = np.array([interval_at(results[i], level_adj) for i in tested])  # type: ignore[arg-type]
    ooi.loc[tested, "ci_low_adj"], ooi.loc[tested, "ci_high_adj"] = adj[:, 0], adj[:, 1]
    ooi.loc[tested, "p_value_holm"] = holm(ooi.loc[tested, "p_value"].to_numpy(float))
    return ooi


def compute_tables(
    goals_df: pd.DataFrame, cfg: MetricsConfig | None = None, groups: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(epg_df, ooi_df)`` from a goals table. Same inputs and seed -> identical tables."""
    cfg = cfg or MetricsConfig()
    ex = executions(goals_df, cfg.energy_layer)
    return _epg_from_executions(ex, cfg, groups), ooi_from_executions(ex, cfg, groups)


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


def _json_value(v: Any) -> Any:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        x = float(v)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return v


def table_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: ``inf`` -> ``"inf"``, ``-inf`` -> ``"-inf"``, NaN -> ``None``."""
    cols = list(df.columns)
    return [{c: _json_value(v) for c, v in zip(cols, row, strict=True)} for row in df.itertuples(index=False)]


def tables_to_json(epg_df: pd.DataFrame, ooi_df: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The ``alems metrics --json`` document: ``{"epg": [...], "ooi": [...]}``."""
    return {"epg": table_records(epg_df), "ooi": table_records(ooi_df)}


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        x = float(v)
        if math.isnan(x):
            return "-"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.4g}"
    return str(v)


def format_tables(epg_df: pd.DataFrame, ooi_df: pd.DataFrame) -> str:
    """A readable text rendering of both tables (for the terminal)."""
    epg_cols = [
        "family",
        "mode",
        "executions",
        "successes",
        "success_rate",
        "epg_j",
        "epg_ci_low",
        "epg_ci_high",
        "epg_success_only_j",
        "energy_source",
        "flags",
    ]
    ooi_cols = [
        "scope",
        "ooi",
        "ci_low",
        "ci_high",
        "n_pairs",
        "n_missing_pairs",
        "method",
        "n_degenerate_resamples",
        "flags",
    ]
    if "estimand" in ooi_df.columns:
        ooi_cols[1:1] = ["estimand"]
        ooi_cols[-1:-1] = ["n_goals", "ci_low_adj", "ci_high_adj", "p_value_holm"]
    parts = []
    for title, df, cols in (("EpG (J per successful goal)", epg_df, epg_cols), ("OOI", ooi_df, ooi_cols)):
        shown = df[cols].map(_fmt) if len(df) else df[cols]
        parts.append(f"{title}\n{shown.to_string(index=False) if len(df) else '(no rows)'}")
    if len(epg_df):
        b, level = int(epg_df["B"].iloc[0]), float(epg_df["level"].iloc[0])
        parts.append(
            f"bootstrap: B={b}, level={level:g} (paired; goals resampled within each family; "
            "*_adj: Bonferroni over families, p_value_holm: Holm)"
        )
        if "energy_layer" in epg_df.columns:
            parts.append(
                f"energy layer: {epg_df['energy_layer'].iloc[0]} (alems metrics --layer total|dynamic|attributed)"
            )
    srcs = list(epg_df["energy_source"]) + list(ooi_df["energy_source"])
    if any(s in ("modeled", "mixed") for s in srcs):
        parts.append("note: these tables contain modeled energy (energy_source modeled/mixed)")
    return "\n\n".join(parts)


def parse_group_args(items: Sequence[str]) -> dict[str, str]:
    """``["fam=group", ...]`` (the CLI's ``--group``) -> mapping."""
    out: dict[str, str] = {}
    for item in items:
        fam, sep, grp = item.partition("=")
        if not sep or not fam or not grp:
            raise ConfigError(f"--group {item!r} is not FAMILY=GROUP", "write e.g. --group my_family=tool")
        out[fam.strip()] = grp.strip()
    return out
