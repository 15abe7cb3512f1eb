"""Idle baseline: the power each energy domain draws while nothing runs.

This module owns the protocol (settle for ``settle_s``, then ``windows`` contiguous
windows of ``window_s`` each), the statistics per domain (mean, standard deviation and
coefficient of variation of window power), the stability verdict (a CV above
``cv_threshold`` on a judged domain, or a host busier than ``max_host_util``, triggers
up to ``max_retries`` re-measurements, after which the baseline is marked
``unstable``), the baseline file
(``results/baseline/idle.json``) and the cache rule: a stored baseline is reused only
when ``hw_hash``, governor and turbo state all match, its domains and protocol match,
it was stable, and it is younger than ``max_age_s``. A missing or corrupted cache is
re-measured with a :class:`BaselineCacheWarning`, never a crash.

**A baseline belongs to one host.** Each records the ``host`` (name) it was measured on,
and a cache is reused only on that host: nodes of one type share an ``hw_hash`` but not
their idle power. On a cluster every node keeps its own cache file,
:func:`host_cache_path` (``resources/baseline/hosts/<host>_<hw_hash>.json``).

Example (measures for real, about 35 s with the defaults)::

    from alems.energy import open_meter
    from alems.baseline import BaselineConfig, measure_baseline

    with open_meter("auto") as meter:
        base = measure_baseline(meter, BaselineConfig(settle_s=1, windows=5, window_s=1))
    print(base.status, base.power_w, base.source)

A modeled meter gives a modeled baseline: each domain carries its meter's ``source``
and :attr:`Baseline.modeled` says so. The clock and sleep are injected, so tests drive
a fake meter in fake time. This module runs no workload.

**A busy host is not idle.** A steady load from other processes keeps the CV low, so
the CV alone passes it, but it raises every "idle" power and so removes real work from
``dynamic_j`` (on the 2-vCPU development VM, the default study run while other jobs
loaded both cores, baseline included, gave EpG values 20-25x smaller than on the idle
machine). Each attempt therefore also records the
share of all CPU time that was busy (``/proc/stat``) during its windows, ``host_util``;
above ``max_host_util`` the attempt counts as unstable and is re-measured.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alems.energy.base import Domain, Meter, summable_keys
from alems.energy.procstat import CpuTimes, ProcStat
from alems.energy.wrap import TrackerSet, safe_poll_interval_s
from alems.errors import AlemsError, ConfigError
from alems.io import atomic_write_json

SCHEMA = "alems.baseline/3"  # 3: host; 2: host_util, max_host_util
#: Still read (``host`` is then ``None``, so such a cache is never reused on a named host).
SCHEMA_V2 = "alems.baseline/2"
_UNSET: Any = object()

Clock = Callable[[], float]
Sleep = Callable[[float], None]
#: ``progress(attempt, window_done, windows_total)`` after every window.
Progress = Callable[[int, int, int], None]


class BaselineError(AlemsError):
    """A stored baseline is missing or unreadable."""


class BaselineCacheWarning(UserWarning):
    """A cached baseline could not be reused; a new one is being measured."""


# =========================================================================== config
@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the idle-baseline protocol (the workflow's ``baseline:`` config section).

    ``poll_s``: how often counters are read inside a window so a wrapping counter is
    never missed (``None``: derived from each domain's wrap range and peak power).
    ``stability_domains``: the domain keys whose CV decides the verdict (``None``: the
    summable ones, i.e. packages, DRAM or psys, GPUs and the CPU model; core and uncore
    sub-zones are reported but not judged).
    ``max_host_util``: the largest share of all CPU time (0-1, from ``/proc/stat``) that
    may be busy during the windows of an idle baseline.
    """

    settle_s: float = 5.0
    windows: int = 10
    window_s: float = 3.0
    cv_threshold: float = 0.10
    max_retries: int = 2
    max_age_s: float = 6 * 3600.0
    poll_s: float | None = None
    stability_domains: tuple[str, ...] | None = None
    max_host_util: float = 0.10

    def __post_init__(self) -> None:
        for key in (
            "settle_s",
            "window_s",
            "cv_threshold",
            "max_age_s",
            "poll_s",
            "max_host_util",
        ):  # one type
            value = getattr(self, key)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, key, float(value))
        if self.stability_domains is not None and not isinstance(self.stability_domains, tuple):
            object.__setattr__(self, "stability_domains", tuple(self.stability_domains))
        checks = [
            ("settle_s", self.settle_s >= 0, "a number of seconds >= 0"),
            ("windows", isinstance(self.windows, int) and self.windows >= 2, "an integer >= 2"),
            ("window_s", self.window_s > 0, "a number of seconds > 0"),
            ("cv_threshold", self.cv_threshold > 0, "a number > 0 (e.g. 0.10)"),
            ("max_retries", isinstance(self.max_retries, int) and self.max_retries >= 0, "an integer >= 0"),
            ("max_age_s", self.max_age_s >= 0, "a number of seconds >= 0"),
            ("poll_s", self.poll_s is None or self.poll_s > 0, "null or a number of seconds > 0"),
            ("max_host_util", 0 < self.max_host_util <= 1, "a share of CPU time in (0, 1], e.g. 0.10"),
        ]
        for key, ok, want in checks:
            if not ok:
                raise ConfigError(
                    f"baseline.{key} = {getattr(self, key)!r} is invalid", fix=f"set baseline.{key} to {want}"
                )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> BaselineConfig:
        """Build from a config mapping; unknown keys and ill-typed values are a :class:`ConfigError`."""
        data = dict(mapping or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown baseline config key(s): {', '.join(unknown)}",
                fix=f"use only {', '.join(known)} under baseline:",
            )
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            try:
                if key in ("windows", "max_retries"):
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise TypeError
                    kwargs[key] = value
                elif key == "stability_domains":
                    kwargs[key] = None if value is None else tuple(str(v) for v in value)
                elif key == "poll_s" and value is None:
                    kwargs[key] = None
                else:
                    if isinstance(value, bool):
                        raise TypeError
                    kwargs[key] = float(value)
            except (TypeError, ValueError) as exc:
                want = "an integer" if key in ("windows", "max_retries") else "a number"
                raise ConfigError(
                    f"baseline.{key} = {value!r} is not {want}", fix=f"set baseline.{key} to {want}"
                ) from exc
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stability_domains"] = list(self.stability_domains) if self.stability_domains is not None else None
        return d

    def protocol(self) -> dict[str, Any]:
        """The settings that change what is measured (a cache made under others is not reused)."""
        d = self.to_dict()
        keys = ("settle_s", "windows", "window_s", "cv_threshold", "stability_domains", "max_host_util")
        return {k: d[k] for k in keys}


