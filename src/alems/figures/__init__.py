"""The eight paper figures, drawn from finished tables only.

This package owns plotting. It computes no metric: EpG, OOI and their intervals come
from ``epg.csv`` and ``ooi.csv``; the phase breakdown sums ``goals.csv`` columns; the
power timeline differences one run's cumulative counters; the baseline figure reads
``idle.json``. Every figure is written as PNG and PDF (atomically) at a size that stays
readable in a two-column paper, with a small footer giving the ``run_id``, where the
energy came from (``measured``, ``modeled``, or e.g. ``mixed: gpu-0 measured, cpu-model
modeled``, from the run's domains) and, for figures drawn from epg/ooi, the energy layer
(``total``, ``dynamic`` or ``attributed``, the ``energy_layer`` column).

Zero and negative energies never vanish: an energy axis is logarithmic only when every
value is positive; bars at or below zero carry a marker; negative phase energies are
stacked below zero. The power timeline reconstructs stepwise counters (NVML) from their
update instants (:mod:`alems.energy.stepwise`), so it shows power, not the staircase.

1. ``fig1_epg``: EpG per family, linear vs agentic, with CIs (log axis when needed).
2. ``fig2_ooi_forest``: OOI per family, reasoning, tool and overall, with CIs and a line at 1.
3. ``fig3_phases``: LLM, tool and orchestration energy per execution, per mode and family.
4. ``fig4_power_timeline``: power over one goal pair, attempt and phase edges marked.
5. ``fig5_success_vs_energy``: success rate against energy per execution.
6. ``fig6_idle_baseline``: the idle-baseline window powers per domain.
7. ``fig7_ooi_decomposition``: the OOI's five factors per family and pooled scope, with CIs
   (from ``ooi_decomposition.csv``).
8. ``fig8_roles``: energy per successful execution by call role, linear beside agentic
   (from ``roles.csv``).

The names are :data:`alems.contracts.FIGURES`. Modules: :mod:`~alems.figures.inputs` (what
figures are drawn from), :mod:`~alems.figures.style` (names, colours, footer, saving) and one
module per figure or pair of figures (``epg``: 1 and 5, ``ooi``: 2, ``phases``: 3,
``timeline``: 4, ``baseline``: 6, ``decomposition``: 7 and 8).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from alems.contracts import FIGURES
from alems.figures.baseline import fig_baseline
from alems.figures.decomposition import fig_decomposition, fig_roles
from alems.figures.epg import fig_epg, fig_success_energy
from alems.figures.inputs import FigureInputs, source_label
from alems.figures.ooi import fig_ooi, forest_rows
from alems.figures.phases import fig_phases, phase_means
from alems.figures.style import (
    EPG,
    IDLE_BASELINE,
    OOI_DECOMPOSITION,
    OOI_FOREST,
    PHASES,
    POWER_TIMELINE,
    ROLES,
    SUCCESS_VS_ENERGY,
    footer_text,
)
from alems.figures.timeline import binned_power, fig_timeline

NAMES: tuple[str, ...] = FIGURES
"""The figures :func:`make_all` draws, in order (:data:`alems.contracts.FIGURES`)."""

DRAW: dict[str, Callable[[FigureInputs, Path], list[Path]]] = {
    EPG: fig_epg,
    OOI_FOREST: fig_ooi,
    PHASES: fig_phases,
    POWER_TIMELINE: fig_timeline,
    SUCCESS_VS_ENERGY: fig_success_energy,
    IDLE_BASELINE: fig_baseline,
    OOI_DECOMPOSITION: fig_decomposition,
    ROLES: fig_roles,
}
"""The function that draws each figure."""


def make_all(inp: FigureInputs, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw all eight figures into ``out_dir``; returns the files written (PNG and PDF each)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in FIGURES:
        written += DRAW[name](inp, out)
    return written


__all__ = [
    "DRAW",
    "NAMES",
    "FigureInputs",
    "binned_power",
    "fig_baseline",
    "fig_decomposition",
    "fig_epg",
    "fig_ooi",
    "fig_phases",
    "fig_roles",
    "fig_success_energy",
    "fig_timeline",
    "footer_text",
    "forest_rows",
    "make_all",
    "phase_means",
    "source_label",
]
