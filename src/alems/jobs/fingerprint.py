"""The Snakemake ``fingerprint`` rule: hardware, environment and the canonical config, with their hashes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from alems.contracts import family_benchmarks
from alems.llm.fetch import model_sha256
from alems.provenance import Fingerprint, write_provenance
from alems.tasks import benchmarks_dir
from alems.tasks.catalog import benchmark_provenance


def fingerprint_job(
    config: Mapping[str, Any], model_files: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]
) -> Fingerprint:
    """Write ``{hardware,environment,config,hashes}.json`` into ``out_dir`` for ``config`` (the
    hashed config: :func:`alems.contracts.hashed_config`); the sha256 of the first of
    ``model_files`` (the GGUF the study loads, none for a server or the scripted backend)
    goes into the environment, and so do the name and sha256 of every benchmark data file the
    study's families draw from (verified against the catalog)."""
    names = family_benchmarks(config["study"]["families"], config)
    return write_provenance(
        out_dir,
        config,
        model_sha256=model_sha256(model_files[0]) if model_files else None,
        model_name=config["llm"]["model"],
        benchmarks=benchmark_provenance(names, benchmarks_dir(config)) if names else None,
    )
