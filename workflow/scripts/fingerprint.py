"""rule fingerprint: hardware, environment and canonical config, with their hashes."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from alems.jobs.fingerprint import fingerprint_job

fp = fingerprint_job(
    snakemake.params.config,
    list(snakemake.input.model),
    Path(snakemake.output.hashes).parent,
)
print(f"hashes: {fp.hashes.to_dict()}", file=sys.stderr)
