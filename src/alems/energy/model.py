"""The CPU power model (domain ``cpu-model``, source always ``modeled``).

For machines with no live CPU energy counter (VMs, containers, most clouds):

    P = P_idle + (P_max - P_idle) * utilisation

with utilisation = busy CPU seconds / (CPUs x wall seconds), both from ``/proc/stat``.
Integrated over an interval of ``dt`` wall seconds in which the CPUs were busy for
``busy_s`` CPU seconds, that is exactly

    E = P_idle * dt + (P_max - P_idle) * busy_s / n_cpus            (:func:`model_energy_j`)

which needs no division by a possibly-zero jiffy count, so it stays exact when polled
every 10 ms. :class:`CpuModelProfile` applies it to successive ``/proc/stat`` reads;
the model meter and the simulated-RAPL writer (:mod:`alems.energy.simulated`) both use
it, so a run through simulated RAPL can be checked against the model on the same
power profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from alems.energy.base import Domain, Meter
from alems.energy.procstat import ProcStat
from alems.energy.wrap import counter_error
from alems.errors import ConfigError, MeterError
from alems.sections import schema_default, settings_from_dict

#: Cloud Carbon Footprint's per-vCPU coefficients for AWS (derived from SPECpower
#: results): 0.74 W per vCPU at idle, 3.5 W per vCPU at full load (the schema's
#: ``energy.model`` defaults).
IDLE_W_PER_CPU: float = schema_default("energy", "model", "idle_w_per_cpu")
MAX_W_PER_CPU: float = schema_default("energy", "model", "max_w_per_cpu")


@dataclass(frozen=True)
class ModelParams:
    """Parameters of the CPU power model.

    Defaults: ``p_idle_w`` and ``p_max_w`` left at ``None`` scale with the number of
    logical CPUs in ``/proc/stat``: 0.74 W idle and 3.5 W at full load per logical CPU
    (``idle_w_per_cpu``, ``max_w_per_cpu``). These are Cloud Carbon Footprint's AWS
    averages, taken from SPECpower results; they describe a typical cloud vCPU, the
    machine this model exists for (a 2-vCPU VM: 1.48 W idle, 7 W busy). On a machine
    whose real figures you know (a wall meter, a datasheet, or an idle baseline plus a
    stress run with RAPL), set ``p_idle_w`` and ``p_max_w`` in watts for the whole CPU.
    ``proc_stat`` is the file utilisation comes from (injectable for tests).
    """

    p_idle_w: float | None = schema_default("energy", "model", "p_idle_w")
    p_max_w: float | None = schema_default("energy", "model", "p_max_w")
    idle_w_per_cpu: float = IDLE_W_PER_CPU
    max_w_per_cpu: float = MAX_W_PER_CPU
    proc_stat: str = schema_default("energy", "model", "proc_stat")

    def __post_init__(self) -> None:
        for name in ("p_idle_w", "p_max_w", "idle_w_per_cpu", "max_w_per_cpu"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or v < 0):
                raise ConfigError(
                    f"model_params.{name} must be a non-negative number of watts, got {v!r}",
                    f"set model_params.{name} to e.g. 10.0",
                )
        if self.p_idle_w is not None and self.p_max_w is not None and self.p_max_w < self.p_idle_w:
            raise ConfigError(
                f"model_params.p_max_w ({self.p_max_w}) is below p_idle_w ({self.p_idle_w})",
                "set model_params.p_max_w >= model_params.p_idle_w",
            )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, object] | None) -> ModelParams:
        """Build from the ``energy.model`` config section; unknown keys and ill-typed values are a
        :class:`ConfigError` (:func:`alems.sections.settings_from_dict`)."""
        return settings_from_dict(cls, mapping, "model_params")

    def resolve(self, n_cpus: int) -> tuple[float, float]:
        """(P_idle, P_max) in watts for a machine with ``n_cpus`` logical CPUs."""
        p_idle = self.p_idle_w if self.p_idle_w is not None else self.idle_w_per_cpu * n_cpus
        p_max = self.p_max_w if self.p_max_w is not None else self.max_w_per_cpu * n_cpus
        if p_max < p_idle:
            raise ConfigError(
                f"model power: P_max {p_max} W is below P_idle {p_idle} W",
                "set model_params.p_max_w >= model_params.p_idle_w",
            )
        return float(p_idle), float(p_max)


def as_model_params(value: ModelParams | Mapping[str, object] | None) -> ModelParams:
    """``value`` if it is :class:`ModelParams`, else built from the mapping (``None``: the defaults)."""
    if value is None or isinstance(value, ModelParams):
        return value or ModelParams()
    return ModelParams.from_dict(value)


def model_power_w(p_idle_w: float, p_max_w: float, utilisation: float) -> float:
    """P = P_idle + (P_max - P_idle) x utilisation."""
    return p_idle_w + (p_max_w - p_idle_w) * utilisation


def model_energy_j(p_idle_w: float, p_max_w: float, dt_s: float, busy_cpu_s: float, n_cpus: int) -> float:
    """The model's energy over ``dt_s`` seconds in which CPUs were busy ``busy_cpu_s`` CPU-seconds."""
    return p_idle_w * dt_s + (p_max_w - p_idle_w) * busy_cpu_s / n_cpus


