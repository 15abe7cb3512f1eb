"""Wraparound tracking: raw, wrapping counters in, cumulative joules out.

Every meter reports raw counter values (:meth:`alems.energy.base.Meter.read_raw`).
This module is the one place that turns them into cumulative, non-decreasing joules,
so RAPL, NVML and the model meter share one tested code path.

The rule, per domain, between two consecutive reads ``a`` then ``b``:

* ``delta = b - a``; if negative and the domain wraps at ``R`` (``max_range_j``),
  ``delta += R`` (exactly one wrap happened);
* a delta still negative after that is a :class:`~alems.errors.CounterReadError`
  for that domain, never 0;
* one correction is exact only when at most one wrap can fit between the reads, i.e.
  when the reads are less than ``R / P_max`` apart (``P_max``: ``max_power_w``).
  A longer gap makes the delta ambiguous; it is an error too, never a guess.

Cumulative energy is the sum of corrected deltas, so a window over any number of
wraps comes out exact, whatever its length. RAPL wraps at ``max_energy_range_uj``;
the hardware modulus is one energy unit (~61 uJ) larger, an error far below
anything this tool resolves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alems.energy.base import Domain
from alems.errors import CounterReadError

#: Fraction of the wrap period used as the longest safe poll interval.
SAFETY_FACTOR = 0.5


def counter_error(key: str, message: str, fix: str | None = None) -> CounterReadError:
    """A :class:`CounterReadError` tagged with the domain it is about (``err.domain``)."""
    err = CounterReadError(f"{key}: {message}", fix)
    err.domain = key
    return err


def wrap_period_s(domain: Domain) -> float | None:
    """Shortest time in which ``domain``'s counter can wrap once (``None``: unknown/never)."""
    if not domain.max_range_j or not domain.max_power_w or domain.max_power_w <= 0:
        return None
    return domain.max_range_j / domain.max_power_w


def safe_poll_interval_s(domains: Iterable[Domain], safety: float = SAFETY_FACTOR) -> float | None:
    """Longest poll interval that keeps every domain below one wrap between reads.

    ``safety`` (default 0.5) leaves room for scheduling jitter and for power above the
    declared limit. ``None`` when no domain both wraps and declares a power bound.
    """
    periods = [p for p in (wrap_period_s(d) for d in domains) if p is not None]
    return min(periods) * safety if periods else None


@dataclass
class CounterTracker:
    """Cumulative joules for one domain from its raw (possibly wrapping) readings."""

    key: str
    max_range_j: float | None = None
    max_power_w: float | None = None
    last_raw: float | None = None
    last_t: float | None = None
    cumulative_j: float = 0.0
    wraps: int = 0

    @classmethod
    def for_domain(cls, domain: Domain) -> CounterTracker:
        return cls(domain.key, domain.max_range_j, domain.max_power_w)

    def step(self, raw: float, t: float | None = None) -> tuple[float, bool]:
        """The corrected delta from the last reading to ``raw`` and whether it wrapped.

        Pure: the tracker is not changed (see :meth:`commit`). The first reading
        has delta 0.
        """
        if raw is None or not math.isfinite(raw):
            raise counter_error(self.key, f"unreadable counter value {raw!r}")
        if self.last_raw is None:
            return 0.0, False
        if t is not None and self.last_t is not None:
            period = (
                self.max_range_j / self.max_power_w
                if self.max_range_j and self.max_power_w and self.max_power_w > 0
                else None
            )
            gap = t - self.last_t
            if period is not None and gap >= period:
                raise counter_error(
                    self.key,
                    f"{gap:.3f} s between reads, but the counter can wrap every {period:.3f} s "
                    f"(range {self.max_range_j:g} J at up to {self.max_power_w:g} W): "
                    "wraps may have been missed, so the energy is unknown",
                    f"poll at least every {period * SAFETY_FACTOR:.3f} s "
                    "(keep the sampler running; lower --interval-ms)",
                )
        delta = raw - self.last_raw
        wrapped = False
        if delta < 0 and self.max_range_j:
            delta += self.max_range_j
            wrapped = True
        if delta < 0:
            why = (
                f"after wrap correction by {self.max_range_j:g} J"
                if self.max_range_j
                else "and it does not wrap"
            )
            raise counter_error(
                self.key,
                f"counter went backwards from {self.last_raw:.6f} J to {raw:.6f} J {why}",
                "the counter was reset (driver reload, suspend) or is not monotonic; re-run the measurement",
            )
        return delta, wrapped

    def commit(self, raw: float, t: float | None, delta: float, wrapped: bool) -> float:
        self.last_raw = raw
        self.last_t = t
        self.cumulative_j += delta
        self.wraps += int(wrapped)
        return self.cumulative_j

    def update(self, raw: float, t: float | None = None) -> float:
        """Feed one reading; return cumulative joules since the first reading."""
        delta, wrapped = self.step(raw, t)
        return self.commit(raw, t, delta, wrapped)


class TrackerSet:
    """One :class:`CounterTracker` per domain; updates are all-or-nothing."""

    def __init__(self, domains: Iterable[Domain]) -> None:
        self.trackers = {d.key: CounterTracker.for_domain(d) for d in domains}

    @property
    def keys(self) -> list[str]:
        return list(self.trackers)

    def update(self, raw: Mapping[str, float], t: float | None = None) -> dict[str, float]:
        """Feed one reading of every domain; return cumulative joules per domain.

        A missing domain or a bad delta raises :class:`CounterReadError` naming that
        domain, and no tracker is changed (the next good reading continues from the
        last committed one).
        """
        steps = {}
        for key, tr in self.trackers.items():
            if key not in raw:
                raise counter_error(key, "no reading returned by the meter")
            steps[key] = tr.step(raw[key], t)
        return {key: tr.commit(raw[key], t, *steps[key]) for key, tr in self.trackers.items()}

    def wraps(self) -> dict[str, int]:
        return {k: tr.wraps for k, tr in self.trackers.items()}
