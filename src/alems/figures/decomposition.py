"""Figures 7 and 8: why agentic costs more.

- ``fig7_ooi_decomposition``: per scope (each family, then the pooled scopes), the five factors
  of the OOI (``ooi_decomposition.csv``) as bars from 1 on a log axis with their intervals,
  and the OOI itself (their product) as the last, dark bar. An undefined factor is marked
  where its bar would be, with its reason; none is dropped.
- ``fig8_roles``: energy per successful execution by call role (``roles.csv``), stacked,
  linear beside agentic for every family; the rest of the cell's energy (attempt windows
  outside calls, and the gaps) is the ``orchestration`` segment, so a bar's height is the
  cell's EpG. Negative segments (an energy layer below idle) are stacked below zero.

Both draw the headline layer of epg.csv (its ``energy_layer``), and say so in the footer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alems.contracts import MODES
from alems.figures import style
from alems.figures.inputs import FigureInputs
from alems.figures.style import ALERT, COLORS, FONT, GROUP_SCOPES, WIDTH_IN, families, finite, table_label

FACTOR_LABELS = {
    "success": "success",
    "calls": "calls",
    "tokens_per_call": "tokens\n/call",
    "llm_j_per_token": "LLM J\n/token",
    "non_llm": "non-\nLLM",
    "ooi": "OOI",
}
FACTOR_COLORS = {
    "success": "#55A868",
    "calls": "#DD8452",
    "tokens_per_call": "#C44E52",
    "llm_j_per_token": "#4C72B0",
    "non_llm": "#8172B3",
    "ooi": "#222222",
}
OTHER_COLOR = "#BBBBBB"


def _layer(inp: FigureInputs) -> str:
    layer = inp.layer()
    return layer if layer in ("total", "dynamic", "attributed") else "total"


def _no_table(inp: FigureInputs, out_dir: Path, name: str, what: str) -> list[Path]:
    """A figure that says which table is missing (tables written before it existed)."""
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, f"no {what}: rerun the tables rule", ha="center", va="center", color=ALERT)
    return style.save(fig, out_dir, name, inp.run_id, table_label(inp))


# --------------------------------------------------------------------------- figure 7
def decomposition_rows(inp: FigureInputs) -> pd.DataFrame:
    """The rows figure 7 draws: the headline layer's, families then pooled scopes."""
    d = inp.decomposition
    if d is None or not len(d):
        return pd.DataFrame()
    d = d[d["energy_layer"].astype(str) == _layer(inp)] if "energy_layer" in d else d
    return d


def _factor_bar(ax: Any, x: int, row: pd.Series) -> None:
    f = str(row["factor"])
    v = row["value"]
    color = FACTOR_COLORS.get(f, "#777777")
    if not finite(v):
        why = undefined_reason(str(row.get("flags") or ""))
        ax.plot(x, 1.0, marker="x", color=ALERT, ms=6, zorder=4)
        ax.annotate(why, (x, 1.0), xytext=(0, 5), textcoords="offset points", rotation=90, ha="center",
                    va="bottom", fontsize=FONT - 3, color=ALERT, annotation_clip=True)  # fmt: skip
        return
    v = float(v)
    if v <= 0:  # no place on a log axis: said, not dropped
        ax.plot(x, 1.0, marker="v", color=color, mec=ALERT, ms=5, zorder=4)
        ax.text(
            x, 1.0, f"{v:.2g} (<=0)", rotation=90, ha="center", va="bottom", fontsize=FONT - 3, color=ALERT
        )
        return
    ax.bar(
        x, v - 1.0, bottom=1.0, width=0.7, color=color, edgecolor="black" if f == "ooi" else "none", lw=0.6
    )
    lo, hi = row["ci_low"], row["ci_high"]
    top = v
    if finite(lo) and finite(hi) and float(lo) > 0:
        ax.plot([x, x], [float(lo), float(hi)], color="black", lw=0.9, zorder=3)
        ax.plot([x - 0.15, x + 0.15], [float(lo)] * 2, color="black", lw=0.9, zorder=3)
        ax.plot([x - 0.15, x + 0.15], [float(hi)] * 2, color="black", lw=0.9, zorder=3)
        top = float(hi) if v >= 1 else float(lo)
    elif "insufficient_data" in str(row.get("flags") or ""):
        ax.plot(x, v, marker="o", mfc="white", mec="black", ms=3, zorder=3)  # no interval: hollow
    ax.annotate(f"{v:.3g}", (x, top), xytext=(0, 2 if v >= 1 else -2), textcoords="offset points",
                ha="center", va="bottom" if v >= 1 else "top", fontsize=FONT - 3)  # fmt: skip


