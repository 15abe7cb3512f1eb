"""Figure 2, the OOI forest: OOI per family and per pooled scope (reasoning, tool, overall)
with its intervals, from ``ooi.csv``, on a log ratio axis with a line at 1."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import alems.figures.style as style
from alems.figures.inputs import FigureInputs
from alems.figures.style import (
    ALERT,
    FONT,
    GROUP_SCOPES,
    OOI_FOREST,
    WIDTH_IN,
    as_float,
    families,
    finite,
    table_label,
)

ESTIMAND_WORDS = {
    "ratio_of_means": "ratio of mean family EpGs",
    "geomean_ooi": "geometric mean of family OOIs",
    "pooled_ratio": "pooled energy / pooled successes",
}


def forest_rows(ooi: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The rows figure 2 draws: the family rows and, per pooled scope, the headline estimand
    (the first row of the scope; :mod:`alems.metrics` lists the configured one first).
    A table without an ``estimand`` column (older contract) is drawn as it is."""
    if "estimand" not in ooi.columns:
        return ooi, None
    est = ooi["estimand"].astype(str)
    pooled = ooi[est != "family"].drop_duplicates("scope", keep="first")
    headline = str(pooled["estimand"].iloc[0]) if len(pooled) else None
    return pd.concat([ooi[est == "family"], pooled]), headline


def _undefined_reason(flags: str) -> str:
    """Why an OOI row has no value: a mode without success, or (pooled rows) no family to pool."""
    lin, agt = "zero_successes_linear" in flags, "zero_successes_agentic" in flags
    if lin or agt:
        return (
            "no success in either mode"
            if lin and agt
            else ("no linear success" if lin else "no agentic success")
        )
    if "excluded:" in flags:
        return "no family with a defined OOI to pool"
    return "no goal pairs" if "no_pairs" in flags else "no value"


@dataclass
class _Forest:
    """What the rows put on the axis: the x values that set its range, the intervals
    ``(low, high, colour, y, line width)`` drawn once the range is known, and the counts the
    notes mention."""

    xs: list[float] = field(default_factory=list)
    segments: list[tuple[float, float, str, float, float]] = field(default_factory=list)
    n_adjusted: int = 0
    n_no_ci: int = 0


def _note(ax: Any, y: float, text: str) -> None:
    """A row whose OOI has no place on the log axis says why, in place of its marker."""
    ax.text(
        0.02,
        y,
        text,
        va="center",
        fontsize=FONT - 2,
        color=ALERT,
        transform=ax.get_yaxis_transform(),
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
    )


def _estimate(ax: Any, y: float, row: pd.Series, v: float, pooled: bool, forest: _Forest) -> None:
    """A positive OOI: its marker, its intervals (the thin simultaneous one on family rows), or
    a hollow marker and the reason when it has none."""
    color = "#222222" if pooled else "#4C72B0"
    forest.xs.append(v)
    pairs = [(as_float(row.get("ci_low")), as_float(row.get("ci_high")), 2.4)]
    lo_a, hi_a = as_float(row.get("ci_low_adj")), as_float(row.get("ci_high_adj"))
    if not pooled and not (math.isnan(lo_a) or math.isnan(hi_a)):
        pairs.append((lo_a, hi_a, 0.9))  # the simultaneous (Bonferroni) interval: thin
        forest.n_adjusted += 1
    drawn = False
    for lo, hi, lw in pairs:
        if math.isnan(lo) or math.isnan(hi):
            continue
        forest.segments.append((lo, hi, color, y, lw))
        forest.xs += [x for x in (lo, hi) if math.isfinite(x) and x > 0]
        drawn = True
    marker = "D" if pooled else "o"
    if drawn:
        ax.plot(v, y, marker, color=color, ms=5 if pooled else 4, zorder=3)
    else:  # an estimate without an interval: hollow, and the reason beside it
        forest.n_no_ci += 1
        ax.plot(v, y, marker, mfc="white", mec=color, ms=5 if pooled else 4, zorder=3)
        why = "insufficient data" if "insufficient_data" in str(row.get("flags") or "") else "no interval"
        ax.text(v, y + 0.3, why, ha="center", va="bottom", fontsize=FONT - 3, color="#555555")


