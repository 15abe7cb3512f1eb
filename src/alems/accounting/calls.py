"""The calls table (``calls.csv``: one row per LLM or tool call) and the conservation check.

:func:`calls_table` lays out the per-call energies accounting measured (each call window
has its own L0-L2, as the phases do) next to the identity of the attempt it belongs to;
the calls of an attempt sum to its ``llm`` and ``tool`` phases in every layer.
:func:`conservation_residual` checks that, and that the phases sum to the attempt's
energy in every layer, as the largest relative residual over the rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from alems.accounting.events import AttemptKey, CallInfo, parse_events
from alems.accounting.goals import outcome_frame
from alems.contracts import CALLS_COLUMNS, LAYER_PHASE_COLUMNS
from alems.io import atomic_write_with

CALL_LAYER_COLUMNS: dict[str, str] = {"total": "raw_j", "dynamic": "dynamic_j", "attributed": "attributed_j"}
"""The calls.csv energy column of each layer."""

_ATTEMPT_LAYER = {"total": "raw_j", "dynamic": "dynamic_j", "attributed": "attributed_j"}


def empty_calls() -> pd.DataFrame:
    """A calls table with the contract's columns and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in CALLS_COLUMNS})


def calls_table(
    outcomes: pd.DataFrame,
    keys: Sequence[AttemptKey],
    frames: Sequence[pd.DataFrame],
    source: str,
    run_id: str,
) -> pd.DataFrame:
    """The calls.csv rows from the per-phase call frames (column ``_row``: the outcome row).

    Calls are numbered from 0 within their attempt in order of start time (``call``)."""
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_calls()
    df = pd.concat(parts, ignore_index=True).sort_values(["_row", "t0", "kind"], kind="mergesort")
    rows = df["_row"].to_numpy(dtype=int)
    df["family"] = outcomes["family"].astype(str).to_numpy()[rows]
    df["mode"] = [keys[r][2] for r in rows]
    df["goal_id"] = [keys[r][0] for r in rows]
    df["rep"] = [keys[r][1] for r in rows]
    df["attempt"] = [keys[r][3] for r in rows]
    df["call"] = df.groupby("_row").cumcount().to_numpy()
    df["duration_s"] = df["t1"] - df["t0"]
    df["energy_source"] = source
    df["run_id"] = str(run_id)
    df["flags"] = np.where(df["_alpha_fallback"].to_numpy(bool), "phase_alpha_fallback", "")
    return df[list(CALLS_COLUMNS)].reset_index(drop=True)


def _relative(diff: np.ndarray, scale: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(diff) / np.maximum(np.abs(scale), 1e-12)


def conservation_residual(goals: pd.DataFrame, calls: pd.DataFrame | None = None) -> float:
    """The largest relative residual of the run's energy bookkeeping, over rows and layers.

    For every attempt and every layer whose columns the table has: |llm + tool +
    orchestration − attempt energy| / |attempt energy|, and (with ``calls``) |Σ its LLM
    calls − llm| and |Σ its tool calls − tool|, relative to the attempt energy. NaN rows
    (no attempt window) are skipped; 0.0 for a table with none to check; NaN when the
    table has no phase columns at all."""
    worst = math.nan
    by_attempt = _call_sums(calls)
    for layer, (llm_c, tool_c, orch_c) in LAYER_PHASE_COLUMNS.items():
        e_col = _ATTEMPT_LAYER[layer]
        if not all(c in goals.columns for c in (e_col, llm_c, tool_c, orch_c)):
            continue
        e = goals[e_col].to_numpy(float)
        llm, tool = goals[llm_c].to_numpy(float), goals[tool_c].to_numpy(float)
        res = [_relative(llm + tool + goals[orch_c].to_numpy(float) - e, e)]
        if by_attempt is not None:
            sums = _aligned(goals, by_attempt, CALL_LAYER_COLUMNS[layer])
            res += [_relative(sums[0] - llm, e), _relative(sums[1] - tool, e)]
        vals = np.concatenate(res)
        vals = vals[np.isfinite(vals)]
        worst = max(0.0 if math.isnan(worst) else worst, float(vals.max()) if len(vals) else 0.0)
    return worst


def _call_sums(calls: pd.DataFrame | None) -> pd.DataFrame | None:
    if calls is None:
        return None
    if not len(calls):
        return pd.DataFrame()
    c = calls.assign(goal_id=calls["goal_id"].astype(str), rep=calls["rep"].astype(int))
    return c.groupby(["goal_id", "rep", "mode", "attempt", "kind"])[list(CALL_LAYER_COLUMNS.values())].sum()


def _aligned(goals: pd.DataFrame, sums: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Per goals row: the sum of its LLM calls' and its tool calls' ``col`` (0 without calls)."""
    if not len(sums):
        return np.zeros(len(goals)), np.zeros(len(goals))
    ids: list[Any] = [
        goals["goal_id"].astype(str).to_numpy(),
        goals["rep"].astype(int).to_numpy(),
        goals["mode"].astype(str).to_numpy(),
        goals["attempt"].astype(int).to_numpy(),
    ]
    out = []
    for kind in ("llm", "tool"):
        idx = pd.MultiIndex.from_arrays([*ids, np.full(len(goals), kind)], names=sums.index.names)
        out.append(sums[col].reindex(idx).fillna(0.0).to_numpy(float))
    return out[0], out[1]


def write_calls(calls: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a calls table atomically as CSV."""
    atomic_write_with(path, lambda tmp: calls.to_csv(tmp, index=False))


def events_calls(events: Any, outcomes: Any, run_id: str, source: str = "none") -> pd.DataFrame:
    """The calls table of a run without energy (no meter): windows, roles and tokens from the
    event log, the energy columns empty."""
    outcomes = outcome_frame(outcomes)
    windows = parse_events(events)
    keys = [
        (str(g), int(r), str(m), int(a))
        for g, r, m, a in zip(
            outcomes["goal_id"], outcomes["rep"], outcomes["mode"], outcomes["attempt"], strict=True
        )
    ]
    frames = []
    for kind in ("llm", "tool"):
        recs = []
        for row, k in enumerate(keys):
            w = windows.get(k)
            if w is None:
                continue
            spans, infos = (w.llm, w.llm_info) if kind == "llm" else (w.tool, w.tool_info)
            recs += [_info_record(row, span, info) for span, info in zip(spans, infos, strict=True)]
        frames.append(pd.DataFrame(recs))
    return calls_table(outcomes, keys, frames, source, run_id)


def _info_record(row: int, span: tuple[float, float], c: CallInfo) -> dict[str, Any]:
    nan = math.nan
    return {
        "_row": row,
        "kind": c.kind,
        "role": c.role,
        "t0": span[0],
        "t1": span[1],
        "tokens_in": c.tokens_in,
        "tokens_out": c.tokens_out,
        "raw_j": nan,
        "dynamic_j": nan,
        "attributed_j": nan,
        "prefill_s": c.prefill_s,
        "decode_s": c.decode_s,
        "prefill_j": nan,
        "decode_j": nan,
        "tokens_estimated": c.tokens_estimated,
        "error": c.error,
        "_alpha_fallback": False,
    }
