"""The Snakemake ``figures`` rule: the eight paper figures (PNG and PDF), from the tables, the
baseline and one run's samples and events only (matplotlib loads inside :mod:`alems.figures`)."""

from __future__ import annotations

import os
from pathlib import Path

from alems.figures import FigureInputs, make_all

PathLike = str | os.PathLike[str]


def figures_job(
    *,
    goals: PathLike,
    epg: PathLike,
    ooi: PathLike,
    baseline: PathLike,
    samples: PathLike,
    events: PathLike,
    timeline_family: str,
    out_dir: PathLike,
    decomposition: PathLike | None = None,
    roles: PathLike | None = None,
) -> list[Path]:
    """Draw every figure into ``out_dir``; returns the files written. Without
    ``decomposition`` / ``roles`` figures 7 and 8 say which table is missing."""
    inputs = FigureInputs.load(
        goals=goals,
        epg=epg,
        ooi=ooi,
        baseline=baseline,
        samples=samples,
        events=events,
        timeline_family=timeline_family,
        decomposition=decomposition,
        roles=roles,
    )
    return make_all(inputs, out_dir)
