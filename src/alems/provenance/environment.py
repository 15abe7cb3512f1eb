"""The environment fingerprint (``environment.json``): Python, every installed distribution,
the llama-cpp-python build flags, the model's sha256, the OS, and the git commit with a hash
of the uncommitted changes to the code; local paths are kept beside it, never hashed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alems.io import file_sha256
from alems.llm.runtime import build_record_path
from alems.provenance.host import HostPaths, Runner, read_text, run_command

#: Paths whose uncommitted changes move ``env_hash`` (the code that produces results).
#: Edits elsewhere (README, tests) do not; config edits move ``config_hash`` instead.
DEFAULT_CODE_PATHS: tuple[str, ...] = ("src", "workflow", "Snakefile", "pyproject.toml", "envs")

#: Keys of ``llama_build.json`` that are local paths, not build flags: recorded, not hashed.
_LLAMA_UNHASHED_KEYS = frozenset({"wheel_cache", "host_cpu_flags", "load_failure"})

#: Where :func:`git_state` looks for the repository when none is given: the ``alems``
#: package's folder (inside the checkout when A-LEMS runs from one), then the working directory.
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def installed_distributions() -> dict[str, str]:
    """Every installed distribution: normalised name -> version, sorted by name."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return dict(sorted(found.items()))


def read_llama_build(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The llama-cpp-python build record ``make llama`` writes (:func:`alems.llm.runtime.build_record_path`);
    an unreadable one is recorded as such rather than dropped."""
    p = Path(path) if path is not None else build_record_path()
    text = read_text(p)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"error": f"unreadable build record {p}"}
    return data if isinstance(data, dict) else {"error": f"unexpected build record in {p}"}


# =========================================================================== git
def _git_toplevel(repo_dir: str | os.PathLike[str] | None, run: Runner) -> str | None:
    """The repository's top folder (``repo_dir``'s, else the package's or the working directory's)."""
    candidates = [Path(repo_dir)] if repo_dir is not None else [_PACKAGE_DIR, Path.cwd()]
    for cand in candidates:
        res = run(["git", "-C", str(cand), "rev-parse", "--show-toplevel"])
        if res is not None and res[0] == 0 and res[1].strip():
            return res[1].strip()
    return None


def _changes_sha256(
    top: str, commit: str | None, status_lines: list[str], run: Runner, code_paths: Sequence[str]
) -> str:
    """sha256 over the diff against ``HEAD`` and every untracked file's path and content."""
    h = hashlib.sha256()
    if commit is not None:
        diff = run(["git", "-C", top, "diff", "HEAD", "--binary", "--", *code_paths])
        h.update((diff[1] if diff is not None else "").encode())
    for ln in sorted(status_lines):
        if ln.startswith("??"):
            rel = ln[3:].strip().strip('"')
            h.update(rel.encode())
            try:
                h.update(file_sha256(Path(top) / rel).encode())
            except OSError:
                h.update(b"<unreadable>")
    return h.hexdigest()


def git_state(
    repo_dir: str | os.PathLike[str] | None = None,
    *,
    run: Runner | None = None,
    code_paths: Sequence[str] = DEFAULT_CODE_PATHS,
) -> dict[str, Any]:
    """Commit, dirty flag and a hash of the uncommitted changes under ``code_paths``.

    Without git (or outside a repository) every field is ``None``.
    """
    run = run or run_command
    top = _git_toplevel(repo_dir, run)
    empty = {"commit": None, "dirty": None, "diff_sha256": None, "scope": list(code_paths)}
    if top is None:
        return empty
    head = run(["git", "-C", top, "rev-parse", "HEAD"])
    commit = head[1].strip() if head is not None and head[0] == 0 and head[1].strip() else None
    status = run(["git", "-C", top, "status", "--porcelain", "--untracked-files=all", "--", *code_paths])
    if status is None or status[0] != 0:
        return {**empty, "commit": commit}
    lines = [ln for ln in status[1].splitlines() if ln.strip()]
    dirty = bool(lines)
    diff_sha = _changes_sha256(top, commit, lines, run, code_paths) if dirty else None
    return {"commit": commit, "dirty": dirty, "diff_sha256": diff_sha, "scope": list(code_paths)}


# =========================================================================== the record
def _os_pretty_name(paths: HostPaths) -> str | None:
    for line in (read_text(paths.os_release) or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def _python() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cache_tag": sys.implementation.cache_tag,
    }


def collect_environment(
    *,
    paths: HostPaths | None = None,
    model_sha256: str | None = None,
    model_name: str | None = None,
    benchmarks: Mapping[str, Any] | None = None,
    distributions: Mapping[str, str] | None = None,
    llama_build: Mapping[str, Any] | None = None,
    llama_build_path: str | os.PathLike[str] | None = None,
    repo_dir: str | os.PathLike[str] | None = None,
    run: Runner | None = None,
    code_paths: Sequence[str] = DEFAULT_CODE_PATHS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(environment, volatile)``: the hashed software record and the local paths beside it.

    ``benchmarks`` (:func:`alems.tasks.catalog.benchmark_provenance`: each data file's name,
    sha256, source and licence) is recorded under ``benchmarks`` when a study draws from any,
    so the data's checksum is part of the environment hash; without them the key is absent
    and older records keep their hash."""
    paths = paths or HostPaths()
    build = dict(llama_build) if llama_build is not None else read_llama_build(llama_build_path)
    build_hashed = {k: v for k, v in build.items() if k not in _LLAMA_UNHASHED_KEYS} if build else None
    libc = platform.libc_ver()
    dists = distributions if distributions is not None else installed_distributions()
    environment = {
        "python": _python(),
        "os": {"name": _os_pretty_name(paths), "libc": f"{libc[0]} {libc[1]}".strip() or None},
        "distributions": dict(sorted(dists.items())),
        "llama_cpp_build": build_hashed,
        "model": {"name": model_name, "sha256": model_sha256},
        "git": git_state(repo_dir, run=run, code_paths=code_paths),
    }
    if benchmarks:
        environment["benchmarks"] = {k: dict(v) for k, v in sorted(benchmarks.items())}
    volatile = {
        "python_executable": sys.executable,
        "sys_prefix": sys.prefix,
        "llama_build_local": {k: v for k, v in build.items() if k in _LLAMA_UNHASHED_KEYS} if build else None,
    }
    return environment, volatile