# =========================================================================== records
@dataclass(frozen=True)
class BaselineWindow:
    """One measurement window: its monotonic bounds and the mean power per domain inside it."""

    index: int
    t0: float
    t1: float
    power_w: dict[str, float]


@dataclass(frozen=True)
class DomainStats:
    key: str
    kind: str
    source: str
    mean_w: float
    std_w: float
    cv: float
    judged: bool
    stable: bool


@dataclass
class Baseline:
    """An idle baseline. ``power_w`` (mean idle watts per domain) is what accounting subtracts.

    ``status`` is ``"stable"`` or ``"unstable"``; every downstream table must show an
    unstable one. ``source`` maps each domain to ``measured`` or ``modeled``.
    ``windows`` holds the accepted attempt's per-window powers (the distribution figure);
    ``attempts`` the CV and host load of every attempt made. ``host_util`` is the share
    of all CPU time that was busy during the accepted attempt's windows (``None`` where
    it was not measured: fake time, or no ``/proc/stat``). ``host`` is the name of the
    machine it was measured on (``None`` in a schema-2 file, which predates it).
    """

    status: str
    meter: str
    stats: dict[str, DomainStats]
    windows: list[BaselineWindow]
    attempts: list[dict[str, Any]]
    governor: Any
    turbo: bool | None
    hw_hash: str | None
    created_unix: float
    config: BaselineConfig
    domains: list[dict[str, Any]] = field(default_factory=list)
    host_util: float | None = None
    baseline_id: str = ""
    host: str | None = None
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if not self.baseline_id:
            from alems.provenance import short_hash

            self.baseline_id = short_hash(self._content())

    @property
    def power_w(self) -> dict[str, float]:
        return {k: s.mean_w for k, s in self.stats.items()}

    @property
    def std_w(self) -> dict[str, float]:
        return {k: s.std_w for k, s in self.stats.items()}

    @property
    def cv(self) -> dict[str, float]:
        return {k: s.cv for k, s in self.stats.items()}

    @property
    def source(self) -> dict[str, str]:
        return {k: s.source for k, s in self.stats.items()}

    @property
    def modeled(self) -> bool:
        return any(s.source == "modeled" for s in self.stats.values())

    @property
    def stable(self) -> bool:
        return self.status == "stable"

    @property
    def busy(self) -> bool:
        """The host was busier than ``max_host_util`` during the accepted windows."""
        return self.host_util is not None and self.host_util > self.config.max_host_util

    @property
    def unstable_reasons(self) -> list[str]:
        """Why the baseline is unstable, in words (empty when it is stable)."""
        if self.stable:
            return []
        reasons = []
        high = [k for k, st in self.stats.items() if st.judged and not st.stable]
        if high:
            reasons.append(f"CV above {self.config.cv_threshold:g} on {', '.join(high)}")
        if self.busy:
            assert self.host_util is not None
            reasons.append(
                f"the host was {self.host_util:.1%} busy (max_host_util {self.config.max_host_util:.0%})"
            )
        return reasons or ["marked unstable"]

    def _content(self) -> dict[str, Any]:
        host = {} if self.schema == SCHEMA_V2 else {"host": self.host}
        return {
            "schema": self.schema,
            **host,
            "status": self.status,
            "meter": self.meter,
            "modeled": self.modeled,
            "governor": self.governor,
            "turbo": self.turbo,
            "hw_hash": self.hw_hash,
            "created_unix": self.created_unix,
            "config": self.config.to_dict(),
            "domains": self.domains,
            "host_util": self.host_util,
            "stats": {k: dataclasses.asdict(s) for k, s in self.stats.items()},
            "power_w": self.power_w,
            "source": self.source,
            "windows": [dataclasses.asdict(w) for w in self.windows],
            "attempts": self.attempts,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_id": self.baseline_id, **self._content()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        schema = data.get("schema")
        if schema not in (SCHEMA, SCHEMA_V2):
            raise ValueError(f"schema is {schema!r}, expected {SCHEMA!r}")
        stats = {
            k: DomainStats(
                key=str(v["key"]),
                kind=str(v["kind"]),
                source=str(v["source"]),
                mean_w=float(v["mean_w"]),
                std_w=float(v["std_w"]),
                cv=float(v["cv"]),
                judged=bool(v["judged"]),
                stable=bool(v["stable"]),
            )
            for k, v in data["stats"].items()
        }
        windows = [
            BaselineWindow(
                int(w["index"]),
                float(w["t0"]),
                float(w["t1"]),
                {k: float(p) for k, p in w["power_w"].items()},
            )
            for w in data["windows"]
        ]
        base = cls(
            status=str(data["status"]),
            meter=str(data["meter"]),
            stats=stats,
            windows=windows,
            attempts=list(data["attempts"]),
            governor=data["governor"],
            turbo=data["turbo"],
            hw_hash=data["hw_hash"],
            created_unix=float(data["created_unix"]),
            config=BaselineConfig.from_dict(data["config"]),
            domains=list(data["domains"]),
            host_util=None if data.get("host_util") is None else float(data["host_util"]),
            baseline_id=str(data["baseline_id"]),
            host=None if data.get("host") is None else str(data["host"]),
            schema=str(schema),
        )
        if base.status not in ("stable", "unstable"):
            raise ValueError(f"status {base.status!r} is neither stable nor unstable")
        from alems.provenance import short_hash

        if short_hash(base._content()) != base.baseline_id:
            raise ValueError(f"content does not match baseline_id {base.baseline_id} (edited or corrupted)")
        return base


# =========================================================================== measurement
def _poll_interval(domains: Sequence[Domain], cfg: BaselineConfig) -> float:
    """Reads inside a window come at least this often, so no counter wrap is missed."""
    poll = cfg.window_s if cfg.poll_s is None else min(cfg.poll_s, cfg.window_s)
    safe = safe_poll_interval_s(domains)
    if safe is not None:
        poll = min(poll, safe)
    return max(poll, 1e-3)


def _stats(values: Sequence[float], total_j: float, total_s: float) -> tuple[float, float, float]:
    """Time-weighted mean (total energy / total time), sample std of window powers, and CV."""
    mean = total_j / total_s if total_s > 0 else math.nan
    n = len(values)
    avg = sum(values) / n
    std = math.sqrt(sum((v - avg) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    if mean > 0:
        cv = std / mean
    else:
        cv = 0.0 if std == 0 else math.inf
    return mean, std, cv


def _measure_attempt(
    meter: Meter,
    tracker: TrackerSet,
    domains: Sequence[Domain],
    cfg: BaselineConfig,
    clock: Clock,
    sleep: Sleep,
    poll_s: float,
    on_window: Callable[[int], None],
) -> tuple[list[BaselineWindow], dict[str, tuple[float, float, float]]]:
    def read() -> tuple[float, dict[str, float]]:
        before = clock()
        raw = meter.read_raw()
        t = (before + clock()) / 2.0
        return t, tracker.update(raw, t)

    t_start, e_start = read()
    t_prev, e_prev = t_start, e_start
    windows: list[BaselineWindow] = []
    for w in range(cfg.windows):
        deadline = t_start + (w + 1) * cfg.window_s
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                break
            sleep(min(poll_s, remaining))
            if clock() < deadline:
                read()  # intermediate read: keeps wrap tracking safe
        t, e = read()
        dt = t - t_prev
        windows.append(
            BaselineWindow(
                w,
                t_prev,
                t,
                {d.key: (e[d.key] - e_prev[d.key]) / dt if dt > 0 else math.nan for d in domains},
            )
        )
        t_prev, e_prev = t, e
        on_window(w + 1)
    total_s = t_prev - t_start
    stats = {
        d.key: _stats([win.power_w[d.key] for win in windows], e_prev[d.key] - e_start[d.key], total_s)
        for d in domains
    }
    return windows, stats


def _host_cpu_times(clock: Clock) -> Callable[[], CpuTimes] | None:
    """The system-wide CPU-time reader for the host-load check, in real time only.

    In fake time (an injected clock) the host's real load says nothing about the fake
    windows, and without ``/proc/stat`` it cannot be read: both give ``None``.
    """
    if clock is not time.monotonic:
        return None
    try:
        return ProcStat().read
    except AlemsError:
        return None


#: Below this much CPU time (all CPUs together) the busy share is too coarse to judge:
#: /proc/stat counts in 10 ms ticks, so one tick is 12.5 % of two 40 ms windows on 2 CPUs.
MIN_JUDGED_CPU_S = 1.0


def _busy_share(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """Busy share of all CPU time between two reads; ``None`` if unknown or too short to judge."""
    if before is None or after is None:
        return None
    total = after.total_s - before.total_s
    if total < MIN_JUDGED_CPU_S:
        return None
    return min(1.0, max(0.0, (after.busy_s - before.busy_s) / total))


def _judged_keys(domains: Sequence[Domain], cfg: BaselineConfig) -> list[str]:
    keys = [d.key for d in domains]
    if cfg.stability_domains is not None:
        return [k for k in cfg.stability_domains if k in keys]
    return summable_keys(domains) or keys


def measure_baseline(
    meter: Meter,
    config: BaselineConfig | None = None,
    *,
    hw_hash: str | None = None,
    governor: Any = None,
    turbo: bool | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    wall_clock: Clock = time.time,
    progress: Progress | None = None,
    cpu_times: Callable[[], CpuTimes] | None = _UNSET,
    host: str | None = _UNSET,
) -> Baseline:
    """Measure the idle baseline on ``meter``: settle, then windows, with re-measurement when unstable.

    An attempt is stable when its judged CVs are all within ``cv_threshold`` and the
    host was at most ``max_host_util`` busy. Of all attempts, the first stable one is
    kept, else the one with the lowest CV among the not-busy ones, or the least busy
    one, and the baseline is ``unstable``.
    ``cpu_times`` reads system-wide CPU time for the host-load check (default:
    ``/proc/stat`` when ``clock`` is the real monotonic clock; ``None`` skips the check).
    ``host``: the name recorded as where it was measured (default: this machine's).
    Counter read failures propagate as :class:`alems.errors.CounterReadError`.
    """
    cfg = config or BaselineConfig()
    domains = list(meter.domains())
    if not domains:
        raise AlemsError(
            "the meter reports no energy domains", fix="run `alems doctor` to see which meters exist here"
        )
    judged = _judged_keys(domains, cfg)
    poll_s = _poll_interval(domains, cfg)
    if cpu_times is _UNSET:
        cpu_times = _host_cpu_times(clock)
    if cfg.settle_s > 0:
        sleep(cfg.settle_s)
    tracker = TrackerSet(domains)

    Kept = tuple[
        tuple[bool, float, float], list[BaselineWindow], dict[str, tuple[float, float, float]], float | None
    ]
    best: Kept | None = None
    attempts: list[dict[str, Any]] = []
    for attempt in range(1 + cfg.max_retries):

        def on_window(done: int, number: int = attempt + 1) -> None:
            if progress is not None:
                progress(number, done, cfg.windows)

        before = cpu_times() if cpu_times is not None else None
        windows, stats = _measure_attempt(meter, tracker, domains, cfg, clock, sleep, poll_s, on_window)
        host_util = _busy_share(before, cpu_times() if cpu_times is not None else None)
        worst = max((stats[k][2] for k in judged), default=0.0)
        busy = host_util is not None and host_util > cfg.max_host_util
        stable = worst <= cfg.cv_threshold and not busy
        attempts.append(
            {
                "attempt": attempt + 1,
                "max_cv": worst,
                "host_util": host_util,
                "busy": busy,
                "stable": stable,
                "cv": {k: s[2] for k, s in stats.items()},
            }
        )
        rank = (busy, host_util if busy and host_util is not None else 0.0, worst)
        if best is None or rank < best[0]:
            best = (rank, windows, stats, host_util)
        if stable:
            break
    assert best is not None
    (busy, _, worst), windows, stats, host_util = best
    by_key = {d.key: d for d in domains}
    dstats = {
        k: DomainStats(
            key=k,
            kind=by_key[k].kind,
            source=by_key[k].source,
            mean_w=m,
            std_w=s,
            cv=cv,
            judged=k in judged,
            stable=cv <= cfg.cv_threshold,
        )
        for k, (m, s, cv) in stats.items()
    }
    return Baseline(
        status="stable" if worst <= cfg.cv_threshold and not busy else "unstable",
        meter=getattr(meter, "name", type(meter).__name__),
        stats=dstats,
        windows=windows,
        attempts=attempts,
        governor=governor,
        turbo=turbo,
        hw_hash=hw_hash,
        created_unix=wall_clock(),
        config=cfg,
        domains=[
            {"key": d.key, "kind": d.kind, "source": d.source, "meter": d.meter, "parent": d.parent}
            for d in domains
        ],
        host_util=host_util,
        host=this_host() if host is _UNSET else host,
    )


# =========================================================================== files and cache
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


def this_host() -> str:
    """The name of this machine, as the baselines and runs record it."""
    return socket.gethostname()


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


def obtain_baseline(
    meter: Meter,
    config: BaselineConfig | None,
    cache_path: str | os.PathLike[str],
    *,
    hw_hash: str | None = _UNSET,
    governor: Any = _UNSET,
    turbo: bool | None = _UNSET,
    host_paths: Any = None,
    host: str | None = _UNSET,
    reuse: bool = True,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    wall_clock: Clock = time.time,
    progress: Progress | None = None,
    cpu_times: Callable[[], CpuTimes] | None = _UNSET,
) -> BaselineResult:
    """Reuse the baseline at ``cache_path`` if allowed, else measure one and store it there atomically.

    ``hw_hash``, ``governor`` and ``turbo`` default to this host's (read through
    :mod:`alems.provenance` at ``host_paths``), ``host`` to this machine's name. A
    missing or corrupted cache emits a :class:`BaselineCacheWarning` and is re-measured;
    so is one that may not be reused (one measured on another host included).
    """
    cfg = config or BaselineConfig()
    if host is _UNSET:
        host = this_host()
    if hw_hash is _UNSET or governor is _UNSET or turbo is _UNSET:
        from alems import provenance

        paths = host_paths or provenance.HostPaths()
        if hw_hash is _UNSET:
            hw_hash = provenance.short_hash(provenance.collect_hardware(paths)[0])
        if governor is _UNSET or turbo is _UNSET:
            gov, tur = provenance.cpu_power_state(paths)
            governor = gov if governor is _UNSET else governor
            turbo = tur if turbo is _UNSET else turbo

    path = Path(cache_path)
    reason = "reuse disabled"
    if reuse:
        try:
            cached = load_baseline(path)
        except BaselineError as exc:
            reason = exc.message
            warnings.warn(f"{exc.message}; measuring a new idle baseline", BaselineCacheWarning, stacklevel=2)
        else:
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
                return BaselineResult(cached, True, f"reused {path} (baseline_id {cached.baseline_id})")
            reason = f"cached baseline {path} not reused: {problem}"
            warnings.warn(f"{reason}; measuring a new idle baseline", BaselineCacheWarning, stacklevel=2)
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