class CpuModelProfile:
    """Cumulative modeled CPU energy at time ``t``, from ``/proc/stat``.

    Because the model is linear in busy time, the cumulative energy since the origin
    ``(t0, busy0)`` has a closed form that needs no integration state::

        E(t) = P_idle * (t - t0) + (P_max - P_idle) * (busy(t) - busy0) / n_cpus

    so every reader (the meter, a sampler child process, the simulated-RAPL writer)
    that shares the origin computes the same number. ``t`` is on any clock, the same
    one every call; the origin's ``t0`` is taken at the first call unless given.
    """

    def __init__(
        self,
        params: ModelParams | None = None,
        t0: float | None = None,
        busy0: float | None = None,
    ) -> None:
        self.params = params or ModelParams()
        self.stat = ProcStat(self.params.proc_stat)
        self.n_cpus = self.stat.n_cpus
        self.p_idle_w, self.p_max_w = self.params.resolve(self.n_cpus)
        self.busy0 = self.stat.read().busy_s if busy0 is None else float(busy0)
        self.t0 = t0

    def energy_j(self, t: float) -> float:
        busy = self.stat.read().busy_s
        if self.t0 is None:
            self.t0 = t
        return model_energy_j(self.p_idle_w, self.p_max_w, t - self.t0, busy - self.busy0, self.n_cpus)


class CpuModelMeter(Meter):
    """The ``cpu-model`` domain: :class:`CpuModelProfile` on ``clock``, origin at construction."""

    name = "model"

    def __init__(
        self,
        params: ModelParams | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        origin: tuple[float, float] | None = None,
    ) -> None:
        self.params = params or ModelParams()
        self.clock = clock
        t0, busy0 = origin if origin is not None else (clock(), None)
        self.profile = CpuModelProfile(self.params, t0=t0, busy0=busy0)
        self._domain = Domain(
            key="cpu-model",
            kind="cpu-model",
            source="modeled",
            meter="model",
            max_range_j=None,
            max_power_w=self.profile.p_max_w,
            location=self.params.proc_stat,
            info={
                "p_idle_w": self.profile.p_idle_w,
                "p_max_w": self.profile.p_max_w,
                "n_cpus": self.profile.n_cpus,
                "formula": "P = P_idle + (P_max - P_idle) * utilisation(/proc/stat)",
                "update_period_s": 0.01,
            },
        )

    def domains(self) -> list[Domain]:
        return [self._domain]

    def spec(self) -> dict[str, object] | None:
        if self.clock is not time.monotonic:
            return None  # another process cannot share an injected clock
        return {
            "kind": "model",
            "params": asdict(self.params),
            "origin": [self.profile.t0, self.profile.busy0],
        }

    def read_raw(self) -> dict[str, float]:
        try:
            return {"cpu-model": self.profile.energy_j(self.clock())}
        except MeterError as exc:
            raise counter_error("cpu-model", exc.message, exc.fix) from exc
