"""The figures drawn from ``epg.csv``: EpG per family and mode with its interval (figure 1),
and success rate against energy per execution (figure 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import alems.figures.style as style
from alems.contracts import MODES
from alems.figures.inputs import FigureInputs
from alems.figures.style import (
    COLORS,
    EPG,
    FAMILY_MARKERS,
    FONT,
    SUCCESS_VS_ENERGY,
    WIDTH_IN,
    as_float,
    epg_cells,
    families,
    finite,
    is_pos_inf,
    mark_nonpositive,
    needs_log,
    table_label,
)

BAR_WIDTH = 0.38
INTERVAL = "#333333"


@dataclass
class _Intervals:
    """Bars whose interval cannot be drawn as an error bar: unbounded above ``(x, value, low)``,
    or missing ``(x, value)``."""

    open_above: list[tuple[float, float, float]] = field(default_factory=list)
    missing: list[tuple[float, float]] = field(default_factory=list)


def _bar_x(x: np.ndarray, i: int, j: int) -> float:
    """The centre of mode ``j``'s bar in family ``i``'s slot."""
    return float(x[i] + (j - 0.5) * BAR_WIDTH)


def _epg_bar(
    ax: Any, xi: float, v: float, lo: Any, hi: Any, mode: str, label: str | None, ci: _Intervals
) -> None:
    """One finite EpG bar ``v`` with its interval ``[lo, hi]`` (or a note that it has none)."""
    err = None
    if finite(lo) and finite(hi):
        err = [[max(v - float(lo), 0.0)], [max(float(hi) - v, 0.0)]]
    elif finite(lo) and is_pos_inf(hi):
        ci.open_above.append((xi, v, float(lo)))
    else:
        ci.missing.append((xi, v))
    ax.bar(xi, v, BAR_WIDTH, color=COLORS[mode], yerr=err, capsize=2, ecolor=INTERVAL, label=label)


def _no_success_bar(ax: Any, xi: float, mode: str, label: str | None, y_text: float) -> None:
    """A cell without a success has no EpG: an empty bar, and the words."""
    ax.bar(xi, 0, BAR_WIDTH, color=COLORS[mode], label=label)
    ax.text(
        xi,
        y_text,
        "no success",
        ha="center",
        va="bottom",
        rotation=90,
        fontsize=FONT - 2,
        color=COLORS[mode],
    )


def _epg_bars(ax: Any, cells: pd.DataFrame, fams: list[str], x: np.ndarray, top: float | None) -> _Intervals:
    """The bars of every (family, mode) cell; ``top`` is the largest finite value (None: none)."""
    ci = _Intervals()
    for j, mode in enumerate(MODES):
        sub = cells[cells["mode"] == mode].set_index("family")
        for i, fam in enumerate(fams):
            if fam not in sub.index:
                continue
            xi, row = _bar_x(x, i, j), sub.loc[fam]
            label = mode if i == 0 else None
            if finite(row["epg_j"]):
                lo, hi = row.get("epg_ci_low"), row.get("epg_ci_high")
                _epg_bar(ax, xi, as_float(row["epg_j"]), lo, hi, mode, label, ci)
            else:
                _no_success_bar(ax, xi, mode, label, top * 0.02 if top is not None and top > 0 else 0.02)
    for j, mode in enumerate(MODES):
        sub = cells[cells["mode"] == mode].set_index("family")
        shown = [(_bar_x(x, i, j), sub.loc[f, "epg_j"]) for i, f in enumerate(fams) if f in sub.index]
        mark_nonpositive(ax, [a for a, _ in shown], [b for _, b in shown], COLORS[mode])
    return ci


def _epg_axis(ax: Any, finite_vals: list[float], ci: _Intervals) -> None:
    """Zero line, log or linear scale, and the intervals drawn after the scale is known."""
    if any(float(v) < 0 for v in finite_vals):
        ax.axhline(0.0, color=INTERVAL, lw=0.6)
    if needs_log(finite_vals):
        ax.set_yscale("log")
    elif not finite_vals:  # no cell has a success: nothing to scale
        ax.set_ylim(0.0, 1.0)
        ax.set_yticks([])
    if ci.open_above and finite_vals:  # whisker to the top edge, arrow-headed: the interval has no upper end
        y0, y1 = ax.get_ylim()
        y_top = y1 * 1.6 if ax.get_yscale() == "log" else y1 * 1.12
        ax.set_ylim(y0, y_top)
        for xi, _v, lo in ci.open_above:
            ax.plot([xi, xi], [max(lo, y0), y_top], color=INTERVAL, lw=1.0, zorder=4)
            ax.plot(xi, y_top, marker="^", color=INTERVAL, ms=4, clip_on=False, zorder=4)
    for xi, v in ci.missing:  # a hollow dot on the bar: the estimate has no interval
        ax.plot(xi, v, marker="o", mfc="white", mec=INTERVAL, ms=4, zorder=4)


def _epg_legend(ax: Any, ci: _Intervals) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    if ci.open_above:
        handles.append(Line2D([], [], color=INTERVAL, lw=1.0, marker="^", ms=4))
        labels.append("CI unbounded above")
    if ci.missing:
        handles.append(Line2D([], [], ls="none", marker="o", mfc="white", mec=INTERVAL, ms=4))
        labels.append("no CI: too few goals or successes")
    if handles:
        ax.legend(
            handles, labels, frameon=False, ncols=len(handles), loc="upper center", bbox_to_anchor=(0.5, -0.2)
        )


def fig_epg(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = style.pyplot()
    cells = epg_cells(inp)
    fams = families(inp)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.3))
    x = np.arange(len(fams))
    finite_vals = [float(v) for v in cells["epg_j"] if finite(v)]
    finite_vals += [float(v) for v in cells.get("epg_ci_high", []) if finite(v)]
    ci = _epg_bars(ax, cells, fams, x, max(finite_vals) if finite_vals else None)
    _epg_axis(ax, finite_vals, ci)
    ax.set_xticks(x, [f.replace("_", "\n", 1) for f in fams])
    ax.set_ylabel("EpG (J per successful goal)")
    ax.set_title("Energy per successful goal, with bootstrap CIs (resampling goals)")
    _epg_legend(ax, ci)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return style.save(fig, out_dir, EPG, inp.run_id, table_label(inp))


def _dodge(x: pd.Series, y: pd.Series, step_pt: float = 7.0) -> list[float]:
    """Horizontal offsets (points) that spread markers which (nearly) coincide side by side.

    Points within 2 % in x (log scale) and 0.02 in y form a group; a group of k gets
    offsets (i - (k - 1) / 2) * step_pt. The data are unchanged; only the drawing moves.
    """
    xs = pd.to_numeric(x, errors="coerce").to_numpy(float)
    ys = pd.to_numeric(y, errors="coerce").to_numpy(float)
    with np.errstate(all="ignore"):
        kx = np.where(xs > 0, np.round(np.log10(np.where(xs > 0, xs, 1.0)) / 0.0086), np.nan)
    keys = [
        (a, round(b / 0.02)) if np.isfinite(a) and np.isfinite(b) else (i,)
        for i, (a, b) in enumerate(zip(kx, ys, strict=True))
    ]
    out = [0.0] * len(keys)
    for key in dict.fromkeys(keys):
        members = [i for i, k in enumerate(keys) if k == key]
        for j, i in enumerate(members):
            out[i] = (j - (len(members) - 1) / 2.0) * step_pt
    return out


def _success_points(ax: Any, fig: Any, cells: pd.DataFrame, marker: dict[str, str]) -> None:
    """A grey line joining each family's two modes, then one marker per cell (dodged where they coincide)."""
    from matplotlib.transforms import offset_copy

    for _fam, sub in cells.groupby("family"):
        sub = sub.set_index("mode")
        if all(m in sub.index for m in MODES):
            ax.plot(
                [sub.loc[m, "per_exec"] for m in MODES],
                [sub.loc[m, "success_rate"] for m in MODES],
                color="#BBBBBB",
                lw=0.6,
                zorder=1,
            )
    for (_, r), dx in zip(cells.iterrows(), _dodge(cells["per_exec"], cells["success_rate"]), strict=True):
        ax.scatter(
            r["per_exec"],
            r["success_rate"],
            marker=marker[str(r["family"])],
            s=30,
            zorder=3,
            facecolors="none" if r["mode"] == "linear" else COLORS[str(r["mode"])],
            edgecolors=COLORS.get(str(r["mode"]), "#444444"),
            linewidths=1.1,
            alpha=0.9,
            clip_on=False,
            transform=offset_copy(ax.transData, fig=fig, x=dx, y=0.0, units="points"),
        )


