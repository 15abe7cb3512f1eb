"""The idle-baseline measurement protocol: settle, then contiguous windows, per-domain
statistics, the stability verdict and re-measurement (:func:`measure_baseline`).

The clock and sleep are injected, so tests drive a fake meter in fake time. This module
runs no workload.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from alems.baseline.config import BaselineConfig
from alems.baseline.record import Baseline, BaselineWindow, DomainStats, this_host
from alems.energy.base import Domain, Meter, summable_keys
from alems.energy.procstat import CpuTimes, ProcStat
from alems.energy.wrap import TrackerSet, safe_poll_interval_s
from alems.errors import AlemsError

#: "Not given": the default is this host's (its name, its CPU-time reader).
UNSET: Any = object()

Clock = Callable[[], float]
Sleep = Callable[[float], None]
#: ``progress(attempt, window_done, windows_total)`` after every window.
Progress = Callable[[int, int, int], None]
#: Per domain key: (time-weighted mean W, sample std of window powers W, CV).
Stats = dict[str, tuple[float, float, float]]


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
) -> tuple[list[BaselineWindow], Stats]:
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


@dataclass(frozen=True)
class _Attempt:
    """One attempt: its windows and statistics, the host load during them, and the verdict."""

    number: int
    windows: list[BaselineWindow]
    stats: Stats
    host_util: float | None
    max_cv: float
    busy: bool
    stable: bool

    @property
    def rank(self) -> tuple[bool, float, float]:
        """Lower is better: not busy first, then the least busy, then the lowest judged CV."""
        return (self.busy, self.host_util if self.busy and self.host_util is not None else 0.0, self.max_cv)

    def record(self) -> dict[str, Any]:
        """The attempt as :attr:`Baseline.attempts` lists it."""
        return {
            "attempt": self.number,
            "max_cv": self.max_cv,
            "host_util": self.host_util,
            "busy": self.busy,
            "stable": self.stable,
            "cv": {k: s[2] for k, s in self.stats.items()},
        }


def _judge(
    number: int,
    windows: list[BaselineWindow],
    stats: Stats,
    host_util: float | None,
    judged: Sequence[str],
    cfg: BaselineConfig,
) -> _Attempt:
    """Stable: every judged CV within ``cv_threshold`` and the host at most ``max_host_util`` busy."""
    worst = max((stats[k][2] for k in judged), default=0.0)
    busy = host_util is not None and host_util > cfg.max_host_util
    stable = worst <= cfg.cv_threshold and not busy
    return _Attempt(number, windows, stats, host_util, worst, busy, stable)


def _window_progress(progress: Progress | None, number: int, total: int) -> Callable[[int], None]:
    def on_window(done: int) -> None:
        if progress is not None:
            progress(number, done, total)

    return on_window


def _best_attempt(
    meter: Meter,
    domains: Sequence[Domain],
    judged: Sequence[str],
    cfg: BaselineConfig,
    clock: Clock,
    sleep: Sleep,
    progress: Progress | None,
    cpu_times: Callable[[], CpuTimes] | None,
) -> tuple[_Attempt, list[dict[str, Any]]]:
    """Settle, then up to ``1 + max_retries`` attempts: the first stable one, else the best ranked,
    and the records of every attempt made."""
    poll_s = _poll_interval(domains, cfg)
    if cfg.settle_s > 0:
        sleep(cfg.settle_s)
    tracker = TrackerSet(domains)
    best: _Attempt | None = None
    attempts: list[dict[str, Any]] = []
    for number in range(1, 2 + cfg.max_retries):
        on_window = _window_progress(progress, number, cfg.windows)
        before = cpu_times() if cpu_times is not None else None
        windows, stats = _measure_attempt(meter, tracker, domains, cfg, clock, sleep, poll_s, on_window)
        host_util = _busy_share(before, cpu_times() if cpu_times is not None else None)
        attempt = _judge(number, windows, stats, host_util, judged, cfg)
        attempts.append(attempt.record())
        if best is None or attempt.rank < best.rank:
            best = attempt
        if attempt.stable:
            break
    assert best is not None
    return best, attempts


def _domain_stats(
    stats: Stats, domains: Sequence[Domain], judged: Sequence[str], cfg: BaselineConfig
) -> dict[str, DomainStats]:
    by_key = {d.key: d for d in domains}
    return {
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
    cpu_times: Callable[[], CpuTimes] | None = UNSET,
    host: str | None = UNSET,
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
    if cpu_times is UNSET:
        cpu_times = _host_cpu_times(clock)
    best, attempts = _best_attempt(meter, domains, judged, cfg, clock, sleep, progress, cpu_times)
    return Baseline(
        status="stable" if best.stable else "unstable",
        meter=getattr(meter, "name", type(meter).__name__),
        stats=_domain_stats(best.stats, domains, judged, cfg),
        windows=best.windows,
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
        host_util=best.host_util,
        host=this_host() if host is UNSET else host,
    )


def idle_busy_cpu_per_s(base: Baseline) -> float | None:
    """Busy CPU-seconds per second during an idle baseline: its ``host_util`` x this host's CPUs.

    ``None`` where the baseline did not measure host load (accounting then takes 0).
    """
    util = base.host_util
    if util is None:
        return None
    try:
        return float(util) * ProcStat().n_cpus
    except AlemsError:
        return None
