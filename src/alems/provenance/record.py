"""The provenance record of one host: hardware, environment and canonical config collected and
hashed together (:func:`fingerprint`), and written as ``{hardware,environment,config,hashes}.json``
(:func:`write_provenance`). The volatile readings are recorded beside the hashes, never hashed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alems.contracts import PROVENANCE_FILES
from alems.io import atomic_write_json
from alems.provenance.environment import DEFAULT_CODE_PATHS, collect_environment
from alems.provenance.hardware import collect_hardware
from alems.provenance.hashing import Hashes, canonical_config
from alems.provenance.host import HostPaths, Runner, utc_iso


@dataclass
class Fingerprint:
    """Everything ``alems fingerprint`` reports. ``volatile`` is recorded, never hashed."""

    hardware: dict[str, Any]
    environment: dict[str, Any]
    config: dict[str, Any] | None
    hashes: Hashes
    volatile: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware,
            "environment": self.environment,
            "config": self.config,
            "hashes": self.hashes.to_dict(),
            "volatile": self.volatile,
        }


def fingerprint(
    cfg: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    paths: HostPaths | None = None,
    nvml: Any = None,
    run: Runner | None = None,
    model_sha256: str | None = None,
    model_name: str | None = None,
    benchmarks: Mapping[str, Any] | None = None,
    distributions: Mapping[str, str] | None = None,
    llama_build: Mapping[str, Any] | None = None,
    llama_build_path: str | os.PathLike[str] | None = None,
    repo_dir: str | os.PathLike[str] | None = None,
    code_paths: Sequence[str] = DEFAULT_CODE_PATHS,
    wall_clock: Callable[[], float] = time.time,
) -> Fingerprint:
    """Collect hardware, environment and (if given) the canonical config, and hash them.

    Every host input is injectable; the defaults read the real machine.
    """
    paths = paths or HostPaths()
    hardware, hw_volatile = collect_hardware(paths, nvml=nvml, run=run)
    environment, env_volatile = collect_environment(
        paths=paths,
        model_sha256=model_sha256,
        model_name=model_name,
        benchmarks=benchmarks,
        distributions=distributions,
        llama_build=llama_build,
        llama_build_path=llama_build_path,
        repo_dir=repo_dir,
        run=run,
        code_paths=code_paths,
    )
    config = canonical_config(cfg, defaults) if cfg is not None else None
    now = wall_clock()
    volatile = {"timestamp_unix": now, "timestamp_utc": utc_iso(now), **hw_volatile, **env_volatile}
    return Fingerprint(hardware, environment, config, Hashes.compute(hardware, environment, config), volatile)


def write_provenance(
    outdir: str | os.PathLike[str], cfg: Mapping[str, Any] | None, **kwargs: Any
) -> Fingerprint:
    """Fingerprint this host and write ``{hardware,environment,config,hashes}.json`` atomically
    into ``outdir`` (``results/provenance``). ``hashes.json`` holds the hashes and, beside
    them, the volatile readings. ``kwargs`` go to :func:`fingerprint`.

    Each hash equals ``sha256(canonical_json(<file content>))[:16]`` of its file.
    """
    fp = kwargs.pop("fingerprint", None) or fingerprint(cfg, **kwargs)
    out = Path(outdir)
    hardware_json, environment_json, config_json, hashes_json = PROVENANCE_FILES
    atomic_write_json(out / hardware_json, fp.hardware)
    atomic_write_json(out / environment_json, fp.environment)
    atomic_write_json(out / config_json, fp.config if fp.config is not None else {})
    atomic_write_json(out / hashes_json, {**fp.hashes.to_dict(), "volatile": fp.volatile})
    return fp
