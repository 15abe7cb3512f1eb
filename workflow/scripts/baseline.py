"""rule baseline: the idle power of every domain the meter reports (cached per host)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

from alems.study import measure_idle_baseline, preflight_study

preflight_study(snakemake.params.llm, threads=snakemake.threads)

measure_idle_baseline(
    snakemake.params.energy,
    snakemake.params.baseline,
    snakemake.output[0],
    hashes_path=snakemake.input.hashes,
)
