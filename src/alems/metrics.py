"""Metrics: Energy per Successful Goal (EpG), the Orchestration Overhead Index (OOI), and
their paired, stratified bootstrap confidence intervals.

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
  mode with ``family`` = ``group`` = ``overall``. ``ooi.csv`` has one row per family,
  then per group, then ``overall``. Groups come from the ``groups`` mapping (family ->
  group); a family not in it is ``tool`` when its name starts with ``tg_`` and
  ``reasoning`` otherwise.

Bootstrap (:func:`bootstrap_scope`):

- The resampling unit is the execution (EpG CI) or the ``(goal_id, rep)`` pair (OOI).
  Units are resampled with replacement **within each family** (stratified); a group or
  overall scope sums its families' resampled totals, so the family, group and overall
  intervals of one table share resamples.
- Each resample is a row of a count-weight matrix built with one ``bincount`` per
  stratum; totals are weighted column sums. There is no Python loop over resamples
  (large strata are processed in blocks of resamples to bound memory).
- The interval is **BCa** (bias correction from the share of resamples below the
  estimate, acceleration from a stratified jackknife) where it is defined: finite
  estimate, finite jackknife values that are not all equal, a bias-correction share
  strictly between 0 and 1. Otherwise it is the **percentile** interval; ``method`` (EpG:
  ``ci_method``) says which. ``none``: no interval (B = 0 or no data).
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
n_degenerate_resamples, flags``; ``ooi.csv`` adds ``n_missing_pairs,
n_degenerate_resamples, epg_agentic_j, epg_linear_j, energy_source, flags``. ``flags`` is
``;``-separated (``zero_successes``, ``zero_successes_agentic``, ``zero_successes_linear``,
``no_pairs``, ``missing_energy``, ``low_coverage:N`` = attempts under ``min_coverage``,
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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from alems.accounting import as_bool, combine_sources
from alems.errors import AlemsError, ConfigError
from alems.io import atomic_write_with

EPG_COLUMNS: tuple[str, ...] = (
    "family", "group", "mode", "executions", "successes", "success_rate", "energy_total_j",
    "epg_j", "epg_ci_low", "epg_ci_high", "epg_success_only_j", "energy_source",
)  # fmt: skip
EPG_EXTRA_COLUMNS: tuple[str, ...] = ("ci_method", "B", "level", "n_degenerate_resamples", "flags")
OOI_COLUMNS: tuple[str, ...] = ("scope", "ooi", "ci_low", "ci_high", "n_pairs", "method", "B", "level")
OOI_EXTRA_COLUMNS: tuple[str, ...] = (
    "n_missing_pairs", "n_degenerate_resamples", "epg_agentic_j", "epg_linear_j",
    "energy_source", "flags",
)  # fmt: skip

REASONING_FAMILIES: tuple[str, ...] = (
    "factual_qa", "science_qa", "logical_reasoning", "gsm8k_basic", "gsm8k_multi_step",
)  # fmt: skip
TOOL_FAMILIES: tuple[str, ...] = ("tg_single_calc", "tg_single_db", "tg_sequential_2")
KNOWN_FAMILIES: tuple[str, ...] = REASONING_FAMILIES + TOOL_FAMILIES
KNOWN_GROUPS: tuple[str, ...] = ("reasoning", "tool")
KNOWN_MODES: tuple[str, ...] = ("linear", "agentic")
OVERALL = "overall"

GOALS_REQUIRED: tuple[str, ...] = (
    "family", "mode", "goal_id", "rep", "attempt", "success", "final_attempt", "energy_j", "gap_j",
)  # fmt: skip

ENERGY_LAYERS: tuple[str, ...] = ("total", "dynamic", "attributed")
#: goals.csv columns of each energy layer: (attempt energy, energy between attempts).
LAYER_SOURCE_COLUMNS: dict[str, tuple[str, str]] = {
    "total": ("raw_j", "gap_raw_j"),
    "dynamic": ("dynamic_j", "gap_dynamic_j"),
    "attributed": ("energy_j", "gap_j"),
}
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
    confidence level; ``seed`` the generator seed (same seed -> identical tables).
    """

    bootstrap: int = 10_000
    level: float = 0.95
    seed: int = 0
    energy_layer: str = "total"

    def __post_init__(self) -> None:
        if isinstance(self.bootstrap, bool) or not isinstance(self.bootstrap, int | np.integer) or self.bootstrap < 0:
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
        if self.energy_layer not in ENERGY_LAYERS:
            raise ConfigError(
                f"metrics.energy_layer is {self.energy_layer!r}; it must be one of {list(ENERGY_LAYERS)}",
                "set `metrics: {energy_layer: total}` in the config (or pass --layer total)",
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
    return "tool" if family.startswith("tg_") else "reasoning"


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
    and the ``energy_layer`` column of every row says so (the CLI warns). A goals.csv written before the gap columns existed has no ``gap_raw_j`` /
    ``gap_dynamic_j``: where every ``gap_j`` is 0 there was no gap window, so the gap is 0
    in every layer; otherwise ``gap_j`` stands in, flagged ``gap_attributed``.
    """
    if layer not in ENERGY_LAYERS:
        raise ConfigError(f"energy layer {layer!r} is not one of {list(ENERGY_LAYERS)}",
                          "pass --layer total|dynamic|attributed")  # fmt: skip
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
    ``low_coverage`` (attempts flagged low_coverage).
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
                goals["flags"].astype(object).where(goals["flags"].notna(), "").astype(str)
                .str.contains(r"(?:^|;)low_coverage(?:;|$)", regex=True)
                if "flags" in goals.columns
                else False
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
    """One scope's estimate and interval."""

    estimate: float
    ci_low: float
    ci_high: float
    method: str  # "BCa" | "percentile" | "none"
    n_resamples: int
    n_degenerate: int


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
    lo = int(math.floor(h))
    hi = min(lo + 1, n - 1)
    a, b = float(sorted_x[lo]), float(sorted_x[hi])
    if a == b or h == lo:
        return a
    if math.isinf(a) or math.isinf(b):
        return a if math.isinf(a) else b  # the limit of interpolating towards an infinity
    return a + (h - lo) * (b - a)


def _acceleration(strata: Sequence[Stratum], total: np.ndarray, stat: Callable[[np.ndarray], np.ndarray]) -> float:
    """BCa acceleration from a stratified jackknife (leave one unit out of its stratum).

    a = Σ_s Σ_i (u_si / n_s)^3 / (6 (Σ_s Σ_i (u_si / n_s)^2)^(3/2)), with
    u_si = (n_s - 1)(mean_i θ_(-si) - θ_(-si)); single-stratum it is the usual formula.
    NaN where undefined (a non-finite jackknife value, or all of them equal).
    """
    num = 0.0
    den = 0.0
    for s in strata:
        n = len(s.values)
        if n < 2:
            continue
        with np.errstate(all="ignore"):
            theta = stat(total[None, :] - s.values)
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
    """Estimate and BCa (else percentile) interval of ``stat`` over the union of ``strata``.

    ``stat`` maps totals (..., k) to the statistic; ``degenerate`` marks resample totals to
    count as degenerate. Strata must share B.
    """
    k = strata[0].values.shape[1] if strata else 0
    n_units = sum(len(s.values) for s in strata)
    if n_units == 0:
        return BootstrapResult(math.nan, math.nan, math.nan, "none", 0, 0)
    total = np.zeros(k)
    for s in strata:
        total = total + s.values.sum(axis=0)
    with np.errstate(all="ignore"):
        estimate = float(stat(total[None, :])[0])
    b = strata[0].boot.shape[0]
    if b == 0:
        return BootstrapResult(estimate, math.nan, math.nan, "none", 0, 0)
    boot_total = np.zeros((b, k))
    for s in strata:
        boot_total = boot_total + s.boot
    with np.errstate(all="ignore"):
        theta = stat(boot_total)
    n_degenerate = int(np.count_nonzero(degenerate(boot_total)))
    theta = np.sort(theta[~np.isnan(theta)])
    if len(theta) == 0:
        return BootstrapResult(estimate, math.nan, math.nan, "none", b, n_degenerate)

    tail = (1.0 - level) / 2.0
    method = "percentile"
    q_lo, q_hi = tail, 1.0 - tail
    if math.isfinite(estimate):
        share_below = float(np.count_nonzero(theta < estimate)) / len(theta)
        accel = _acceleration(strata, total, stat)
        if 0.0 < share_below < 1.0 and math.isfinite(accel):
            z0 = float(ndtri(share_below))
            za, zb = float(ndtri(tail)), float(ndtri(1.0 - tail))
            qa = float(ndtr(z0 + (z0 + za) / (1.0 - accel * (z0 + za))))
            qb = float(ndtr(z0 + (z0 + zb) / (1.0 - accel * (z0 + zb))))
            if all(math.isfinite(q) and 0.0 <= q <= 1.0 for q in (qa, qb)):
                method, q_lo, q_hi = "BCa", qa, qb
    return BootstrapResult(
        estimate=estimate,
        ci_low=_quantile(theta, q_lo),
        ci_high=_quantile(theta, q_hi),
        method=method,
        n_resamples=b,
        n_degenerate=n_degenerate,
    )


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


def epg_table(goals: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The epg.csv table (contract columns, then :data:`EPG_EXTRA_COLUMNS`)."""
    return _epg_from_executions(executions(goals, cfg.energy_layer), cfg, groups)


def _epg_from_executions(ex: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None) -> pd.DataFrame:
    families = _ordered(ex["family"], KNOWN_FAMILIES)
    modes = _ordered(ex["mode"], KNOWN_MODES)
    fam_group = {f: group_of(f, groups) for f in families}
    group_names = _ordered(fam_group.values(), KNOWN_GROUPS)
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
                "flags": _flags(
                    "zero_successes" if s == 0 else None,
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
    return pd.DataFrame(rows, columns=[*EPG_COLUMNS, *EPG_EXTRA_COLUMNS, *LAYER_EXTRA_COLUMNS])


def _layer_of(ex: pd.DataFrame) -> str:
    """The energy layer an executions frame was computed from (one per frame)."""
    return str(ex["energy_layer"].iloc[0]) if "energy_layer" in ex.columns and len(ex) else "attributed"


def _layer_flags(ex: pd.DataFrame) -> list[str]:
    if "layer_flags" not in ex.columns or not len(ex):
        return []
    return [f for f in str(ex["layer_flags"].iloc[0]).split(";") if f]


def _pairs(ex: pd.DataFrame, family: str) -> tuple[np.ndarray, int, str]:
    """Complete pairs of ``family`` as (n, 4) values, the number of incomplete pairs, the source."""
    fam = ex[(ex["family"] == family) & ex["mode"].isin(KNOWN_MODES)]
    a = fam[fam["mode"] == "agentic"].set_index(["goal_id", "rep"])
    lin = fam[fam["mode"] == "linear"].set_index(["goal_id", "rep"])
    both = a.index.intersection(lin.index).sort_values()
    n_missing = len(a.index.union(lin.index)) - len(both)
    a, lin = a.loc[both], lin.loc[both]
    vals = np.column_stack(
        [
            a["energy_j"].to_numpy(float),
            a["success"].to_numpy(float),
            lin["energy_j"].to_numpy(float),
            lin["success"].to_numpy(float),
        ]
    ).reshape(len(both), 4)
    src = combine_sources(list(a["energy_source"]) + list(lin["energy_source"]))
    return vals, n_missing, src


def ooi_table(goals: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The ooi.csv table (contract columns, then :data:`OOI_EXTRA_COLUMNS`)."""
    return _ooi_from_executions(executions(goals, cfg.energy_layer), cfg, groups)


def _ooi_from_executions(ex: pd.DataFrame, cfg: MetricsConfig, groups: Mapping[str, str] | None) -> pd.DataFrame:
    families = _ordered(ex["family"], KNOWN_FAMILIES)
    fam_group = {f: group_of(f, groups) for f in families}
    group_names = _ordered(fam_group.values(), KNOWN_GROUPS)
    B = int(cfg.bootstrap)

    strata: dict[str, Stratum] = {}
    missing: dict[str, int] = {}
    sources: dict[str, str] = {}
    for f in families:
        vals, n_missing, src = _pairs(ex, f)
        strata[f] = make_stratum(f, vals, B, stratum_rng(cfg.seed, f"ooi\0{f}"))
        missing[f] = n_missing
        sources[f] = src

    rows: list[dict[str, Any]] = []

    def add_row(scope: str, members: list[str]) -> None:
        st = [strata[f] for f in members]
        n_pairs = sum(len(s.values) for s in st)
        total = sum((s.values.sum(axis=0) for s in st), np.zeros(4)) if n_pairs else np.full(4, np.nan)
        res = bootstrap_scope(st, ooi_stat, ooi_degenerate, float(cfg.level))
        with np.errstate(all="ignore"):
            epg_a = float(epg_stat(total[None, 0:2])[0]) if n_pairs else math.nan
            epg_l = float(epg_stat(total[None, 2:4])[0]) if n_pairs else math.nan
        # An EpG without a success is undefined (inf), so is a ratio with one: no
        # estimate and no interval, never the arithmetic 0 or inf (the flags say why).
        undefined = bool(n_pairs) and (total[1] == 0 or total[3] == 0)
        rows.append(
            {
                "scope": scope,
                "ooi": math.nan if undefined else res.estimate,
                "ci_low": math.nan if undefined else res.ci_low,
                "ci_high": math.nan if undefined else res.ci_high,
                "n_pairs": n_pairs,
                "method": "none" if undefined else res.method,
                "B": B,
                "level": float(cfg.level),
                "n_missing_pairs": sum(missing[f] for f in members),
                "n_degenerate_resamples": res.n_degenerate,
                "epg_agentic_j": epg_a,
                "epg_linear_j": epg_l,
                "energy_source": combine_sources(sources[f] for f in members if len(strata[f].values)),
                "flags": _flags(
                    "no_pairs" if n_pairs == 0 else None,
                    "zero_successes_agentic" if n_pairs and total[1] == 0 else None,
                    "zero_successes_linear" if n_pairs and total[3] == 0 else None,
                    "missing_energy" if n_pairs and bool(np.isnan(total).any()) else None,
                    *_layer_flags(ex),
                ),
                "energy_layer": _layer_of(ex),
            }
        )

    for f in families:
        add_row(f, [f])
    for gname in group_names:
        add_row(gname, [f for f in families if fam_group[f] == gname])
    add_row(OVERALL, families)
    return pd.DataFrame(rows, columns=[*OOI_COLUMNS, *OOI_EXTRA_COLUMNS, *LAYER_EXTRA_COLUMNS])


def compute_tables(
    goals_df: pd.DataFrame, cfg: MetricsConfig | None = None, groups: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(epg_df, ooi_df)`` from a goals table. Same inputs and seed -> identical tables."""
    cfg = cfg or MetricsConfig()
    ex = executions(goals_df, cfg.energy_layer)
    return _epg_from_executions(ex, cfg, groups), _ooi_from_executions(ex, cfg, groups)


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
        epg, ooi = compute_tables(goals_df, _with_layer(cfg, layer), groups)
        epgs.append(epg)
        oois.append(ooi)
    return pd.concat(epgs, ignore_index=True), pd.concat(oois, ignore_index=True)


def _with_layer(cfg: MetricsConfig, layer: str) -> MetricsConfig:
    from dataclasses import replace

    return replace(cfg, energy_layer=layer)


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
    epg_df: pd.DataFrame, ooi_df: pd.DataFrame, epg_path: str | os.PathLike[str], ooi_path: str | os.PathLike[str]
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
    epg_cols = ["family", "mode", "executions", "successes", "success_rate", "epg_j", "epg_ci_low",
                "epg_ci_high", "epg_success_only_j", "energy_source", "flags"]  # fmt: skip
    ooi_cols = ["scope", "ooi", "ci_low", "ci_high", "n_pairs", "n_missing_pairs", "method",
                "n_degenerate_resamples", "flags"]  # fmt: skip
    parts = []
    for title, df, cols in (("EpG (J per successful goal)", epg_df, epg_cols), ("OOI", ooi_df, ooi_cols)):
        shown = df[cols].map(_fmt) if len(df) else df[cols]
        parts.append(f"{title}\n{shown.to_string(index=False) if len(df) else '(no rows)'}")
    if len(epg_df):
        b, level = int(epg_df["B"].iloc[0]), float(epg_df["level"].iloc[0])
        parts.append(f"bootstrap: B={b}, level={level:g} (paired, stratified by family)")
        if "energy_layer" in epg_df.columns:
            parts.append(f"energy layer: {epg_df['energy_layer'].iloc[0]} (alems metrics --layer total|dynamic|attributed)")
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
