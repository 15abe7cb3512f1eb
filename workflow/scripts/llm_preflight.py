"""rule llm_preflight: the study's LLM backend generates a few tokens, in a child process."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

from alems.study import preflight_study

preflight_study(snakemake.params.llm, snakemake.output[0], threads=snakemake.threads)
