"""The baseline file and the per-host cache: writing and reading ``idle.json``, the reuse rule
(:func:`reuse_problem`), the per-host cache path, and :func:`obtain_baseline` (reuse or measure).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alems import provenance
from alems.baseline.config import BaselineConfig
from alems.baseline.measure import UNSET, Clock, Progress, Sleep, measure_baseline
from alems.baseline.record import Baseline, this_host
from alems.energy.base import Domain, Meter
from alems.energy.procstat import CpuTimes
from alems.errors import AlemsError, ConfigError
from alems.io import atomic_write_json


class BaselineError(AlemsError):
    """A stored baseline is missing or unreadable."""


class BaselineCacheWarning(UserWarning):
    """A cached baseline could not be reused; a new one is being measured."""


def write_baseline(path: str | os.PathLike[str], baseline: Baseline) -> None:
    atomic_write_json(path, baseline.to_dict())


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file. A missing or malformed one is a :class:`BaselineError` with the fix."""
    p = Path(path)
    remeasure = f"measure it again: `alems baseline --out {p}` (or rerun the workflow's baseline rule)"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise BaselineError(f"no baseline at {p}", fix=remeasure) from exc
    except OSError as exc:
        raise BaselineError(
            f"cannot read baseline {p}: {exc.strerror}", fix=f"check the permissions of {p}"
        ) from exc
    except ValueError as exc:
        raise BaselineError(f"baseline {p} is not valid JSON ({exc})", fix=remeasure) from exc
    try:
        if not isinstance(data, dict):
            raise ValueError("top level is not an object")
        return Baseline.from_dict(data)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise BaselineError(
            f"baseline {p} is malformed ({type(exc).__name__}: {exc})", fix=remeasure
        ) from exc


def reuse_problem(
    cached: Baseline,
    *,
    domains: Sequence[Domain],
    config: BaselineConfig,
    hw_hash: str | None,
    governor: Any,
    turbo: bool | None,
    now: float,
    host: str | None = None,
) -> str | None:
    """Why ``cached`` may not be reused (``None``: it may). ``host``: this machine's name (``None``: not checked)."""
    if host is not None and cached.host != host:
        return f"it was measured on another host ({cached.host} -> {host})"
    if cached.hw_hash != hw_hash:
        return f"hw_hash changed ({cached.hw_hash} -> {hw_hash})"
    if cached.governor != governor:
        return f"governor changed ({cached.governor} -> {governor})"
    if cached.turbo != turbo:
        return f"turbo changed ({cached.turbo} -> {turbo})"
    age = now - cached.created_unix
    if age < 0 or age > config.max_age_s:
        return f"it is {age:.0f} s old (max_age_s = {config.max_age_s:.0f})"
    if not cached.stable:
        return "it was unstable"
    want = {(d.key, d.source) for d in domains}
    have = {(k, s.source) for k, s in cached.stats.items()}
    if want != have:
        return f"its domains {sorted(have)} differ from the meter's {sorted(want)}"
    if cached.config.protocol() != config.protocol():
        return "the baseline protocol (settle/windows/window_s/cv_threshold/max_host_util) changed"
    return None


def host_cache_path(root: str | os.PathLike[str], host: str, hw_hash: str | None) -> Path:
    """The cache file of one host's baseline under ``root``: ``hosts/<host>_<hw_hash>.json``.

    Characters other than letters, digits, ``.``, ``-`` and ``_`` in the host name become ``_``.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", host) or "_"
    return Path(root) / "hosts" / f"{safe}_{hw_hash or 'unknown'}.json"


@dataclass(frozen=True)
class BaselineResult:
    baseline: Baseline
    reused: bool
    reason: str  # why the cache was (not) reused


def _host_state(
    host_paths: Any, hw_hash: Any, governor: Any, turbo: Any
) -> tuple[str | None, Any, bool | None]:
    """``hw_hash``, ``governor`` and ``turbo``, each as given or, where :data:`UNSET`, this
    host's (read through :mod:`alems.provenance` at ``host_paths``)."""
    if hw_hash is UNSET or governor is UNSET or turbo is UNSET:
        paths = host_paths or provenance.HostPaths()
        if hw_hash is UNSET:
            hw_hash = provenance.short_hash(provenance.collect_hardware(paths)[0])
        if governor is UNSET or turbo is UNSET:
            gov, tur = provenance.cpu_power_state(paths)
            governor = gov if governor is UNSET else governor
            turbo = tur if turbo is UNSET else turbo
    return hw_hash, governor, turbo


def _reusable(
    path: Path,
    meter: Meter,
    cfg: BaselineConfig,
    *,
    hw_hash: str | None,
    governor: Any,
    turbo: bool | None,
    host: str | None,
    wall_clock: Clock,
) -> tuple[Baseline | None, str]:
    """The cached baseline at ``path`` if it may be reused (else ``None``), and why.

    A cache that is missing, corrupted or may not be reused emits a
    :class:`BaselineCacheWarning` (attributed to the caller of :func:`obtain_baseline`).
    """
    try:
        cached = load_baseline(path)
    except BaselineError as exc:
        warnings.warn(f"{exc.message}; measuring a new idle baseline", BaselineCacheWarning, stacklevel=3)
        return None, exc.message
    problem = reuse_problem(
        cached,
        domains=meter.domains(),
        config=cfg,
        hw_hash=hw_hash,
        governor=governor,
        turbo=turbo,
        now=wall_clock(),
        host=host,
    )
    if problem is None:
        return cached, f"reused {path} (baseline_id {cached.baseline_id})"
    reason = f"cached baseline {path} not reused: {problem}"
    warnings.warn(f"{reason}; measuring a new idle baseline", BaselineCacheWarning, stacklevel=3)
    return None, reason


def obtain_baseline(
    meter: Meter,
    config: BaselineConfig | None,
    cache_path: str | os.PathLike[str],
    *,
    hw_hash: str | None = UNSET,
    governor: Any = UNSET,
    turbo: bool | None = UNSET,
    host_paths: Any = None,
    host: str | None = UNSET,
    reuse: bool = True,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    wall_clock: Clock = time.time,
    progress: Progress | None = None,
    cpu_times: Callable[[], CpuTimes] | None = UNSET,
) -> BaselineResult:
    """Reuse the baseline at ``cache_path`` if allowed, else measure one and store it there atomically.

    ``hw_hash``, ``governor`` and ``turbo`` default to this host's (read through
    :mod:`alems.provenance` at ``host_paths``), ``host`` to this machine's name. A
    missing or corrupted cache emits a :class:`BaselineCacheWarning` and is re-measured;
    so is one that may not be reused (one measured on another host included).
    """
    cfg = config or BaselineConfig()
    if host is UNSET:
        host = this_host()
    hw_hash, governor, turbo = _host_state(host_paths, hw_hash, governor, turbo)
    path = Path(cache_path)
    reason = "reuse disabled"
    if reuse:
        cached, reason = _reusable(
            path,
            meter,
            cfg,
            hw_hash=hw_hash,
            governor=governor,
            turbo=turbo,
            host=host,
            wall_clock=wall_clock,
        )
        if cached is not None:
            return BaselineResult(cached, True, reason)
    base = measure_baseline(
        meter,
        cfg,
        hw_hash=hw_hash,
        governor=governor,
        turbo=turbo,
        clock=clock,
        sleep=sleep,
        wall_clock=wall_clock,
        progress=progress,
        cpu_times=cpu_times,
        host=host,
    )
    write_baseline(path, base)
    return BaselineResult(base, False, reason)