_REASONS: tuple[tuple[str, str], ...] = (
    ("no_defined_family", "no family with a defined OOI"),
    ("no_pairs", "no pairs"),
    ("no_successes", "no success"),
    ("no_llm_calls", "no calls"),
    ("no_tokens", "no tokens"),
    ("no_llm_energy", "no LLM J"),
    ("llm_energy_unavailable", "no phase columns"),
)


def undefined_reason(flags: str) -> str:
    """The short reason printed at an undefined factor: its most basic flag, with the modes
    it hits (A: agentic, L: linear)."""
    items = [f for f in flags.split(";") if f]
    for prefix, words in _REASONS:
        hit = [f for f in items if f.startswith(prefix)]
        if hit:
            modes = [m[0].upper() for m in ("agentic", "linear") if any(f.endswith(m) for f in hit)]
            return f"{words} ({', '.join(modes)})" if modes else words
    return "undefined"


def _scope_panel(ax: Any, scope: str, rows: pd.DataFrame) -> list[float]:
    order = list(FACTOR_LABELS)
    by = rows.set_index(rows["factor"].astype(str))
    ys: list[float] = []
    if not rows["value"].apply(finite).any():  # nothing defined in the scope: one note, not six
        ax.plot(range(len(order)), [1.0] * len(order), "x", color=ALERT, ms=6)
        why = undefined_reason(";".join(str(f) for f in rows["flags"].fillna("")))
        ax.text(
            0.5, 0.75, why, transform=ax.transAxes, ha="center", va="center", fontsize=FONT - 1, color=ALERT
        )
        order_rows: list[str] = []
    else:
        order_rows = order
    for x, f in enumerate(order):
        if f not in by.index or f not in order_rows:
            continue
        row = by.loc[f]
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        _factor_bar(ax, x, row)
        ys += [float(row[c]) for c in ("value", "ci_low", "ci_high") if finite(row[c]) and float(row[c]) > 0]
    ax.axhline(1.0, color="#555555", lw=0.6)
    ax.axvline(len(order) - 1.5, color="#999999", lw=0.5, ls=":")
    ax.set_xticks(range(len(order)), [FACTOR_LABELS[f] for f in order], fontsize=FONT - 3)
    est = str(rows["estimand"].iloc[0]) if "estimand" in rows else ""
    ax.set_title(f"{scope} (all, {est.replace('_', ' ')})" if scope in GROUP_SCOPES else scope, fontsize=FONT)
    return ys


