"""From goals.csv to executions: reading the goals tables, the energy of a layer, one row
per execution ``(family, mode, goal_id, rep)``, the family's group, and the per-goal units
(clusters, complete pairs) the bootstrap resamples."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alems.accounting import as_bool, combine_sources
from alems.contracts import (
    ENERGY_LAYERS,
    GOALS_REQUIRED,
    LAYER_PHASE_COLUMNS,
    LAYER_SOURCE_COLUMNS,
    MODES,
    default_group,
)
from alems.errors import AlemsError, ConfigError

EXECUTION_KEYS: tuple[str, ...] = ("family", "mode", "goal_id", "rep")
"""The columns that name an execution."""


class MetricsInputError(AlemsError):
    """A goals table cannot be turned into metrics (missing file or columns)."""


# --------------------------------------------------------------------------- groups and order
def group_of(family: str, groups: Mapping[str, str] | None = None) -> str:
    """The group of ``family``: from ``groups`` if listed, else ``tool`` for ``tg_*``, else ``reasoning``."""
    if groups and family in groups:
        return str(groups[family])
    return default_group(family)


def ordered(names: Iterable[str], known: Sequence[str]) -> list[str]:
    """The distinct ``names``: those in ``known`` in its order, then the others sorted."""
    uniq = set(names)
    return [n for n in known if n in uniq] + sorted(uniq - set(known))


# --------------------------------------------------------------------------- goals tables
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


# --------------------------------------------------------------------------- executions
def executions(goals: pd.DataFrame, layer: str = "attributed") -> pd.DataFrame:
    """One row per execution ``(family, mode, goal_id, rep)``, energy from ``layer``
    (:func:`layer_energy`; the default is the goals table's ``energy_j``).

    Columns: ``family, mode, goal_id, rep, energy_j`` (Σ energy_j + gap_j over attempts,
    NaN if any is NaN), ``success`` (final attempt's), ``attempts``, ``energy_source``,
    ``low_coverage`` (attempts flagged low_coverage), ``truncated`` (the final attempt's
    ``check_reason`` is ``truncated``; NaN without a ``check_reason`` column), and the work
    the OOI decomposition needs, over all attempts: ``llm_calls``, ``tokens`` (in + out) and
    ``llm_energy_j`` (the layer's LLM phase, :data:`~alems.contracts.LAYER_PHASE_COLUMNS`;
    NaN where the table has no such column, as goals.csv files written before the phases of
    every layer, or where any attempt's is NaN); ``wasted_j``: the energy of every attempt
    that is not the final attempt of a successful execution, with the gaps (all of a failed
    execution; for a successful one, its failed attempts and every gap, the retry cycles).
    """
    missing = [c for c in GOALS_REQUIRED if c not in goals.columns]
    if missing:
        raise MetricsInputError(
            f"goals table lacks column(s) {missing}",
            "pass a goals.csv written by alems.accounting (DESIGN.md, goals.csv contract)",
        )
    goals = goals.reset_index(drop=True)
    e_layer, used_layer, flags = layer_energy(goals, layer)
    attempts = _attempts(goals, e_layer, LAYER_PHASE_COLUMNS[used_layer][0])
    attempts["u"] = goals[LAYER_SOURCE_COLUMNS[used_layer][0]].astype(float)
    out = _per_execution(attempts)
    out["energy_layer"] = used_layer
    out["layer_flags"] = ";".join(flags)
    return out


def _numeric(goals: pd.DataFrame, col: str) -> pd.Series | float:
    """A numeric column of ``goals`` (NaN where it is absent)."""
    return goals[col].astype(float) if col in goals.columns else np.nan


def _attempts(goals: pd.DataFrame, energy: pd.Series, llm_col: str) -> pd.DataFrame:
    """One row per attempt with the columns :func:`_per_execution` aggregates (``e``: its energy,
    ``l``: its LLM phase in the same layer, from ``llm_col``)."""
    return pd.DataFrame(
        {
            "family": goals["family"].astype(str),
            "mode": goals["mode"].astype(str),
            "goal_id": goals["goal_id"].astype(str),
            "rep": goals["rep"].astype(int),
            "attempt": goals["attempt"].astype(int),
            "success": as_bool(goals["success"]),
            "final": as_bool(goals["final_attempt"]),
            "e": energy,
            "src": goals["energy_source"].astype(str) if "energy_source" in goals.columns else "unknown",
            "lowcov": _low_coverage(goals),
            "cut": _truncated(goals),
            "calls": _numeric(goals, "llm_calls"),
            "tok": _numeric(goals, "tokens_in") + _numeric(goals, "tokens_out"),
            "l": _numeric(goals, llm_col),
        }
    )


def _low_coverage(goals: pd.DataFrame) -> pd.Series | bool:
    """Per attempt: its ``flags`` include ``low_coverage`` (False without a ``flags`` column)."""
    if "flags" not in goals.columns:
        return False
    return (
        goals["flags"]
        .astype(object)
        .where(goals["flags"].notna(), "")
        .astype(str)
        .str.contains(r"(?:^|;)low_coverage(?:;|$)", regex=True)
    )


def _truncated(goals: pd.DataFrame) -> pd.Series | float:
    """Per attempt: 1.0 where ``check_reason`` is ``truncated``, else 0.0 (NaN without the column)."""
    if "check_reason" not in goals.columns:
        return np.nan
    return (goals["check_reason"].astype(str) == "truncated").astype(float)


def _per_execution(g: pd.DataFrame) -> pd.DataFrame:
    """The attempts of :func:`_attempts` aggregated per execution (see :func:`executions`)."""
    keys = list(EXECUTION_KEYS)
    # final attempt: marked rows first, then by attempt number; take the last after sorting
    g = g.sort_values([*keys, "final", "attempt"], kind="mergesort")
    g["e_nan"] = g["e"].isna()
    g["l_nan"] = g["l"].isna()
    g["w_nan"] = g["calls"].isna() | g["tok"].isna()
    g["is_measured"] = g["src"] == "measured"
    g["is_modeled"] = g["src"] == "modeled"
    out = (
        g.groupby(keys, sort=True)
        .agg(
            energy_j=("e", "sum"),
            e_nan=("e_nan", "any"),
            success=("success", "last"),
            attempts=("attempt", "size"),
            low_coverage=("lowcov", "sum"),
            truncated=("cut", "last"),
            all_measured=("is_measured", "all"),
            all_modeled=("is_modeled", "all"),
            llm_calls=("calls", "sum"),
            tokens=("tok", "sum"),
            llm_energy_j=("l", "sum"),
            useful=("u", "last"),
            l_nan=("l_nan", "any"),
            w_nan=("w_nan", "any"),
        )
        .reset_index()
    )
    out.loc[out["e_nan"], "energy_j"] = np.nan
    out.loc[out["l_nan"], "llm_energy_j"] = np.nan
    out.loc[out["w_nan"], ["llm_calls", "tokens"]] = np.nan
    # waste: every attempt but the final attempt of a successful execution, gaps included
    out["wasted_j"] = out["energy_j"] - np.where(out["success"].astype(bool), out["useful"], 0.0)
    out = out.drop(columns=["useful"])
    out["energy_source"] = np.where(
        out["all_measured"], "measured", np.where(out["all_modeled"], "modeled", "mixed")
    )
    out = out.drop(columns=["e_nan", "l_nan", "w_nan", "all_measured", "all_modeled"])
    out["success"] = out["success"].astype(bool)
    out["low_coverage"] = out["low_coverage"].astype(int)
    return out


# --------------------------------------------------------------------------- per-goal units
def layer_of(ex: pd.DataFrame) -> str:
    """The energy layer an executions frame was computed from (one per frame)."""
    return str(ex["energy_layer"].iloc[0]) if "energy_layer" in ex.columns and len(ex) else "attributed"


def layer_flags(ex: pd.DataFrame) -> list[str]:
    """The flags :func:`layer_energy` raised for an executions frame (e.g. ``gap_attributed``)."""
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


PAIR_WORK_COLUMNS: tuple[str, ...] = ("executions", "llm_calls", "tokens", "llm_energy_j")
"""The work columns of a pair per mode, after (E_a, S_a, E_l, S_l): (X, C, T, L) agentic, then linear."""


def paired_goals(ex: pd.DataFrame, families: Sequence[str]) -> dict[str, tuple[np.ndarray, int, int, str]]:
    """Per family: its complete ``(goal_id, rep)`` pairs summed per goal as (n_goals, 12)
    values (E_agentic, S_agentic, E_linear, S_linear, then :data:`PAIR_WORK_COLUMNS` of the
    agentic and of the linear execution), the number of complete pairs, the number of
    incomplete pairs (a mode missing) and the energy source of the complete ones. The OOI
    reads the first four columns; its decomposition all of them, from the same resamples."""
    sub = ex[ex["mode"].isin(MODES)].assign(executions=1.0)
    for col in PAIR_WORK_COLUMNS:
        if col not in sub.columns:
            sub[col] = np.nan
    wide = sub.set_index(["family", "goal_id", "rep", "mode"])[
        ["energy_j", "success", "energy_source", *PAIR_WORK_COLUMNS]
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
    cols += [(c, m) for m in ("agentic", "linear") for c in PAIR_WORK_COLUMNS]
    vals_all = (
        np.column_stack([wide[c].to_numpy(float) for c in cols])
        if both.any()
        else np.zeros((len(wide), len(cols)))
    )
    src_a = wide[("energy_source", "agentic")].to_numpy(object) if both.any() else np.zeros(0, object)
    src_l = wide[("energy_source", "linear")].to_numpy(object) if both.any() else np.zeros(0, object)
    out: dict[str, tuple[np.ndarray, int, int, str]] = {}
    for f in families:
        in_f = np.asarray(fam_of == f)
        sel = in_f & both
        n_missing = int(np.count_nonzero(in_f & ~both))
        if not sel.any():
            out[f] = (np.zeros((0, len(cols))), 0, n_missing, combine_sources([]))
            continue
        src = combine_sources(list(src_a[sel]) + list(src_l[sel]))
        out[f] = (goal_clusters(goal_ids[sel], vals_all[sel]), int(sel.sum()), n_missing, src)
    return out
