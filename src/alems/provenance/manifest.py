"""The manifest: every output with its sha256 and size, plus the provenance hashes; and its
verification (which listed files changed or went missing since).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alems.errors import ProvenanceError
from alems.io import atomic_write_json, file_sha256
from alems.provenance.hashing import HASH_FIELDS, Hashes
from alems.provenance.host import utc_iso

MANIFEST_VERSION = 1

_REGENERATE = "regenerate it: `snakemake --cores 1 --forcerun manifest all`"


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")))
        else:
            out.append(p)
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def build_manifest(
    paths: Iterable[str | os.PathLike[str]],
    hashes: Hashes | Mapping[str, Any],
    *,
    root: str | os.PathLike[str] = ".",
    exclude: Iterable[str | os.PathLike[str]] = (),
    wall_clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """A manifest of ``paths`` (directories expand to the files under them): each file's path
    relative to ``root``, sha256 and size, with ``hw_hash``, ``env_hash``, ``config_hash``
    and ``run_id``. A path that does not exist is a :class:`ProvenanceError`."""
    root_p = Path(root)
    h = hashes.to_dict() if isinstance(hashes, Hashes) else Hashes.from_mapping(hashes).to_dict()
    skip = {Path(e).resolve() for e in exclude}
    entries: dict[str, dict[str, Any]] = {}
    missing = []
    for p in _expand(paths):
        if p.resolve() in skip:
            continue
        if not p.is_file():
            missing.append(str(p))
            continue
        rel = _rel(p, root_p)
        entries[rel] = {"path": rel, "sha256": file_sha256(p), "size": p.stat().st_size}
    if missing:
        raise ProvenanceError(
            f"cannot list outputs that do not exist: {', '.join(missing)}",
            fix="produce those outputs first (snakemake --cores 1 all), or leave them out of the manifest",
        )
    now = wall_clock()
    return {
        "version": MANIFEST_VERSION,
        "created_utc": utc_iso(now),
        **h,
        "files": [entries[k] for k in sorted(entries)],
    }


def write_manifest(
    path: str | os.PathLike[str],
    paths: Iterable[str | os.PathLike[str]],
    hashes: Hashes | Mapping[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Build a manifest (paths relative to the manifest's folder unless ``root`` is given; the
    manifest never lists itself) and write it atomically. Returns the manifest."""
    target = Path(path)
    manifest = build_manifest(
        paths, hashes, root=root if root is not None else target.parent, exclude=[target], **kwargs
    )
    if root is not None:  # where the listed paths start, relative to the manifest's folder
        manifest["root"] = Path(os.path.relpath(Path(root).resolve(), target.parent.resolve())).as_posix()
    atomic_write_json(target, manifest)
    return manifest


@dataclass
class VerifyReport:
    """What :func:`verify_manifest` found. ``ok`` is true when nothing changed or went missing."""

    manifest: str
    checked: int
    changed: list[dict[str, Any]]
    missing: list[str]
    hashes: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.changed and not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "ok": self.ok,
            "checked": self.checked,
            "changed": self.changed,
            "missing": self.missing,
            "hashes": self.hashes,
        }


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ProvenanceError(
            f"manifest {p} not found", fix="run `snakemake --cores 1 all` to produce it, or pass --manifest"
        ) from exc
    except OSError as exc:
        raise ProvenanceError(
            f"cannot read manifest {p}: {exc.strerror}", fix=f"check the permissions of {p}"
        ) from exc
    except ValueError as exc:
        raise ProvenanceError(f"manifest {p} is not valid JSON", fix=_REGENERATE) from exc
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(
        isinstance(e, dict) and "path" in e and "sha256" in e for e in files
    ):
        raise ProvenanceError(f"manifest {p} has no valid `files` list", fix=_REGENERATE)
    return data


def _change(entry: Mapping[str, Any], file: Path) -> dict[str, Any] | None:
    """How ``file`` differs from its manifest ``entry`` (sha256, or size where listed); ``None`` if not."""
    size = file.stat().st_size
    digest = file_sha256(file)
    if digest == entry["sha256"] and (entry.get("size") is None or size == entry["size"]):
        return None
    return {
        "path": entry["path"],
        "expected_sha256": entry["sha256"],
        "actual_sha256": digest,
        "expected_size": entry.get("size"),
        "actual_size": size,
    }


def verify_manifest(path: str | os.PathLike[str]) -> VerifyReport:
    """Re-hash every file a manifest lists and report those that changed or are missing."""
    p = Path(path)
    data = read_manifest(p)
    root = p.parent / data["root"] if data.get("root") else p.parent
    changed: list[dict[str, Any]] = []
    missing: list[str] = []
    for entry in data["files"]:
        rel = entry["path"]
        f = Path(rel) if Path(rel).is_absolute() else root / rel
        if not f.is_file():
            missing.append(rel)
        elif (change := _change(entry, f)) is not None:
            changed.append(change)
    hashes = {k: data.get(k) for k in (*HASH_FIELDS, "run_id")}
    return VerifyReport(str(p), len(data["files"]), changed, missing, hashes)
