"""Figure 4, the power timeline: power over one goal pair (both modes of the first goal of
the run), from one run's cumulative counters, with the attempt and phase edges of its events.
Stepwise counters (NVML) are reconstructed from their update instants
(:mod:`alems.energy.stepwise`), so the line shows power, not the staircase."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import alems.figures.style as style
from alems.energy.stepwise import reconstruct
from alems.figures.inputs import FigureInputs, source_label
from alems.figures.style import COLORS, FONT, PHASE_COLORS, PHASE_LABELS, POWER_TIMELINE, WIDTH_IN


def binned_power(
    samples: pd.DataFrame, keys: Sequence[str], t0: float, t1: float, dt: float, stepwise: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Mean power in bins of ``dt`` over ``[t0, t1]`` from cumulative joule columns (interpolated at bin edges).

    ``stepwise`` columns (NVML energy, ~100 ms steps) are first reconstructed from their
    update instants (:func:`alems.energy.stepwise.reconstruct`); differenced raw, their
    staircase would show power as zero with spikes at every update.
    """
    order = np.argsort(samples["t"].to_numpy(dtype=float), kind="stable")
    t = samples["t"].to_numpy(dtype=float)[order]
    cols = samples[list(keys)].to_numpy(dtype=float)[order] if keys else np.zeros((len(t), 0))
    for i, k in enumerate(keys):
        if k in set(stepwise):
            cols[:, i] = reconstruct(t, cols[:, i]).values
    e = cols.sum(axis=1) if keys else np.zeros_like(t)
    n = max(1, math.ceil((t1 - t0) / dt))
    edges = np.linspace(t0, t0 + n * dt, n + 1)
    edges = np.clip(edges, t[0], t[-1]) if len(t) else edges
    ce = np.interp(edges, t, e) if len(t) else np.zeros_like(edges)
    widths = np.diff(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(widths > 0, np.diff(ce) / widths, np.nan)
    return (edges[:-1] + edges[1:]) / 2, p


def _mode_color(e: dict[str, Any]) -> str:
    return COLORS.get(str(e.get("mode")), "#000000")


def _draw_events(ax: Any, mine: list[dict[str, Any]], t_lo: float) -> None:
    """LLM and tool calls shaded, attempt starts (solid) and ends (dashed) in the mode's
    colour, and each goal execution's mode written where it starts."""
    opened: dict[tuple[Any, ...], float] = {}
    shaded = set()
    for e in sorted(mine, key=lambda r: float(r["t"])):
        kind, t = e["kind"], float(e["t"]) - t_lo
        key = (e.get("mode"), e.get("attempt"), e.get("name"), kind.split("_")[0])
        if kind in ("llm_start", "tool_start"):
            opened[key] = t
        elif kind in ("llm_end", "tool_end") and key in opened:
            ph = kind.split("_")[0]
            ax.axvspan(
                opened.pop(key),
                t,
                color=PHASE_COLORS[f"{ph}_j"],
                alpha=0.25,
                lw=0,
                label=f"{PHASE_LABELS[f'{ph}_j']} call" if ph not in shaded else None,
            )
            shaded.add(ph)
        elif kind == "attempt_start":
            ax.axvline(t, color=_mode_color(e), lw=0.9)
        elif kind == "attempt_end":
            ax.axvline(t, color=_mode_color(e), lw=0.9, ls="--")
        elif kind == "goal_start":
            ax.text(
                t,
                1.0,
                f" {e.get('mode')}",
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=FONT - 1,
                color=_mode_color(e),
            )


def _power_limits(ax: Any, p: np.ndarray, idle: float) -> None:
    """A y range from 0 (or the lowest power, if negative) to above the highest power and the idle line."""
    top = np.nanmax(np.append(p[np.isfinite(p)], idle if math.isfinite(idle) else 0.0)) if len(p) else 1.0
    ax.set_ylim(min(0.0, float(np.nanmin(p)) if np.isfinite(p).any() else 0.0), max(float(top), 1e-3) * 1.15)


def fig_timeline(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.0))
    evs = inp.events
    starts = [e for e in evs if e.get("kind") == "goal_start"]
    modeled = source_label(inp.sample_sources) if inp.sample_sources else inp.provenance()
    if inp.samples is None or not starts or not len(inp.samples):
        ax.text(0.5, 0.5, "no samples or events for the timeline", ha="center", transform=ax.transAxes)
        return style.save(fig, out_dir, POWER_TIMELINE, inp.run_id, modeled)
    goal_id = starts[0]["goal_id"]
    rep = starts[0].get("rep")
    mine = [e for e in evs if e.get("goal_id") == goal_id and e.get("rep") == rep]
    t_lo = min(float(e["t"]) for e in mine)
    t_hi = max(float(e["t"]) for e in mine)
    pad = 0.02 * (t_hi - t_lo) + 1e-3
    span = (t_hi - t_lo) + 2 * pad
    dt = max(span / 400.0, 0.02)
    mid, p = binned_power(inp.samples, inp.sample_keys, t_lo - pad, t_hi + pad, dt, inp.sample_stepwise)
    stepwise = f" ({', '.join(inp.sample_stepwise)} from counter updates)" if inp.sample_stepwise else ""
    ax.plot(mid - t_lo, p, color="#222222", lw=0.8, drawstyle="steps-mid", label="power" + stepwise)
    _draw_events(ax, mine, t_lo)
    idle = sum(float((inp.baseline.get("power_w") or {}).get(k, float("nan"))) for k in inp.sample_keys)
    if math.isfinite(idle):
        ax.axhline(idle, color="#555555", ls=":", lw=0.9, label="idle baseline")
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="#555555", lw=0.9), Line2D([], [], color="#555555", lw=0.9, ls="--")]
    labels += ["attempt start", "attempt end"]
    ax.set_xlim(-pad, t_hi - t_lo + pad)
    _power_limits(ax, p, idle)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("time since the pair started (s)")
    ax.set_ylabel("power (W)")
    fam = inp.timeline_family or "?"
    ax.set_title(f"Power over one goal pair ({fam}, {goal_id}); line colour = mode")
    ax.legend(handles, labels, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=6)
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return style.save(fig, out_dir, POWER_TIMELINE, inp.run_id, modeled)