def fig_success_energy(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = style.pyplot()
    cells = epg_cells(inp).copy()
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.85, 3.0))
    ex = pd.to_numeric(cells["executions"], errors="coerce").replace(0, np.nan)
    cells["per_exec"] = pd.to_numeric(cells["energy_total_j"], errors="coerce") / ex
    # One marker shape per family, colour per mode, and a legend instead of point labels:
    # cells that coincide (same success rate and energy) stay readable.
    from matplotlib.lines import Line2D

    fams = [f for f in families(inp) if f in set(cells["family"].astype(str))]
    fams += sorted(set(cells["family"].astype(str)) - set(fams))
    marker = {f: FAMILY_MARKERS[i % len(FAMILY_MARKERS)] for i, f in enumerate(fams)}
    _success_points(ax, fig, cells, marker)
    handles = [
        Line2D([], [], ls="none", marker="s", mfc="none", mec=COLORS["linear"], label="linear (hollow)"),
        Line2D([], [], ls="none", marker="s", color=COLORS["agentic"], label="agentic (filled)"),
    ]
    handles += [Line2D([], [], ls="none", marker=marker[f], mfc="none", mec="#444444", label=f) for f in fams]
    if needs_log(cells["per_exec"].dropna()):
        ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("energy per execution (J, failed executions included)")
    ax.set_ylabel("success rate")
    ax.set_title("Success against energy (grey line joins a family's two modes)")
    ax.legend(
        handles=handles, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=FONT - 2
    )
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return style.save(fig, out_dir, SUCCESS_VS_ENERGY, inp.run_id, table_label(inp))
