"""rule tables: all runs' goals, EpG and OOI; refuses to mix runs with different provenance."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from alems.provenance import load_hashes
from alems.study import aggregate, write_tables

tables = aggregate(
    snakemake.input.goals,
    snakemake.input.meta,
    metrics=snakemake.params.metrics,
    groups=snakemake.params.groups,
    allow_mixed=snakemake.params.allow_mixed,
    current_hashes=load_hashes(snakemake.input.hashes).to_dict(),
)
write_tables(
    tables,
    snakemake.output.goals,
    snakemake.output.epg,
    snakemake.output.ooi,
    snakemake.output.epg_layers,
    snakemake.output.ooi_layers,
)
print(f"{tables.label} tables for run_id {tables.run_id}", file=sys.stderr)