def fig_decomposition(inp: FigureInputs, out_dir: Path) -> list[Path]:
    d = decomposition_rows(inp)
    name = style.OOI_DECOMPOSITION
    if not len(d):
        return _no_table(inp, out_dir, name, "ooi_decomposition.csv")
    plt = style.pyplot()
    scopes = [f for f in families(inp) if f in set(d["scope"])]
    scopes += [g for g in GROUP_SCOPES if g in set(d["scope"])]
    ncol = min(3, len(scopes))
    nrow = math.ceil(len(scopes) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(WIDTH_IN, 1.9 * nrow + 0.9), sharey=True, squeeze=False)
    ys: list[float] = []
    for ax, scope in zip(axes.flat, scopes, strict=False):
        ys += _scope_panel(ax, scope, d[d["scope"] == scope])
    for ax in list(axes.flat)[len(scopes) :]:
        ax.axis("off")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lo, hi = (min([*ys, 1.0]), max([*ys, 1.0])) if ys else (0.5, 2.0)
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_ylim(lo / 1.6, hi * 1.6)
    axes[0, 0].yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axes[0, 0].yaxis.set_minor_formatter(NullFormatter())
    for ax in axes[:, 0]:
        ax.set_ylabel("factor (log)")
    fig.suptitle(
        "OOI = success x calls x tokens/call x LLM J/token x non-LLM (bars from 1; whiskers: CI; hollow: no CI; x: undefined)",
        fontsize=FONT,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return style.save(fig, out_dir, name, inp.run_id, table_label(inp))


# --------------------------------------------------------------------------- figure 8
def _role_colors(roles: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    named = [r for r in roles if r != "orchestration"]
    out: dict[str, Any] = {r: cmap(i % 10) for i, r in enumerate(named)}
    out["orchestration"] = OTHER_COLOR
    return out


def _stack(ax: Any, x: float, cell: pd.DataFrame, col: str, colors: dict[str, Any], width: float) -> float:
    """Stack the cell's roles at ``x`` (positives up, negatives down); returns the top."""
    pos, neg = 0.0, 0.0
    for _, r in cell.iterrows():
        v = r[col]
        if not finite(v):
            continue
        v = float(v)
        if v >= 0:
            ax.bar(x, v, bottom=pos, width=width, color=colors[str(r["role"])], edgecolor="white", lw=0.3)
            pos += v
        else:
            ax.bar(x, v, bottom=neg, width=width, color=colors[str(r["role"])], edgecolor=ALERT, lw=0.6)
            neg += v
    return pos


def fig_roles(inp: FigureInputs, out_dir: Path) -> list[Path]:
    r = inp.roles
    name = style.ROLES
    if r is None or not len(r):
        return _no_table(inp, out_dir, name, "roles.csv")
    plt = style.pyplot()
    layer = _layer(inp)
    col = f"per_success_{layer}_j"
    fams = [f for f in families(inp) if f in set(r["family"].astype(str))]
    roles = list(dict.fromkeys([*sorted(set(r["role"].astype(str)) - {"orchestration"}), "orchestration"]))
    colors = _role_colors(roles)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.2))
    width = 0.38
    top = 0.0
    for i, fam in enumerate(fams):
        for j, mode in enumerate(MODES):
            cell = r[(r["family"].astype(str) == fam) & (r["mode"].astype(str) == mode)]
            x = i + (j - 0.5) * (width + 0.02)
            if not len(cell):
                continue
            if not np.isfinite(cell[col].to_numpy(float)).any():
                ax.plot(x, 0.0, marker="x", color=ALERT, ms=5)
                ax.annotate(f"{mode[0].upper()}: no success", (x, 0.0), xytext=(0, 5), textcoords="offset points",
                            rotation=90, ha="center", va="bottom", fontsize=FONT - 3, color=ALERT)  # fmt: skip
                continue
            height = _stack(ax, x, cell, col, colors, width)
            top = max(top, height)
            ax.annotate(mode[0].upper(), (x, height), xytext=(0, 2), textcoords="offset points", ha="center",
                        va="bottom", fontsize=FONT - 1, color=COLORS[mode], fontweight="bold")  # fmt: skip
    ax.set_xticks(range(len(fams)), fams, rotation=20, ha="right")
    ax.set_xlim(-0.6, len(fams) - 0.4)
    ax.axhline(0.0, color="#555555", lw=0.6)
    if top > 0:
        ax.set_ylim(top=top * 1.3)  # room for the legend above the bars
    else:  # no cell with a success: energy per success is undefined everywhere, and said so
        ax.set_ylim(-0.1, 1.0)
        ax.text(0.5, 0.6, "no successful execution: energy per success undefined", transform=ax.transAxes,
                ha="center", va="center", fontsize=FONT, color=ALERT)  # fmt: skip
    ax.set_ylabel(f"energy per successful execution (J, {layer})")
    ax.set_title("Where the energy per success goes, by call role (L: linear, A: agentic)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[k]) for k in roles]
    ax.legend(handles, roles, ncol=min(5, len(roles)), fontsize=FONT - 2, loc="upper left", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return style.save(fig, out_dir, name, inp.run_id, table_label(inp))
