"""Atomic file output: write to a temporary sibling, fsync, then rename into place.

A killed process leaves either the old file or no file, never a half-written one
that Snakemake would take for a finished output. Also the small readers and hashes
every layer shares: tolerant reads of sysfs/``/proc`` files, canonical JSON, a file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def read_text_or_none(path: str | os.PathLike[str], *, errors: str = "strict") -> str | None:
    """The stripped text of a small file (sysfs, ``/proc``), or ``None`` if it cannot be read."""
    try:
        return Path(path).read_text(errors=errors).strip()
    except OSError:
        return None


def read_int_or_none(path: str | os.PathLike[str], *, errors: str = "strict") -> int | None:
    """The integer a small file holds, or ``None`` if it cannot be read or is not an integer."""
    text = read_text_or_none(path, errors=errors)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def canonical_json(obj: Any) -> str:
    """Sorted keys, no insignificant whitespace: the form that hashes are taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes, read in ``chunk``-byte blocks (1 MiB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, sort_keys=True, indent=indent, allow_nan=True) + "\n")


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Run ``writer(tmp_path)`` (e.g. ``df.to_parquet``) and move the result into place."""
    with atomic_path(path) as tmp:
        writer(tmp)
