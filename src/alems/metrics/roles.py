"""Energy by call role: ``roles.csv``, one row per (family, mode, role) from ``calls.csv`` and
``goals.csv``.

A role is what a call is for (``plan``, ``step``, ``synthesise``, ``answer``, ... for LLM
calls; the tool's name for tool calls; ``llm`` where the caller does not say). Each row
gives the cell's calls and tokens of that role, their energy in each layer, its share of
the cell's energy in that layer and the energy per successful execution. One more row per
cell, role ``orchestration`` (kind ``other``), holds the rest of the cell's energy: attempt
windows outside every call, and the gaps between attempts; so a cell's roles sum to its
energy and their per-success energies to its EpG (epg.csv, over all executions).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from alems.contracts import BUILTIN_FAMILIES, ENERGY_LAYERS, MODES
from alems.metrics.executions import executions, layer_of, ordered

ROLE_LAYER_COLUMNS: dict[str, str] = {"total": "raw_j", "dynamic": "dynamic_j", "attributed": "attributed_j"}
"""calls.csv's energy column of each layer (roles.csv uses the same names)."""

OTHER_ROLE = "orchestration"

ROLES_COLUMNS: tuple[str, ...] = (
    "family",
    "mode",
    "kind",
    "role",
    "calls",
    "tokens_in",
    "tokens_out",
    *ROLE_LAYER_COLUMNS.values(),
    *(f"share_{layer}" for layer in ENERGY_LAYERS),
    *(f"per_success_{layer}_j" for layer in ENERGY_LAYERS),
    "executions",
    "successes",
    "energy_source",
    "flags",
)


def _cells(goals: pd.DataFrame) -> pd.DataFrame:
    """Per (family, mode): executions, successes and the energy of every layer (NaN where absent)."""
    base = None
    for layer in ENERGY_LAYERS:
        ex = executions(goals, layer)
        if layer_of(ex) != layer:
            ex = ex.assign(energy_j=np.nan)  # the table has no column for this layer
        agg = ex.groupby(["family", "mode"], sort=False).agg(
            executions=("success", "size"),
            successes=("success", "sum"),
            e=("energy_j", lambda s: float(s.to_numpy(float).sum())),
            energy_source=("energy_source", lambda s: ";".join(sorted(set(s)))),
        )
        agg = agg.rename(columns={"e": f"cell_{layer}"})
        base = agg if base is None else base.join(agg[[f"cell_{layer}"]])
    assert base is not None
    return base


def roles_table(goals: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """The roles.csv rows (see the module docstring), families and modes in table order."""
    if not len(goals):
        return pd.DataFrame(columns=list(ROLES_COLUMNS))
    cells = _cells(goals)
    rows: list[dict[str, object]] = []
    families = ordered(goals["family"].astype(str), BUILTIN_FAMILIES)
    modes = ordered(goals["mode"].astype(str), MODES)
    c = (
        calls.assign(family=calls["family"].astype(str), mode=calls["mode"].astype(str))
        if len(calls)
        else calls
    )
    for f in families:
        for m in modes:
            if (f, m) not in cells.index:
                continue
            cell: pd.Series = cells.loc[(f, m)]  # type: ignore[assignment]
            mine = c[(c["family"] == f) & (c["mode"] == m)] if len(c) else c
            rows += _cell_rows(f, m, cell, mine)
    return pd.DataFrame(rows, columns=list(ROLES_COLUMNS))


def _cell_rows(family: str, mode: str, cell: pd.Series, calls: pd.DataFrame) -> list[dict[str, object]]:
    n_succ = int(cell["successes"])
    groups: list[tuple[str, str, dict[str, float], int, int, int]] = []
    if len(calls):
        for (kind, role), g in calls.groupby(["kind", "role"], sort=True):
            energies = {col: float(g[col].to_numpy(float).sum()) for col in ROLE_LAYER_COLUMNS.values()}
            toks = (int(g["tokens_in"].sum()), int(g["tokens_out"].sum()))
            groups.append((str(kind), str(role), energies, len(g), *toks))
    rest = {
        col: float(cell[f"cell_{layer}"]) - sum(gr[2][col] for gr in groups)
        for layer, col in ROLE_LAYER_COLUMNS.items()
    }
    groups.append(("other", OTHER_ROLE, rest, 0, 0, 0))
    out = []
    for kind, role, energies, n, tin, tout in groups:
        row: dict[str, object] = {
            "family": family,
            "mode": mode,
            "kind": kind,
            "role": role,
            "calls": n,
            "tokens_in": tin,
            "tokens_out": tout,
            **energies,
            "executions": int(cell["executions"]),
            "successes": n_succ,
            "energy_source": cell["energy_source"],
            "flags": "zero_successes" if n_succ == 0 else "",
        }
        for layer, col in ROLE_LAYER_COLUMNS.items():
            total = float(cell[f"cell_{layer}"])
            row[f"share_{layer}"] = energies[col] / total if total != 0 and math.isfinite(total) else math.nan
            row[f"per_success_{layer}_j"] = energies[col] / n_succ if n_succ else math.nan
        out.append(row)
    return out
