"""rule figures: the eight paper figures (PNG and PDF) from tables, baseline and one run."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from alems.jobs.figures import figures_job

written = figures_job(
    goals=snakemake.input.goals,
    epg=snakemake.input.epg,
    ooi=snakemake.input.ooi,
    baseline=snakemake.input.baseline,
    samples=snakemake.input.samples,
    events=snakemake.input.events,
    timeline_family=snakemake.params.timeline_family,
    decomposition=snakemake.input.decomposition,
    roles=snakemake.input.roles,
    out_dir=Path(snakemake.output.fig1).parent,
)
print("\n".join(str(p) for p in written), file=sys.stderr)