def _forest_row(ax: Any, y: float, scope: str, row: pd.Series, forest: _Forest) -> None:
    v = row["ooi"]
    if finite(v) and float(v) > 0:
        _estimate(ax, y, row, float(v), scope in GROUP_SCOPES, forest)
    elif finite(v):  # zero or negative (an energy layer below idle): no place on a log axis, so said
        _note(ax, y, f"OOI {float(v):.3g} (not > 0: an EpG at or below 0)")
    else:
        _note(ax, y, f"undefined ({_undefined_reason(str(row.get('flags') or ''))})")


def _ratio_ticks(ax: Any, lo: float, hi: float) -> None:
    """Plain-number ticks at powers of two on a log ratio axis (0.25, 0.5, 1, 2, 4, ...)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    k0, k1 = math.floor(math.log2(max(lo, 1e-12))), math.ceil(math.log2(max(hi, 1e-12)))
    step = max(1, (k1 - k0) // 8)
    ticks = [2.0**k for k in range(k0, k1 + 1, step) if lo <= 2.0**k <= hi] or [1.0]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _forest_axes(
    ax: Any, order: list[str], n_groups: int, n_fams: int, forest: _Forest
) -> tuple[float, float]:
    """The line at 1, the rule above the pooled rows, the row labels and the log x range."""
    ax.axvline(1.0, color=ALERT, ls="--", lw=0.8)
    if n_groups and n_fams:
        ax.axhline(n_groups - 0.5, color="#999999", lw=0.5)
    ys = list(range(len(order)))[::-1]
    ax.set_yticks(ys, [f"{s}" if s not in GROUP_SCOPES else f"{s} (all)" for s in order])
    for lbl in ax.get_yticklabels():
        if lbl.get_text().endswith("(all)"):
            lbl.set_fontweight("bold")
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xscale("log")
    lo_x, hi_x = (min([*forest.xs, 1.0]), max([*forest.xs, 1.0])) if forest.xs else (0.5, 2.0)
    x0, x1 = lo_x / 1.5, hi_x * 1.5
    ax.set_xlim(x0, x1)
    _ratio_ticks(ax, x0, x1)
    return x0, x1


def _intervals(ax: Any, forest: _Forest, x0: float, x1: float) -> None:
    """The intervals; one reaching 0 or inf runs off the axis, arrow-headed."""
    for lo_f, hi_f, color, y, lw in forest.segments:
        a = lo_f if lo_f > 0 and math.isfinite(lo_f) else x0
        b = hi_f if math.isfinite(hi_f) else x1
        ax.plot([a, b], [y, y], color=color, lw=lw, solid_capstyle="butt", alpha=0.55 if lw > 2 else 1.0)
        if a == x0:
            ax.plot(a, y, "<", color=color, ms=4)
        if b == x1:
            ax.plot(b, y, ">", color=color, ms=4)


def _forest_label(o: pd.DataFrame, forest: _Forest, headline: str | None) -> str:
    """The x label: what OOI is, and what the thick, thin and hollow marks and (all) rows mean."""
    level = o["level"].dropna().iloc[0] if "level" in o and o["level"].notna().any() else 0.95
    notes = [f"thick: {float(level):.0%} CI"]
    if forest.n_adjusted:
        notes.append(
            f"thin: simultaneous {float(level):.0%} CI over {forest.n_adjusted} families (Bonferroni)"
        )
    if forest.n_no_ci:
        notes.append("hollow: no CI (goals < metrics.min_goals,\nor > 5 % of resamples without a success)")
    if headline:
        notes.append(f"(all) rows: {ESTIMAND_WORDS.get(headline, headline)}")
    return "OOI = EpG(agentic) / EpG(linear)\n" + "\n".join(notes)


def fig_ooi(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = style.pyplot()
    o, headline = forest_rows(inp.ooi.copy())
    scopes = set(o["scope"].astype(str))
    fams = [f for f in families(inp) if f in scopes]
    groups = [g for g in GROUP_SCOPES if g in scopes]
    order = fams + groups
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 0.28 * len(order) + 1.5))
    by = o.set_index(o["scope"].astype(str))
    forest = _Forest()
    for y, scope in zip(list(range(len(order)))[::-1], order, strict=True):
        row = by.loc[scope]
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        _forest_row(ax, y, scope, row, forest)
    x0, x1 = _forest_axes(ax, order, len(groups), len(fams), forest)
    _intervals(ax, forest, x0, x1)
    ax.set_xlabel(_forest_label(o, forest, headline), fontsize=FONT - 1)
    ax.set_title("Orchestration overhead index")
    ax.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return style.save(fig, out_dir, OOI_FOREST, inp.run_id, table_label(inp))
