"""The Snakemake ``manifest`` rule: every output with its sha256 and size, plus the provenance hashes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from alems.provenance import load_hashes, write_manifest


def manifest_job(
    out_path: str | os.PathLike[str],
    files: Iterable[str | os.PathLike[str]],
    *,
    hashes_path: str | os.PathLike[str],
) -> dict[str, Any]:
    """Write the manifest of ``files`` to ``out_path`` with the hashes of ``hashes_path``; returns it."""
    return write_manifest(out_path, list(files), load_hashes(hashes_path))
