"""The ``samples`` file: a sampler's table as parquet, with its domains in the file metadata.

pandas and pyarrow are imported inside the functions: the sampler's child process
imports the ``alems.energy`` package (which re-exports these functions) and never needs
them, and pandas alone would add about 0.45 s to every child start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from alems.energy.base import Domain
from alems.io import atomic_write_with

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Parquet metadata keys of a samples file.
META_DOMAINS = b"alems.domains"
META_SCHEMA = b"alems.schema"
SAMPLES_SCHEMA = "samples/1"


def domain_to_dict(d: Domain) -> dict[str, Any]:
    out = asdict(d)
    out["info"] = dict(d.info)
    return out


def domain_from_dict(m: dict[str, Any]) -> Domain:
    return Domain(**{**m, "info": dict(m.get("info") or {})})


def write_samples(df: pd.DataFrame, domains: Sequence[Domain], path: str) -> None:
    """Write a samples table to parquet, atomically, with its domains in the file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    missing = [d.key for d in domains if d.key not in df.columns]
    if missing:
        raise ValueError(f"samples table has no column for domains {missing}")
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[META_DOMAINS] = json.dumps([domain_to_dict(d) for d in domains], default=str).encode()
    meta[META_SCHEMA] = SAMPLES_SCHEMA.encode()
    table = table.replace_schema_metadata(meta)
    atomic_write_with(path, lambda tmp: pq.write_table(table, tmp))


def read_samples(path: str) -> tuple[pd.DataFrame, list[Domain]]:
    """Read a file written by :func:`write_samples`: the table and its domains."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if META_DOMAINS not in meta:
        raise ValueError(f"{path} is not an A-LEMS samples file (no {META_DOMAINS.decode()} metadata)")
    domains = [domain_from_dict(m) for m in json.loads(meta[META_DOMAINS])]
    return table.to_pandas(), domains
