"""Named measurement windows over a sampler: :class:`EnergyMonitor` and :class:`Measurement`.

The shape follows Zeus's monitor (``begin_window(key)`` / ``end_window(key)``), with one
difference that matters: windows are stamped on a monotonic clock, never wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from alems.energy.auto import open_meter
from alems.energy.base import Domain, Meter, summable_keys
from alems.energy.model import ModelParams
from alems.energy.sampler import Sample, Sampler
from alems.energy.stepwise import energy_between, stepwise_keys


@dataclass(frozen=True)
class Measurement:
    """Energy moved in one window ``[t0, t1]``.

    ``energy_j`` per domain; ``sources`` per domain (``measured``/``modeled``);
    ``total_j`` sums the non-overlapping domains only (:func:`summable_keys`);
    ``static`` lists domains whose counter did not move at all in the window.
    """

    key: str
    t0: float
    t1: float
    duration_s: float
    energy_j: dict[str, float]
    sources: dict[str, str]
    total_j: float
    static: list[str]
    proc_cpu_s: float
    sys_cpu_s: float
    warnings: list[str] = field(default_factory=list)

    @property
    def mean_power_w(self) -> dict[str, float]:
        d = self.duration_s
        return {k: (v / d if d > 0 else float("nan")) for k, v in self.energy_j.items()}


def window_warnings(domains: Sequence[Domain], duration_s: float) -> list[str]:
    """Warnings for domains whose counter updates less often than the window is long."""
    out = []
    for d in domains:
        period = d.info.get("update_period_s") if isinstance(d.info, Mapping) else None
        if isinstance(period, (int, float)) and period > 0.02 and duration_s < period:
            out.append(
                f"{d.key}: window of {duration_s * 1000:.0f} ms is shorter than its counter's "
                f"update period (~{period * 1000:.0f} ms); its energy is quantised, aggregate "
                "longer windows"
            )
    return out


def measurement_between(key: str, a: Sample, b: Sample, domains: Sequence[Domain]) -> Measurement:
    """The :class:`Measurement` of the window from sample ``a`` to sample ``b``."""
    energy = {d.key: b.energy_j[d.key] - a.energy_j[d.key] for d in domains}
    duration = b.t - a.t
    return Measurement(
        key=key,
        t0=a.t,
        t1=b.t,
        duration_s=duration,
        energy_j=energy,
        sources={d.key: d.source for d in domains},
        total_j=sum(energy[k] for k in summable_keys(domains)),
        static=[k for k, v in energy.items() if v == 0.0],
        proc_cpu_s=b.proc_cpu_s - a.proc_cpu_s,
        sys_cpu_s=b.sys_cpu_s - a.sys_cpu_s,
        warnings=window_warnings(domains, duration),
    )


def measurement_from_samples(
    key: str, a: Sample, b: Sample, domains: Sequence[Domain], samples: Sequence[Sample]
) -> Measurement:
    """:func:`measurement_between`, with stepwise counters (NVML energy) reconstructed from
    their update instants in ``samples`` (:mod:`alems.energy.stepwise`) instead of
    differenced at the edges. Needs samples past ``b`` up to the next update
    (:meth:`Sampler.stop` reads on until then)."""
    m = measurement_between(key, a, b, domains)
    steps = stepwise_keys(domains)
    if not steps or not samples:
        return m
    rows = sorted(samples, key=lambda s: (s.t, s.boundary))
    t = np.array([s.t for s in rows])
    energy = dict(m.energy_j)
    warnings = list(m.warnings)
    for k in steps:
        energy[k], bracketed = energy_between(t, np.array([s.energy_j[k] for s in rows]), a.t, b.t)
        if not bracketed:
            warnings.append(f"{k}: no counter update on one side of the window; its energy is extrapolated")
    warnings = [w for w in warnings if not any(w.startswith(f"{k}: window of") for k in steps)]
    return replace(
        m,
        energy_j=energy,
        total_j=sum(energy[k] for k in summable_keys(domains)),
        static=[k for k, v in energy.items() if v == 0.0],
        warnings=warnings,
    )


class EnergyMonitor:
    """Measure the energy of named code windows.

    Example (runs anywhere: the ``model`` meter needs only /proc/stat)::

        >>> from alems.energy.monitor import EnergyMonitor
        >>> with EnergyMonitor("model") as monitor:
        ...     t0 = monitor.begin_window("work")
        ...     _ = sum(i * i for i in range(200_000))
        ...     m = monitor.end_window("work")
        >>> m.total_j > 0 and m.sources == {"cpu-model": "modeled"}
        True

    ``meter`` is a :class:`~alems.energy.base.Meter` or a kind for
    :func:`~alems.energy.auto.open_meter` (``auto``, ``rapl``, ``nvml``, ``model``).
    A background :class:`~alems.energy.sampler.Sampler` keeps counters tracked across
    wraps between windows; each window edge is an exact boundary read. Windows may
    nest and overlap. Times come from ``clock`` (monotonic by default), never wall time.
    With ``start=False`` no background thread runs: windows are boundary reads only, and
    the caller must read often enough to see every wrap (``monitor.sampler``).
    """

    def __init__(
        self,
        meter: Meter | str = "auto",
        *,
        interval_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        pid: int | None = None,
        powercap_root: str | None = None,
        model_params: ModelParams | Mapping[str, object] | None = None,
        start: bool = True,
    ) -> None:
        if isinstance(meter, str):
            meter = open_meter(meter, powercap_root=powercap_root, model_params=model_params, clock=clock)
        self.meter = meter
        self.sampler = Sampler(meter, interval_s=interval_s, clock=clock, pid=pid)
        self._open: dict[str, Sample] = {}
        if start:
            self.sampler.start()

    @property
    def domains(self) -> list[Domain]:
        return self.sampler.domains

    def begin_window(self, key: str) -> float:
        """Open window ``key`` with a boundary read; returns its start time."""
        if key in self._open:
            raise ValueError(f"window {key!r} is already open")
        s = self.sampler.boundary_read()
        self._open[key] = s
        return s.t

    def end_window(self, key: str) -> Measurement:
        """Close window ``key`` with a boundary read and return its measurement."""
        try:
            a = self._open.pop(key)
        except KeyError:
            raise ValueError(f"window {key!r} was never begun") from None
        b = self.sampler.boundary_read()
        m = measurement_between(key, a, b, self.sampler.domains)
        return m

    def close(self) -> None:
        if self.sampler.running:
            self.sampler.stop()
        self.meter.close()

    def __enter__(self) -> EnergyMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
