"""rule figures: the six paper figures (PNG and PDF) from tables, baseline and one run."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from alems.figures import FigureInputs, make_all

inputs = FigureInputs.load(
    goals=snakemake.input.goals,
    epg=snakemake.input.epg,
    ooi=snakemake.input.ooi,
    baseline=snakemake.input.baseline,
    samples=snakemake.input.samples,
    events=snakemake.input.events,
    timeline_family=snakemake.params.timeline_family,
)
written = make_all(inputs, Path(snakemake.output.fig1).parent)
print("\n".join(str(p) for p in written), file=sys.stderr)
