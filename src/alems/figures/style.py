"""What every figure shares: the figure names (:data:`alems.contracts.FIGURES`), colours,
sizes and fonts, the footer (run_id, energy source, energy layer), the atomic save as PNG
and PDF, and the guards that keep zero, negative and infinite values visible."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alems.contracts import FIGURE_FORMATS, FIGURES, GROUPS, MODES, OVERALL
from alems.figures.inputs import FigureInputs
from alems.io import atomic_path

#: The file name of each figure, in the order of :data:`alems.contracts.FIGURES`.
EPG, OOI_FOREST, PHASES, POWER_TIMELINE, SUCCESS_VS_ENERGY, IDLE_BASELINE, OOI_DECOMPOSITION, ROLES = FIGURES

COLORS = {"linear": "#4C72B0", "agentic": "#DD8452"}
PHASE_COLORS = {"llm_j": "#4C72B0", "tool_j": "#DD8452", "orchestration_j": "#8C8C8C", "gap_j": "#C9C9C9"}
PHASE_LABELS = {
    "llm_j": "LLM",
    "tool_j": "tool",
    "orchestration_j": "orchestration",
    "gap_j": "between attempts",
}
GROUP_SCOPES: tuple[str, ...] = (*GROUPS, OVERALL)
FAMILY_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
WIDTH_IN = 7.0  # two-column figure width
FONT = 8
ALERT = "#AA0000"  # what needs the reader's attention: values at or below zero, undefined estimates


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, with the figures' fonts (imported only to draw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": FONT,
            "axes.titlesize": FONT + 1,
            "axes.labelsize": FONT,
            "legend.fontsize": FONT - 1,
            "xtick.labelsize": FONT - 1,
            "ytick.labelsize": FONT - 1,
            "pdf.fonttype": 42,
            "svg.hashsalt": "alems",
        }
    )
    return plt


def footer_text(run_id: str, modeled: bool | str, layer: str | None = None) -> str:
    """The footer: run_id, where the energy came from, and the energy layer where given.

    ``modeled`` is a bool (old form) or a label from :func:`~alems.figures.inputs.source_label`,
    optionally followed by ``" | energy layer: ..."`` (:func:`label`).
    """
    text = ("modeled" if modeled else "measured") if isinstance(modeled, bool) else str(modeled)
    text, _, rest = text.partition(" | ")
    if rest and not layer:
        layer = rest.removeprefix("energy layer: ")
    if text == "modeled":
        energy = "energy MODELED (CPU power model)"
    elif text.startswith("mixed"):
        energy = "energy " + text.replace("modeled", "MODELED (CPU power model)", 1)
    else:
        energy = "energy measured (hardware counters)"
    tail = f" | energy layer: {layer}" if layer else ""
    return f"A-LEMS run_id {run_id} | {energy}{tail}"


def label(provenance: str, layer: str | None) -> str:
    """A footer label: the energy provenance and, where known, the energy layer."""
    return f"{provenance} | energy layer: {layer}" if layer else provenance


def table_label(inp: FigureInputs) -> str:
    """The footer label of a figure drawn from epg/ooi: the tables' provenance and energy layer."""
    return label(inp.provenance(), inp.layer())


def save(fig: Any, out_dir: Path, name: str, run_id: str, modeled: bool | str) -> list[Path]:
    """Add the footer, write ``out_dir/name`` in every :data:`~alems.contracts.FIGURE_FORMATS`
    (atomically), close the figure and return the files."""
    w_in, h_in = fig.get_size_inches()
    chars = max(40, int(w_in * 72 / (0.55 * (FONT - 2))))  # what fits across at the footer's size
    lines = textwrap.wrap(footer_text(run_id, modeled), chars, break_on_hyphens=False)
    if len(lines) > 1:  # lift the axes by the extra lines so the footer does not overlap them
        extra = (len(lines) - 1) * (FONT - 1) / 72 / h_in
        fig.subplots_adjust(bottom=min(0.6, fig.subplotpars.bottom + extra))
    fig.text(0.005, 0.004, "\n".join(lines), fontsize=FONT - 2, color="#555555", ha="left", va="bottom")
    out = []
    for ext in FIGURE_FORMATS:
        target = out_dir / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=200, metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(target)
    pyplot().close(fig)
    return out


def families(inp: FigureInputs) -> list[str]:
    """The families of goals.csv, in the order they first appear."""
    return list(dict.fromkeys(inp.goals["family"].astype(str))) if "family" in inp.goals else []


def finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def is_pos_inf(x: Any) -> bool:
    try:
        return float(x) == math.inf
    except (TypeError, ValueError):
        return False


def as_float(x: Any) -> float:
    """``x`` as a float where it is a number (infinities included), else NaN."""
    return float(x) if finite(x) or str(x) in ("inf", "-inf") else float("nan")


def needs_log(values: Iterable[Any]) -> bool:
    """A log axis when positive values span more than 30x, and never when one is zero or negative
    (a log axis would drop it)."""
    known = [float(x) for x in values if finite(x)]
    if any(x <= 0 for x in known):
        return False
    return len(known) >= 2 and max(known) / min(known) > 30


def mark_nonpositive(ax: Any, xs: Sequence[float], values: Sequence[Any], color: str) -> None:
    """A marker on bars at or below zero, so they stay visible (on a linear axis a zero bar has no height)."""
    for x, v in zip(xs, values, strict=True):
        if finite(v) and float(v) <= 0:
            ax.plot(x, float(v), marker="v" if float(v) < 0 else "o", color=color, mec=ALERT, ms=5, zorder=4)
            ax.annotate(
                "<0" if float(v) < 0 else "0",
                (x, float(v)),
                xytext=(0, -9),
                textcoords="offset points",
                ha="center",
                fontsize=FONT - 2,
                color=ALERT,
            )


def epg_cells(inp: FigureInputs) -> pd.DataFrame:
    """The per-(family, mode) rows of epg.csv (group and overall rows left out)."""
    e = inp.epg
    fams = set(families(inp))
    return e[e["family"].astype(str).isin(fams) & e["mode"].astype(str).isin(MODES)]
