"""The cross-arm figures, drawn from ``results/compare/{epg,ooi,ratios}.csv``
(:data:`alems.contracts.COMPARE_FIGURES`):

- ``cmp1_epg_by_arm``: EpG per family, one bar per arm, one panel per mode, with intervals;
- ``cmp2_ooi_forest_arms``: the OOI forest, one row per family per arm (and each arm's headline
  overall estimand), on a log axis around 1;
- ``cmp3_success_vs_energy_arms``: success rate against energy per execution, one marker per
  arm x family x mode, with the Pareto front (least energy for a given success rate) drawn.

Every figure's footer names the arms, the reference arm, where the energy came from (a mix of
measured and modeled arms is named arm by arm) and the energy layer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alems.accounting import combine_sources
from alems.contracts import COMPARE_FIGURES, MODES, OVERALL
from alems.figures.style import (
    ALERT,
    FAMILY_MARKERS,
    FONT,
    WIDTH_IN,
    as_float,
    finite,
    label,
    needs_log,
    pyplot,
    save,
)

EPG_BY_ARM, OOI_FOREST_ARMS, SUCCESS_VS_ENERGY_ARMS = COMPARE_FIGURES
ARM_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
MODE_FILL = {"linear": True, "agentic": False}  # filled markers: linear; hollow: agentic


def _arms(epg: pd.DataFrame, reference: str) -> list[str]:
    """The arms in table order, the reference first."""
    names = list(dict.fromkeys(epg["arm"].astype(str)))
    return [reference, *(a for a in names if a != reference)] if reference in names else names


def _color(arms: Sequence[str], arm: str) -> str:
    return ARM_COLORS[list(arms).index(arm) % len(ARM_COLORS)]


def _family_rows(epg: pd.DataFrame) -> pd.DataFrame:
    """The per-family rows of a stacked epg.csv (not the group or overall rows)."""
    return epg[epg["family"].astype(str) != epg["group"].astype(str)]


def footer_label(epg: pd.DataFrame, reference: str) -> tuple[str, str]:
    """``(run label, energy label)`` of a comparison figure: the arms and the reference, and
    ``measured`` / ``modeled``, or ``mixed: ARM measured, ARM modeled`` arm by arm."""
    arms = _arms(epg, reference)
    per_arm = {a: combine_sources(epg.loc[epg["arm"].astype(str) == a, "energy_source"]) for a in arms}
    kinds = set(per_arm.values())
    if kinds == {"measured"} or kinds == {"modeled"}:
        src = kinds.pop()
    else:
        src = "mixed: " + ", ".join(f"{a} {s}" for a, s in per_arm.items())
    layers = sorted({str(v) for v in epg.get("energy_layer", pd.Series(dtype=str)).dropna()})
    run = f"compare of {len(arms)} arms, reference {reference}"
    return run, label(src, ", ".join(layers) or None)


# --------------------------------------------------------------------------- cmp1
def _bar(ax: Any, x: float, row: pd.Series, color: str, width: float) -> None:
    v = float(row["epg_j"])
    if not finite(v):  # no success: EpG undefined, no bar, a note at the axis
        ax.annotate(
            "no\nsuccess",
            (x, 0.02),
            xycoords=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=FONT - 3,
            color=ALERT,
        )
        return
    lo, hi = as_float(row.get("epg_ci_low")), as_float(row.get("epg_ci_high"))
    err = [[max(v - lo, 0.0)], [max(hi - v, 0.0)]] if finite(lo) and finite(hi) else None
    ax.bar(x, v, width, color=color, yerr=err, capsize=2, error_kw={"lw": 0.7})
    if err is None:  # no interval (insufficient data): a hollow marker on the bar's top
        ax.plot(x, v, marker="o", mfc="white", mec="#333333", ms=3.5)


def fig_epg_by_arm(epg: pd.DataFrame, out_dir: Path, reference: str) -> list[Path]:
    plt = pyplot()
    arms = _arms(epg, reference)
    rows = _family_rows(epg)
    fams = list(dict.fromkeys(rows["family"].astype(str)))
    modes = [m for m in MODES if m in set(rows["mode"])]
    fig, axes = plt.subplots(len(modes), 1, figsize=(WIDTH_IN, 2.3 * len(modes) + 0.8), squeeze=False)
    width = 0.8 / max(len(arms), 1)
    for ax, mode in zip(axes[:, 0], modes, strict=True):
        in_mode = rows[rows["mode"] == mode]
        for j, arm in enumerate(arms):
            for i, f in enumerate(fams):
                sel = in_mode[(in_mode["arm"].astype(str) == arm) & (in_mode["family"] == f)]
                if not sel.empty:
                    x = i + (j - (len(arms) - 1) / 2) * width
                    _bar(ax, x, sel.iloc[0], _color(arms, arm), width * 0.95)
        ax.set_xticks(range(len(fams)))
        ax.set_xticklabels(fams, rotation=20, ha="right")
        ax.set_ylabel("EpG (J / successful goal)")
        ax.set_title(f"{mode} mode")
        if needs_log(in_mode["epg_j"]):
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.grid(axis="y", lw=0.3, alpha=0.5)
    from matplotlib.patches import Patch

    handles = [Patch(color=_color(arms, a), label=a) for a in arms]
    handles.append(ax.plot([], [], ls="none", marker="o", mfc="white", mec="#333333", label="no interval")[0])
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.955),
        ncols=min(len(handles), 6),
        fontsize=FONT - 2,
    )
    fig.suptitle("Energy per successful goal by arm (whiskers: cluster-bootstrap interval)")
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    run, src = footer_label(epg, reference)
    return save(fig, out_dir, EPG_BY_ARM, run, src)


# --------------------------------------------------------------------------- cmp2
def _forest_rows(
    ooi: pd.DataFrame, arms: Sequence[str], pooled_estimand: str
) -> list[tuple[str, str, pd.Series]]:
    """``(arm, scope, row)``: each family's OOI per arm, then each arm's overall headline estimand."""
    fam = ooi[ooi["estimand"].astype(str) == "family"]
    out = []
    for f in dict.fromkeys(fam["scope"].astype(str)):
        for a in arms:
            sel = fam[(fam["arm"].astype(str) == a) & (fam["scope"].astype(str) == f)]
            if not sel.empty:
                out.append((a, f, sel.iloc[0]))
    over = ooi[(ooi["scope"].astype(str) == OVERALL) & (ooi["estimand"].astype(str) == pooled_estimand)]
    for a in arms:
        sel = over[over["arm"].astype(str) == a]
        if not sel.empty:
            out.append((a, f"{OVERALL} ({pooled_estimand})", sel.iloc[0]))
    return out


def fig_ooi_forest_arms(
    ooi: pd.DataFrame, out_dir: Path, reference: str, pooled_estimand: str, epg: pd.DataFrame
) -> list[Path]:
    plt = pyplot()
    arms = _arms(ooi, reference)
    rows = _forest_rows(ooi, arms, pooled_estimand)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.22 * len(rows) + 1.4))
    known = [
        float(r[k])
        for _, _, r in rows
        for k in ("ooi", "ci_low", "ci_high")
        if finite(r[k]) and float(r[k]) > 0
    ]
    x0, x1 = min([*known, 1.0]) / 1.5, max([*known, 1.0]) * 1.5
    labels = []
    for y, (arm, scope, r) in enumerate(rows):
        color = _color(arms, arm)
        v = float(r["ooi"]) if finite(r["ooi"]) else math.nan
        if finite(v) and v > 0:
            lo, hi = r["ci_low"], r["ci_high"]
            if finite(lo) and finite(hi):
                ax.plot([max(float(lo), x0), min(float(hi), x1)], [y, y], color=color, lw=1.2)
            ax.plot(v, y, marker="D" if scope.startswith(OVERALL) else "o", color=color, ms=4)
            if not (finite(lo) and finite(hi)):
                ax.annotate(
                    "no interval",
                    (v, y),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=FONT - 3,
                    color="#555555",
                )
        else:
            ax.annotate(
                "undefined (a mode without success)",
                (math.sqrt(x0 * x1), y),
                ha="center",
                va="center",
                fontsize=FONT - 3,
                color=ALERT,
            )
        labels.append(f"{scope} | {arm}")
    ax.axvline(1.0, color="#333333", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(x0, x1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # top to bottom, with room for the last row's note
    ax.set_xlabel("OOI = EpG(agentic) / EpG(linear)  (log scale; 1 = no overhead)")
    ax.set_title("Orchestration overhead index per family and arm")
    ax.grid(axis="x", lw=0.3, alpha=0.5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    run, src = footer_label(epg, reference)
    return save(fig, out_dir, OOI_FOREST_ARMS, run, src)


# --------------------------------------------------------------------------- cmp3
def pareto_front(energy: Sequence[float], success: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats: none has less (or equal) energy per
    execution and a higher (or equal) success rate, strictly better in one. Ordered by energy."""
    pts = [
        (float(e), float(s), i)
        for i, (e, s) in enumerate(zip(energy, success, strict=True))
        if finite(e) and finite(s)
    ]
    pts.sort(key=lambda p: (p[0], -p[1]))
    front, best = [], -math.inf
    for _e, s, i in pts:
        if s > best:
            front.append(i)
            best = s
    return front


