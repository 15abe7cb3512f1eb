"""rule run_family: one (family, rep) with the meter on; samples, events, goals, run.json."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

from pathlib import Path

from alems.jobs.run_family import run_family_job

run_family_job(
    snakemake.params.cfg,
    snakemake.wildcards.family,
    int(snakemake.wildcards.rep),
    dict(snakemake.output.items()),
    hashes_path=snakemake.input.hashes,
    baseline_path=snakemake.input.baseline,
    threads=snakemake.threads,
    model_path=snakemake.input.get("model"),
    work_root=Path(snakemake.log[0]).parent,
)
