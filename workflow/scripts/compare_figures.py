"""rule compare_figures: the cross-arm figures (PNG and PDF) from results/compare/*.csv."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from alems.jobs.compare import compare_figures_job

written = compare_figures_job(
    epg=snakemake.input.epg,
    ooi=snakemake.input.ooi,
    ratios=snakemake.input.ratios,
    reference=snakemake.params.reference,
    pooled_estimand=snakemake.params.pooled_estimand,
    out_dir=Path(snakemake.output.png1).parent,
)
print("\n".join(str(p) for p in written), file=sys.stderr)