def fig_success_vs_energy_arms(epg: pd.DataFrame, out_dir: Path, reference: str) -> list[Path]:
    plt = pyplot()
    arms = _arms(epg, reference)
    rows = _family_rows(epg).copy()
    rows["e_per_exec"] = rows["energy_total_j"].astype(float) / rows["executions"].astype(float)
    fams = list(dict.fromkeys(rows["family"].astype(str)))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
    for _, r in rows.iterrows():
        color = _color(arms, str(r["arm"]))
        marker = FAMILY_MARKERS[fams.index(str(r["family"])) % len(FAMILY_MARKERS)]
        filled = MODE_FILL.get(str(r["mode"]), True)
        ax.plot(
            r["e_per_exec"],
            r["success_rate"],
            marker=marker,
            ls="none",
            ms=6,
            mfc=color if filled else "white",
            mec=color,
            mew=1.2,
        )
    idx = pareto_front(rows["e_per_exec"].tolist(), rows["success_rate"].tolist())
    if idx:
        front = rows.iloc[idx]
        ax.step(
            front["e_per_exec"],
            front["success_rate"],
            where="post",
            color="#333333",
            lw=0.9,
            ls="--",
            zorder=0,
        )
    if needs_log(rows["e_per_exec"]):
        ax.set_xscale("log")
    ax.set_xlabel("energy per execution (J)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(lw=0.3, alpha=0.5)
    handles = [ax.plot([], [], ls="none", marker="s", color=_color(arms, a), label=a)[0] for a in arms]
    handles += [
        ax.plot(
            [],
            [],
            ls="none",
            marker=FAMILY_MARKERS[i % len(FAMILY_MARKERS)],
            mfc="#999999",
            mec="#555555",
            label=f,
        )[0]
        for i, f in enumerate(fams)
    ]
    handles += [
        ax.plot([], [], ls="none", marker="o", mfc="#555555", mec="#555555", label="linear (filled)")[0],
        ax.plot([], [], ls="none", marker="o", mfc="white", mec="#555555", label="agentic (hollow)")[0],
        ax.plot([], [], color="#333333", ls="--", lw=0.9, label="Pareto front")[0],
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=FONT - 2)
    ax.set_title("Success against energy per execution: one marker per arm x family x mode")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    run, src = footer_label(epg, reference)
    return save(fig, out_dir, SUCCESS_VS_ENERGY_ARMS, run, src)


def draw_compare(
    epg: pd.DataFrame,
    ooi: pd.DataFrame,
    ratios: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    reference: str,
    pooled_estimand: str = "ratio_of_means",
) -> list[Path]:
    """Draw the three comparison figures into ``out_dir``; returns the files written.
    (``ratios`` is accepted for the rule's inputs; the figures show the arms' own estimates.)"""
    del ratios
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    epg = epg.assign(arm=epg["arm"].astype(str))
    ooi = ooi.assign(arm=ooi["arm"].astype(str))
    return [
        *fig_epg_by_arm(epg, out, reference),
        *fig_ooi_forest_arms(ooi, out, reference, pooled_estimand, epg),
        *fig_success_vs_energy_arms(epg, out, reference),
    ]
