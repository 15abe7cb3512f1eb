"""The Snakemake ``fingerprint`` rule: hardware, environment and the canonical config, with their hashes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from alems.llm.fetch import model_sha256
from alems.provenance import Fingerprint, write_provenance


def fingerprint_job(
    config: Mapping[str, Any], model_files: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]
) -> Fingerprint:
    """Write ``{hardware,environment,config,hashes}.json`` into ``out_dir`` for ``config`` (the
    hashed config: :func:`alems.contracts.hashed_config`); the sha256 of the first of
    ``model_files`` (the GGUF the study loads, none for a server or the scripted backend)
    goes into the environment."""
    return write_provenance(
        out_dir,
        config,
        model_sha256=model_sha256(model_files[0]) if model_files else None,
        model_name=config["llm"]["model"],
    )
