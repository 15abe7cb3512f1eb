"""rule baseline: the idle power of every domain the meter reports (cached per host)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

from alems.jobs.baseline import baseline_job

baseline_job(
    {
        "baseline": snakemake.params.baseline,
        "energy": snakemake.params.energy,
        "llm": snakemake.params.llm,
    },
    snakemake.output[0],
    hashes_path=snakemake.input.hashes,
    threads=snakemake.threads,
)
