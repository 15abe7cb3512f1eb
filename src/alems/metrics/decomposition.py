"""Why an OOI is what it is: its exact decomposition into five factors, with intervals.

For mode m, over the complete pairs of a scope (every attempt, gaps included: the
executions the OOI is computed over), X = executions, S = successful executions,
C = LLM calls, T = tokens in + out, L = LLM-phase energy and E = the layer's energy::

    success          = (S_lin/X_lin) / (S_ag/X_ag)
    calls            = (C_ag/X_ag)   / (C_lin/X_lin)
    tokens_per_call  = (T_ag/C_ag)   / (T_lin/C_lin)
    llm_j_per_token  = (L_ag/T_ag)   / (L_lin/T_lin)
    non_llm          = (E_ag/L_ag)   / (E_lin/L_lin)

The product telescopes to (E_ag/S_ag) / (E_lin/S_lin) = OOI, exactly: for every family
(its own OOI) and for the pooled scopes under ``pooled_ratio`` (pooled energy over pooled
successes, the one pooled estimand that factors). "Structure" is calls x tokens_per_call x
non_llm, "inference compute" is llm_j_per_token, and success is what orchestration buys.

Each factor's interval comes from the **same** goal resamples as the OOI's: the families'
pair strata (:func:`alems.metrics.tables.family_pairs`) carry X, C, T and L of both modes
beside E and S, so one draw gives every factor and the OOI. A factor is undefined where
one of its four totals is zero (no success, no LLM call, no token, no LLM energy) or
unknown (a goals table without the layer's LLM phase column): its value is empty and
flagged, never ``inf`` or 0. A resample in which it is undefined gives NaN, is left out of
the quantiles and counted in ``n_degenerate_resamples`` (more than 5 %: no interval,
``insufficient_data``). ``log_share`` = log(factor) / log(OOI): the factors' shares of
the OOI on the log scale (they sum to 1 where all are defined and positive; empty where
a factor or the OOI is not positive, or the OOI is exactly 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from alems.contracts import BUILTIN_FAMILIES, ENERGY_LAYERS
from alems.metrics.bootstrap import BootstrapResult, bootstrap_strata, sufficient_interval
from alems.metrics.config import MetricsConfig
from alems.metrics.estimands import FAMILY_ESTIMAND, pooled_degenerate, pooled_ratio_stat
from alems.metrics.executions import executions, group_of, layer_of, ordered
from alems.metrics.tables import (
    FamilyPairs,
    epg_from_executions,
    family_pairs,
    ooi_from_executions,
    ooi_scopes,
)

DECOMPOSITION_COLUMNS: tuple[str, ...] = (
    "scope",
    "estimand",
    "energy_layer",
    "factor",
    "value",
    "ci_low",
    "ci_high",
    "log_share",
    "flags",
)
DECOMPOSITION_EXTRA_COLUMNS: tuple[str, ...] = (
    "ci_method",
    "n_goals",
    "n_degenerate_resamples",
    "B",
    "level",
)
"""Written after :data:`DECOMPOSITION_COLUMNS` (optional for readers)."""

FACTORS: tuple[str, ...] = ("success", "calls", "tokens_per_call", "llm_j_per_token", "non_llm")
"""The factors, in the order of the product; the table adds a row ``ooi`` (their product)."""
OOI_FACTOR = "ooi"
POOLED = "pooled_ratio"

# columns of a pair stratum (alems.metrics.executions.paired_goals)
_E_A, _S_A, _E_L, _S_L = 0, 1, 2, 3
_QUANTITY = {"X": 4, "C": 5, "T": 6, "L": 7}  # agentic; linear = + 4
_NAMES = {
    "X": "executions",
    "S": "successes",
    "C": "llm_calls",
    "T": "tokens",
    "L": "llm_energy",
    "E": "energy",
}

# factor = (q_ag / r_ag) / (q_lin / r_lin)
_FACTOR_TERMS: dict[str, tuple[str, str]] = {
    "success": ("X", "S"),  # (S_lin/X_lin)/(S_ag/X_ag) = (X_ag/S_ag)/(X_lin/S_lin)
    "calls": ("C", "X"),
    "tokens_per_call": ("T", "C"),
    "llm_j_per_token": ("L", "T"),
    "non_llm": ("E", "L"),
}


def _col(q: str, mode: str) -> int:
    if q == "E":
        return _E_A if mode == "agentic" else _E_L
    if q == "S":
        return _S_A if mode == "agentic" else _S_L
    return _QUANTITY[q] + (0 if mode == "agentic" else 4)


def _terms(factor: str) -> tuple[int, int, int, int]:
    q, r = _FACTOR_TERMS[factor]
    return _col(q, "agentic"), _col(r, "agentic"), _col(q, "linear"), _col(r, "linear")


def factor_of_totals(factor: str, totals: np.ndarray) -> np.ndarray:
    """``factor`` of pooled totals (..., k): NaN where one of its four totals is 0 or NaN."""
    qa, ra, ql, rl = (totals[..., i] for i in _terms(factor))
    ok = (qa != 0) & (ra != 0) & (ql != 0) & (rl != 0)
    with np.errstate(all="ignore"):
        return np.where(ok, (qa / ra) / (ql / rl), np.nan)


def _factor_stat(factor: str) -> Callable[[np.ndarray], np.ndarray]:
    def stat(t: np.ndarray) -> np.ndarray:
        return factor_of_totals(factor, t.sum(axis=-2))

    return stat


def _undefined_degenerate(factor: str) -> Callable[[np.ndarray], np.ndarray]:
    def degenerate(t: np.ndarray) -> np.ndarray:
        return np.isnan(factor_of_totals(factor, t.sum(axis=-2)))

    return degenerate


def _why_undefined(factor: str, totals: np.ndarray) -> list[str]:
    """The flags of a factor that is undefined on ``totals`` (k,): which total is 0 or unknown."""
    q, r = _FACTOR_TERMS[factor]
    out = []
    for name in (q, r):
        for mode in ("agentic", "linear"):
            v = totals[_col(name, mode)]
            if np.isnan(v):
                out.append("llm_energy_unavailable" if name == "L" else f"unknown_{_NAMES[name]}")
            elif v == 0:
                out.append(f"no_{_NAMES[name]}_{mode}")
    return sorted(set(out))


def _log_share(value: float, ooi: float) -> float:
    if not (value > 0 and ooi > 0) or ooi == 1.0 or not (math.isfinite(value) and math.isfinite(ooi)):
        return math.nan
    return math.log(value) / math.log(ooi)


def _interval(
    strata: Sequence[Any], stat: Any, degenerate: Any, cfg: MetricsConfig
) -> tuple[BootstrapResult, bool]:
    level = float(cfg.level)
    res = bootstrap_strata(strata, stat, degenerate, level)
    return sufficient_interval(res, [len(s.values) for s in strata], int(cfg.min_goals), level)


def _scope_rows(
    scope: str, estimand: str, inside: Sequence[str], pairs: Mapping[str, FamilyPairs], cfg: MetricsConfig
) -> list[dict[str, Any]]:
    """The rows of one scope: the five factors, then ``ooi``, with their intervals and flags."""
    strata = [pairs[f].stratum for f in inside]
    n_goals = sum(len(s.values) for s in strata)
    base = {"scope": scope, "estimand": estimand, "B": int(cfg.bootstrap), "level": float(cfg.level)}
    if not strata or n_goals == 0:
        return [
            {**base, "factor": f, "value": math.nan, "ci_low": math.nan, "ci_high": math.nan,
             "log_share": math.nan, "flags": "no_pairs", "ci_method": "none", "n_goals": 0,
             "n_degenerate_resamples": 0}
            for f in (*FACTORS, OOI_FACTOR)
        ]  # fmt: skip
    totals = np.stack([s.values.sum(axis=0) for s in strata]).sum(axis=0)
    ooi_res, ooi_short = _interval(strata, pooled_ratio_stat, pooled_degenerate, cfg)
    ooi_defined = bool(totals[_S_A] > 0 and totals[_S_L] > 0)
    ooi = ooi_res.estimate if ooi_defined else math.nan
    rows = []
    for f in FACTORS:
        value = float(factor_of_totals(f, totals))
        why = _why_undefined(f, totals) if math.isnan(value) else []
        res, short = (None, False)
        if not why:
            res, short = _interval(strata, _factor_stat(f), _undefined_degenerate(f), cfg)
        rows.append(_row(base, f, value, res, short, _log_share(value, ooi), why, n_goals))
    ooi_flags = [] if ooi_defined else _why_undefined("success", totals)
    ooi_short = ooi_short and ooi_defined
    ooi_share = 1.0 if math.isfinite(_log_share(ooi, ooi)) else math.nan
    rows.append(
        _row(
            base, OOI_FACTOR, ooi, ooi_res if ooi_defined else None, ooi_short, ooi_share, ooi_flags, n_goals
        )
    )
    return rows


def _row(
    base: Mapping[str, Any],
    factor: str,
    value: float,
    res: BootstrapResult | None,
    short: bool,
    log_share: float,
    flags: list[str],
    n_goals: int,
) -> dict[str, Any]:
    all_flags = [*flags, *(["insufficient_data"] if short else [])]
    if res is not None and res.method != "none" and value <= 0:
        all_flags.append("non_positive")
    return {
        **base,
        "factor": factor,
        "value": value if not flags else math.nan,
        "ci_low": res.ci_low if res is not None else math.nan,
        "ci_high": res.ci_high if res is not None else math.nan,
        "log_share": log_share,
        "flags": ";".join(sorted(set(all_flags))),
        "ci_method": res.method if res is not None else "none",
        "n_goals": n_goals,
        "n_degenerate_resamples": res.n_degenerate if res is not None else 0,
    }


def decomposition_from_executions(
    ex: pd.DataFrame,
    cfg: MetricsConfig,
    groups: Mapping[str, str] | None = None,
    pairs: Mapping[str, FamilyPairs] | None = None,
) -> pd.DataFrame:
    """The ooi_decomposition.csv rows of one layer from an :func:`executions` frame: every
    family, then each group and ``overall`` under ``pooled_ratio`` (over the families whose
    OOI is defined, as in ooi.csv). ``pairs``: the OOI's resampled pairs, so the factors and
    the OOI share their resamples (drawn here when not given)."""
    families = ordered(ex["family"], BUILTIN_FAMILIES)
    fam_group = {f: group_of(f, groups) for f in families}
    pairs = pairs if pairs is not None else family_pairs(ex, families, cfg)
    rows: list[dict[str, Any]] = []
    for scope, estimand, members in ooi_scopes(families, fam_group, POOLED):
        if estimand == FAMILY_ESTIMAND:
            rows += _scope_rows(scope, estimand, members, pairs, cfg)
        elif estimand == POOLED:
            inside = [f for f in members if pairs[f].defined]
            scope_rows = _scope_rows(scope, estimand, inside, pairs, cfg)
            excluded = [f"excluded:{f}" for f in members if not pairs[f].defined]
            for r in scope_rows:
                flags = {*filter(None, r["flags"].split(";")), *excluded}
                if not inside:
                    flags = (flags - {"no_pairs"}) | {"no_defined_family"}
                r["flags"] = ";".join(sorted(flags))
            rows += scope_rows
    out = pd.DataFrame(rows, columns=[*DECOMPOSITION_COLUMNS, *DECOMPOSITION_EXTRA_COLUMNS])
    out["energy_layer"] = layer_of(ex)
    return out


def compute_with_decomposition(
    goals_df: pd.DataFrame, cfg: MetricsConfig | None = None, groups: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(epg, ooi, decomposition)`` of the layer ``cfg.energy_layer``: the OOI and its factors
    from one draw of the families' pair resamples. The epg and ooi tables are those of
    :func:`~alems.metrics.tables.compute_tables`."""
    cfg = cfg or MetricsConfig()
    ex = executions(goals_df, cfg.energy_layer)
    families = ordered(ex["family"], BUILTIN_FAMILIES)
    pairs = family_pairs(ex, families, cfg)
    return (
        epg_from_executions(ex, cfg, groups),
        ooi_from_executions(ex, cfg, groups, pairs),
        decomposition_from_executions(ex, cfg, groups, pairs),
    )


def compute_layer_decomposition(
    goals_df: pd.DataFrame, cfg: MetricsConfig | None = None, groups: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`compute_with_decomposition` for every energy layer, stacked (``energy_layer``
    names each): epg_layers.csv, ooi_layers.csv and ooi_decomposition.csv."""
    cfg = cfg or MetricsConfig()
    parts = [
        compute_with_decomposition(goals_df, replace(cfg, energy_layer=layer), groups)
        for layer in ENERGY_LAYERS
    ]
    return tuple(pd.concat([p[i] for p in parts], ignore_index=True) for i in range(3))  # type: ignore[return-value]
