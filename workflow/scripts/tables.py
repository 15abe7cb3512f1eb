"""rule tables: all runs' goals, EpG and OOI; refuses to mix runs with different provenance."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from alems.jobs.tables import tables_job

tables = tables_job(
    snakemake.input.goals,
    snakemake.input.meta,
    dict(snakemake.output.items()),
    hashes_path=snakemake.input.hashes,
    metrics=snakemake.params.metrics,
    groups=snakemake.params.groups,
    allow_mixed=snakemake.params.allow_mixed,
    call_paths=snakemake.input.calls,
)
print(f"{tables.label} tables for run_id {tables.run_id}", file=sys.stderr)
