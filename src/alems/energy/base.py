"""The meter interface every energy source implements, and the domain records it reports.

A meter reports *raw* counters (joules, possibly wrapping). Wrap correction and
accumulation into cumulative joules belong to :class:`alems.energy.sampler.Sampler`
(via a per-domain tracker), so every meter shares one tested code path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from alems.errors import MeterError

Source = Literal["measured", "modeled"]


@dataclass(frozen=True)
class Domain:
    """One energy domain.

    ``key`` is the stable name used in every table: ``package-N``, ``core-N``,
    ``uncore-N``, ``dram-N``, ``psys``, ``gpu-N`` or ``cpu-model``.
    ``parent`` names the package a core/uncore sub-zone is part of (those are never
    added to a total). ``max_range_j`` is where the raw counter wraps (``None``: never).
    ``max_power_w`` bounds how fast the counter can move (sets the safe poll interval).
    """

    key: str
    kind: str  # package | core | uncore | dram | psys | gpu | cpu-model
    source: Source
    meter: str  # rapl | nvml | model
    parent: str | None = None
    max_range_j: float | None = None
    max_power_w: float | None = None
    location: str | None = None  # sysfs path, GPU index/UUID, "/proc/stat" ... for messages
    info: Mapping[str, object] = field(default_factory=dict)


def summable_keys(domains: Iterable[Domain]) -> list[str]:
    """Keys whose energies may be added without double counting.

    Packages plus DRAM; or psys alone where no package domain is present; plus GPUs
    and the CPU model. Core and uncore are inside their package and never summed.
    """
    doms = list(domains)
    kinds = {d.kind for d in doms}
    keys: list[str] = []
    if "package" in kinds:
        keys += [d.key for d in doms if d.kind in ("package", "dram")]
    elif "psys" in kinds:
        keys += [d.key for d in doms if d.kind == "psys"]
    keys += [d.key for d in doms if d.kind in ("gpu", "cpu-model")]
    return keys


def absent(exc: MeterError) -> MeterError:
    """Mark ``exc`` as "no such hardware here" (nothing is broken) rather than a fault."""
    exc.absent = True
    return exc


class Meter(ABC):
    """A source of energy counters for a fixed set of domains."""

    name: str = "meter"

    @abstractmethod
    def domains(self) -> list[Domain]:
        """The domains this meter reports, in a stable order."""

    @abstractmethod
    def read_raw(self) -> dict[str, float]:
        """Raw counter values in joules, keyed by domain key.

        Values may wrap at ``Domain.max_range_j``. Raises
        :class:`alems.errors.CounterReadError` when a counter cannot be read;
        a failed read never becomes 0.
        """

    def spec(self) -> dict[str, object] | None:
        """A JSON-able recipe to open the same meter in another process, or ``None``.

        The sampler's child process uses it (:func:`alems.energy.composite.meter_from_spec`).
        Only meters whose readings do not depend on this process's state may return one.
        """
        return None

    def warnings(self) -> list[str]:
        """Things a user should know about this meter's numbers (empty by default)."""
        return []

    def device_processes(self) -> dict[str, set[int]] | None:
        """PIDs running on each of this meter's devices (GPU domain key -> PIDs), or ``None``.

        Only meters of devices a process can hold (GPUs) answer; accounting uses it to
        tell whether a GPU served only the study (``gpu_shared`` otherwise).
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles (NVML, open files)."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
