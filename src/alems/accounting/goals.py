"""The goals table: the agents' outcomes in, the ``goals.csv`` rows out.

:func:`outcome_frame` checks the outcomes against :data:`alems.contracts.OUTCOME_COLUMNS`;
:func:`goals_table` lays the per-attempt energies next to them in the contract's column
order (:data:`alems.contracts.GOALS_COLUMNS`, then :data:`GOALS_EXTRA_COLUMNS` and the
task columns the outcomes carry); :func:`write_goals` writes it atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from alems.accounting.errors import AccountingInputError
from alems.accounting.events import AttemptKey, AttemptWindows
from alems.contracts import GOALS_COLUMNS, GOALS_EXTRA_COLUMNS, GOALS_TASK_COLUMNS, OUTCOME_COLUMNS
from alems.io import atomic_write_with


@dataclass(frozen=True)
class AttemptRows:
    """Per outcome row (arrays of its length, NaN where the attempt has no window): the
    window, its energy in every layer, the phases, the gap before it and its flags."""

    t0: np.ndarray
    t1: np.ndarray
    raw_j: np.ndarray
    dynamic_j: np.ndarray
    alpha: np.ndarray
    attributed_j: np.ndarray
    coverage: np.ndarray
    llm_j: np.ndarray
    tool_j: np.ndarray
    gap_j: np.ndarray
    gap_raw_j: np.ndarray
    gap_dynamic_j: np.ndarray
    flags: list[set[str]]
    llm_raw_j: np.ndarray
    tool_raw_j: np.ndarray
    llm_dynamic_j: np.ndarray
    tool_dynamic_j: np.ndarray


def as_bool(values: Any) -> np.ndarray:
    """Booleans from bools, 0/1, or the strings ``True``/``False`` (as read back from CSV)."""
    s = pd.Series(values)
    if s.dtype == bool:
        return s.to_numpy()
    return s.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes")).to_numpy(dtype=bool)


def outcome_frame(outcomes: Any) -> pd.DataFrame:
    """The outcomes (a frame, or records / dataclasses) as a frame with the contract's columns."""
    if isinstance(outcomes, pd.DataFrame):
        df = outcomes
    else:
        df = pd.DataFrame([o if isinstance(o, Mapping) else asdict(o) for o in outcomes])
    missing = [c for c in OUTCOME_COLUMNS if c not in df.columns]
    if missing:
        raise AccountingInputError(
            f"outcomes lack column(s) {missing}",
            f"the agents' outcomes need columns {list(OUTCOME_COLUMNS)}",
        )
    return df.reset_index(drop=True)


def _call_counts(keys: Sequence[AttemptKey], windows: Mapping[AttemptKey, AttemptWindows]) -> dict[str, Any]:
    """Calls and tokens per row (0 where the attempt has no window)."""
    counts = {
        "llm_calls": [windows[k].llm_calls if k in windows else 0 for k in keys],
        "tool_calls": [windows[k].tool_calls if k in windows else 0 for k in keys],
        "tokens_in": [windows[k].tokens_in if k in windows else 0 for k in keys],
        "tokens_out": [windows[k].tokens_out if k in windows else 0 for k in keys],
    }
    return {k: np.array(v, dtype=np.int64) for k, v in counts.items()}


def goals_table(
    outcomes: pd.DataFrame,
    keys: Sequence[AttemptKey],
    windows: Mapping[AttemptKey, AttemptWindows],
    rows: AttemptRows,
    source: str,
    run_id: str,
) -> pd.DataFrame:
    """The goals.csv rows: one per outcome row, contract columns first, then the extra and task columns."""
    goals = pd.DataFrame(
        {
            "family": outcomes["family"].astype(str).to_numpy(),
            "mode": outcomes["mode"].astype(str).to_numpy(),
            "goal_id": outcomes["goal_id"].to_numpy(),
            "rep": outcomes["rep"].astype(int).to_numpy(),
            "attempt": outcomes["attempt"].astype(int).to_numpy(),
            "success": as_bool(outcomes["success"]),
            "final_attempt": as_bool(outcomes["final_attempt"]),
            "t0": rows.t0,
            "t1": rows.t1,
            "duration_s": rows.t1 - rows.t0,
            "raw_j": rows.raw_j,
            "dynamic_j": rows.dynamic_j,
            "attributed_j": rows.attributed_j,
            "energy_j": rows.attributed_j.copy(),
            "llm_j": rows.llm_j,
            "tool_j": rows.tool_j,
            "orchestration_j": rows.attributed_j - rows.llm_j - rows.tool_j,
            "gap_j": rows.gap_j,
            "coverage": rows.coverage,
            **_call_counts(keys, windows),
            "energy_source": source,
            "answer": outcomes["answer"].to_numpy(),
            "expected": outcomes["expected"].to_numpy(),
            "error": outcomes["error"].to_numpy(),
            "run_id": str(run_id),
            "alpha": rows.alpha,
            "flags": [";".join(sorted(f)) for f in rows.flags],
            "gap_raw_j": rows.gap_raw_j,
            "gap_dynamic_j": rows.gap_dynamic_j,
        },
        columns=[*GOALS_COLUMNS, *GOALS_EXTRA_COLUMNS],
    )
    for col in GOALS_TASK_COLUMNS:
        if col in outcomes.columns:
            goals[col] = outcomes[col].to_numpy()
    # phases of the total and dynamic layers (GOALS_PHASE_COLUMNS), last: orchestration is the
    # rest of the attempt window, so the phases sum to the attempt's energy in every layer
    goals["llm_raw_j"] = rows.llm_raw_j
    goals["tool_raw_j"] = rows.tool_raw_j
    goals["orchestration_raw_j"] = rows.raw_j - rows.llm_raw_j - rows.tool_raw_j
    goals["llm_dynamic_j"] = rows.llm_dynamic_j
    goals["tool_dynamic_j"] = rows.tool_dynamic_j
    goals["orchestration_dynamic_j"] = rows.dynamic_j - rows.llm_dynamic_j - rows.tool_dynamic_j
    return goals


def write_goals(goals: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a goals table atomically as CSV (contract columns first, as given)."""
    atomic_write_with(path, lambda tmp: goals.to_csv(tmp, index=False))
