"""How a measurement job records energy around its goals.

:class:`MeterRecording`: the meter on. One :class:`~alems.energy.sampler.Sampler` for the
job's whole span, whose boundary read is the event clock (so every attempt, LLM and tool
edge has an exact counter read), then :func:`alems.accounting.account` against the idle
baseline: the ``goals.csv`` rows, and ``samples.parquet``.

:class:`NullRecording`: the null meter (``alems run --no-energy``). A monotonic clock, no
samples, and the attempt outcomes without energy columns.

Both give the job the same three things: a clock for the events, a start and a stop around
the goals, and a :class:`Recorded` table afterwards.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from alems.accounting import AccountingConfig, account, empty_calls, events_calls
from alems.agents.executors import AttemptOutcome
from alems.agents.runner import outcomes_frame
from alems.energy import Domain, Meter, Sampler, open_meter, write_samples
from alems.io import atomic_path
from alems.settings import EnergySettings


def open_study_meter(energy: EnergySettings) -> Meter:
    """The meter the ``energy`` section names (``auto`` probes this host)."""
    return open_meter(
        energy.meter,
        powercap_root=energy.powercap_root,
        calibrate=energy.calibrate,
        model_params=energy.model,
    )


@dataclass
class Recorded:
    """What a recording makes of a job's outcomes: one row per attempt, and the run's energy."""

    goals: pd.DataFrame
    energy_source: str
    modeled: bool
    framework_overhead_j: float
    overhead_s: float
    domains: list[dict[str, Any]]
    samples: int
    flags: list[str]
    calls: pd.DataFrame = field(default_factory=empty_calls)
    conservation_residual: float | None = None  # largest relative residual of phases and calls


class Recording(Protocol):
    """What the job needs of a recording (see the module docstring)."""

    @property
    def meter_name(self) -> str: ...

    def clock(self) -> float: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def finish(
        self, events: Sequence[Mapping[str, Any]], outcomes: Sequence[AttemptOutcome], run_id: str
    ) -> Recorded: ...

    def write_samples(self, path: Path) -> None: ...

    def close(self) -> None: ...


class MeterRecording:
    """The meter on: sample it for the job's span, then account against the idle baseline.

    ``idle_busy_cpu_per_s``: busy CPU-seconds per second during the idle baseline
    (:func:`alems.baseline.idle_busy_cpu_per_s`), so accounting does not remove a
    steady background twice. The meter is closed when the samples are taken (or on
    :meth:`close`).
    """

    def __init__(
        self,
        meter: Meter,
        energy: EnergySettings,
        accounting: AccountingConfig,
        *,
        idle_power_w: Mapping[str, float],
        idle_busy_cpu_per_s: float | None = None,
    ) -> None:
        self.meter = meter
        self.accounting = accounting
        self.idle_power_w = idle_power_w
        self.idle_busy_cpu_per_s = idle_busy_cpu_per_s
        self.sampler = Sampler(
            meter,
            interval_s=energy.interval_s,
            pid=os.getpid(),
            gpu_study_names=tuple(accounting.gpu_study_processes),
        )
        self._samples = pd.DataFrame()
        self._domains: list[Domain] = []
        self._closed = False

    @property
    def meter_name(self) -> str:
        return str(getattr(self.meter, "name", type(self.meter).__name__))

    def clock(self) -> float:
        return self.sampler.boundary_t()

    def start(self) -> None:
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stop()

    def finish(
        self, events: Sequence[Mapping[str, Any]], outcomes: Sequence[AttemptOutcome], run_id: str
    ) -> Recorded:
        self._samples = self.sampler.frame()
        self._domains = domains = list(self.meter.domains())
        self.close()
        result = account(
            self._samples,
            domains,
            list(events),
            outcomes,
            self.idle_power_w,
            attribution=self.accounting.attribution,
            min_coverage=float(self.accounting.min_coverage),
            run_id=run_id,
            idle_busy_cpu_per_s=self.idle_busy_cpu_per_s,
        )
        foreign = self.sampler.gpu_foreign_pids
        return Recorded(
            goals=result.goals,
            energy_source=result.energy_source,
            modeled=bool(result.contains_modeled),
            framework_overhead_j=float(result.framework_overhead_j),
            overhead_s=float(result.overhead_s),
            domains=[{"key": d.key, "kind": d.kind, "source": d.source, "meter": d.meter} for d in domains],
            samples=len(self._samples),
            flags=list(result.flags) + ([f"gpu_foreign_pids:{len(foreign)}"] if foreign else []),
            calls=result.calls,
            conservation_residual=float(result.conservation_residual),
        )

    def write_samples(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            write_samples(self._samples, self._domains, str(tmp))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.meter.close()


class NullRecording:
    """The null meter: events on ``clock`` (monotonic), and the outcomes with no energy at all."""

    meter_name = "none"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def clock(self) -> float:
        return self._clock()

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""

    def finish(
        self, events: Sequence[Mapping[str, Any]], outcomes: Sequence[AttemptOutcome], run_id: str
    ) -> Recorded:
        frame = outcomes_frame(outcomes)
        return Recorded(
            goals=frame,
            calls=events_calls(list(events), frame, run_id) if len(frame) else empty_calls(),
            energy_source="none",
            modeled=False,
            framework_overhead_j=math.nan,
            overhead_s=math.nan,
            domains=[],
            samples=0,
            flags=["no_energy"],
        )

    def write_samples(self, path: Path) -> None:
        """No meter, no samples: nothing is written."""

    def close(self) -> None:
        """Nothing to close."""
