"""Figure 3, the phase breakdown: LLM, tool, orchestration and between-attempt energy per
execution, per mode and family, summed from ``goals.csv`` (negative phases stacked below 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import alems.figures.style as style
from alems.contracts import MODES
from alems.figures.inputs import FigureInputs
from alems.figures.style import ALERT, PHASE_COLORS, PHASE_LABELS, PHASES, WIDTH_IN, families, label

BAR_WIDTH = 0.38


def phase_means(goals: pd.DataFrame) -> pd.DataFrame:
    """Mean energy per execution in each phase, per (family, mode): sums over attempts / executions."""
    g = goals.copy()
    cols = [c for c in PHASE_COLORS if c in g.columns]
    for c in cols:
        g[c] = pd.to_numeric(g[c], errors="coerce").fillna(0.0)
    g["_exec"] = g["final_attempt"].astype(str).str.lower().isin(("true", "1"))
    agg = g.groupby(["family", "mode"], sort=False).agg({**{c: "sum" for c in cols}, "_exec": "sum"})
    n = agg.pop("_exec").clip(lower=1)
    return agg.div(n, axis=0).reset_index()


def _stack(
    ax: Any, sub: pd.DataFrame, fams: list[str], phases: list[str], j: int, mode: str
) -> tuple[float, float]:
    """Mode ``j``'s stacked bars, one per family: positive phases upwards from 0, negative ones
    (a residual can be) downwards. Returns the lowest and highest stack ends."""
    xs = np.arange(len(fams)) + (j - 0.5) * BAR_WIDTH
    bottom = np.zeros(len(fams))
    below = np.zeros(len(fams))
    hatch = "//" if mode == "agentic" else None
    for ph in phases:
        vals = sub[ph].reindex(fams, fill_value=0.0).to_numpy(dtype=float)
        pos = np.clip(vals, 0, None)
        neg = np.clip(vals, None, 0)
        ax.bar(
            xs,
            pos,
            BAR_WIDTH,
            bottom=bottom,
            color=PHASE_COLORS[ph],
            edgecolor="white",
            lw=0.3,
            hatch=hatch,
            label=PHASE_LABELS[ph] if j == 0 else None,
        )
        if (neg < 0).any():
            ax.bar(
                xs, neg, BAR_WIDTH, bottom=below, color=PHASE_COLORS[ph], edgecolor=ALERT, lw=0.6, hatch=hatch
            )
            below += neg
        bottom += pos
    return float(below.min(initial=0.0)), float(bottom.max(initial=0.0))


def fig_phases(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = style.pyplot()
    means = phase_means(inp.goals)
    fams = families(inp)
    phases = [c for c in PHASE_COLORS if c in means.columns]
    if "gap_j" in phases and not (means["gap_j"].abs() > 0).any():
        phases.remove("gap_j")
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.3))
    ends = [
        _stack(ax, means[means["mode"] == mode].set_index("family"), fams, phases, j, mode)
        for j, mode in enumerate(MODES)
    ]
    lows, highs = [lo for lo, _ in ends], [hi for _, hi in ends]
    if min(lows, default=0.0) < 0:  # both stacks in view, with a margin, and the zero line
        lo, hi = min(lows), max(highs, default=0.0)
        pad = 0.06 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
        ax.axhline(0.0, color="#333333", lw=0.6)
    x = np.arange(len(fams))
    ax.set_xticks(x, [f.replace("_", "\n", 1) for f in fams])
    ax.set_ylabel("energy per execution (J, attributed)")
    ax.set_title("Phase breakdown: left bar linear, right bar (hatched) agentic")
    ax.legend(frameon=False, ncols=len(phases), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return style.save(fig, out_dir, PHASES, inp.run_id, label(inp.provenance(), "attributed (phases)"))
