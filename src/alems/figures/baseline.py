"""Figure 6, the idle baseline: the window powers of each domain (box and points), with the
baseline's verdict, its worst coefficient of variation and the host's load, from ``idle.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import alems.figures.style as style
from alems.figures.inputs import FigureInputs, source_label
from alems.figures.style import IDLE_BASELINE, WIDTH_IN


def fig_baseline(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = style.pyplot()
    base = inp.baseline
    windows = base.get("windows") or []
    keys = list((base.get("power_w") or {}).keys())
    data = [[float(w["power_w"][k]) for w in windows if k in w.get("power_w", {})] for k in keys]
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 2.6))
    if keys:
        pos = np.arange(len(keys))
        ax.boxplot(data, positions=pos, widths=0.5, showfliers=False)
        rng = np.random.default_rng(0)
        for i, vals in enumerate(data):
            ax.scatter(pos[i] + rng.uniform(-0.12, 0.12, len(vals)), vals, s=8, color="#4C72B0", zorder=3)
        src = base.get("source") or {}
        ax.set_xticks(pos, [f"{k}\n({src.get(k, '?')})" for k in keys])
    ax.set_ylabel("idle power per window (W)")
    cv = base.get("stats") or {}
    worst = max((float(s.get("cv", 0.0)) for s in cv.values() if s.get("judged", True)), default=float("nan"))
    util = base.get("host_util")
    busy = "" if util is None else f", host {float(util):.1%} busy"
    ax.set_title(
        f"Idle baseline: {base.get('status', '?')}\nmax CV {worst:.3f}, {len(windows)} windows{busy}"
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    sources = {str(k): str(v) for k, v in (base.get("source") or {}).items()}
    label = source_label(sources) if sources else ("modeled" if base.get("modeled") else "measured")
    return style.save(fig, out_dir, IDLE_BASELINE, inp.run_id, label)
