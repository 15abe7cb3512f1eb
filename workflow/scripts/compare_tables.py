"""rule compare_tables: the arms' EpG and OOI side by side, and paired EpG ratios against the reference arm."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from alems.jobs.compare import compare_job

tables = compare_job(
    snakemake.params.arms,
    goals=snakemake.input.goals,
    epg=snakemake.input.epg,
    ooi=snakemake.input.ooi,
    hashes=snakemake.input.hashes,
    outputs=dict(snakemake.output.items()),
    reference=snakemake.params.reference,
    metrics=snakemake.params.metrics,
    groups=snakemake.params.groups,
    allow_mixed_hosts=snakemake.params.allow_mixed_hosts,
)
print(f"{len(tables.ratios)} ratio rows against {snakemake.params.reference}", file=sys.stderr)
