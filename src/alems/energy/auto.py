"""Meter selection: ``open_meter(kind)`` and the ``auto`` policy.

``auto`` takes every readable, *live* measured domain: RAPL zones and NVIDIA GPUs.
A short calibration load (a busy loop, ``calibration_s``) finds dead counters, ones
that do not move at all under load (a virtual ``psys`` that always reads 0); they
are left out with a warning. If no live CPU counter remains (no package or psys
domain), the CPU is covered by the ``cpu-model`` meter, labelled ``modeled``,
beside whatever GPUs are measured. One INFO log line says what was chosen and why.

An explicit kind (``rapl``, ``nvml``, ``model``) opens that meter alone, reads every
domain it has, and raises its typed error when it cannot be used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

from alems.energy.base import Domain, Meter
from alems.energy.composite import CompositeMeter, FilteredMeter
from alems.energy.model import CpuModelMeter, ModelParams, as_model_params
from alems.energy.nvml import UPDATE_PERIOD_S, NvmlMeter
from alems.energy.rapl import DEFAULT_POWERCAP_ROOT, RaplMeter
from alems.errors import ConfigError, MeterError, PermissionDeniedError

log = logging.getLogger("alems.energy")

KINDS = ("auto", "rapl", "nvml", "model")
DEFAULT_CALIBRATION_S = 0.3


def calibration_load(seconds: float, clock: Callable[[], float] = time.monotonic) -> int:
    """Keep one CPU busy for ``seconds`` (a pure-Python loop); returns the loop count."""
    end = clock() + seconds
    n = 0
    x = 1
    while clock() < end:
        for _ in range(2000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        n += 1
    return n


def find_dead(
    meters: list[Meter], seconds: float, clock: Callable[[], float] = time.monotonic
) -> dict[str, str]:
    """Domains whose raw counter does not move at all while the CPU is kept busy."""
    if not meters:
        return {}
    before = {k: v for m in meters for k, v in m.read_raw().items()}
    calibration_load(seconds, clock)
    after = {k: v for m in meters for k, v in m.read_raw().items()}
    return {
        k: f"did not move under a {seconds:.2f} s calibration load (stuck at {before[k]:g} J)"
        for k in before
        if after.get(k) == before[k]
    }


@dataclass
class Probe:
    """What this machine offers, before any choice is made (shared with ``alems doctor``)."""

    powercap_root: str
    rapl: RaplMeter | None = None
    rapl_status: str = "absent"  # ok | absent | permission | error
    rapl_error: MeterError | None = None
    nvml: NvmlMeter | None = None
    nvml_status: str = "absent"  # ok | absent | error
    nvml_error: MeterError | None = None
    dead: dict[str, str] = field(default_factory=dict)
    calibrated: bool = False
    calibration_s: float = 0.0

    def close(self) -> None:
        for m in (self.rapl, self.nvml):
            if m is not None:
                m.close()


def probe(
    powercap_root: str | None = None,
    *,
    calibrate: bool = True,
    calibration_s: float = DEFAULT_CALIBRATION_S,
    pynvml_module: ModuleType | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Probe:
    """Open every measured meter that works here and (optionally) find dead counters."""
    p = Probe(str(powercap_root or DEFAULT_POWERCAP_ROOT))
    try:
        p.rapl = RaplMeter(p.powercap_root)
        p.rapl_status = "ok"
    except PermissionDeniedError as exc:
        p.rapl_status, p.rapl_error = "permission", exc
    except MeterError as exc:
        p.rapl_error = exc
        p.rapl_status = "absent" if exc.absent else "error"
    try:
        p.nvml = NvmlMeter(pynvml_module=pynvml_module, clock=clock)
        p.nvml_status = "ok"
    except MeterError as exc:
        p.nvml_error = exc
        p.nvml_status = "absent" if exc.absent else "error"
    if calibrate:
        meters: list[Meter] = [m for m in (p.rapl, p.nvml) if m is not None]
        if meters:
            secs = calibration_s
            if p.nvml is not None:
                secs = max(secs, 2.5 * UPDATE_PERIOD_S)
            p.dead = find_dead(meters, secs, clock)
            p.calibrated, p.calibration_s = True, secs
    return p


@dataclass
class Selection:
    """The outcome of ``auto``: chosen domains by source, and why others were left out."""

    measured: list[str]
    modeled: list[str]
    left_out: dict[str, str]
    line: str
    warnings: list[str]


@dataclass
class _Choice:
    """What ``auto`` has taken so far: the meters, the measured keys, the INFO line's phrases, warnings."""

    parts: list[Meter] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def take(self, meter: Meter, live: list[Domain]) -> None:
        """Use ``meter`` for its ``live`` domains (all of it, or a filtered view)."""
        whole = len(live) == len(meter.domains())
        self.parts.append(meter if whole else FilteredMeter(meter, [d.key for d in live]))
        self.measured += [d.key for d in live]


def _choose_rapl(p: Probe, c: _Choice) -> str | None:
    """Take RAPL's live domains; return why the CPU must be modeled (``None``: a live CPU counter is read)."""
    if p.rapl is not None:
        live = [d for d in p.rapl.domains() if d.key not in p.dead]
        if live:
            c.take(p.rapl, live)
            how = (
                f"live under a {p.calibration_s:.2f} s calibration load" if p.calibrated else "not calibrated"
            )
            c.phrases.append(f"measured {', '.join(d.key for d in live)} (RAPL at {p.powercap_root}, {how})")
        if any(d.kind in ("package", "psys") for d in live):
            return None
        return "every RAPL CPU counter is dead"
    if p.rapl_status == "permission":
        assert p.rapl_error is not None
        c.warnings.append(str(p.rapl_error))
        return f"RAPL at {p.powercap_root} is not readable"
    if p.rapl_status == "absent":
        return f"no RAPL powercap zones at {p.powercap_root}"
    return f"RAPL unusable: {p.rapl_error.message if p.rapl_error else 'unknown error'}"


def _choose_nvml(p: Probe, c: _Choice) -> None:
    """Take the live GPUs, or say why there is none."""
    if p.nvml is None:
        why = p.nvml_error.message if p.nvml_error else "not probed"
        c.phrases.append(f"no GPU ({why})")
        return
    live = [d for d in p.nvml.domains() if d.key not in p.dead]
    if live:
        c.take(p.nvml, live)
        names = ", ".join(f"{d.key} {d.info.get('name')} via {d.info.get('method')}" for d in live)
        c.phrases.append(f"measured {names} (NVML)")


def _model_cpu(c: _Choice, params: ModelParams, clock: Callable[[], float], why: str) -> None:
    """Cover the CPU with the ``cpu-model`` meter, saying ``why`` it is modeled."""
    model = CpuModelMeter(params, clock=clock)
    c.parts.append(model)
    info = model.domains()[0].info
    c.phrases.append(
        f"modeled cpu-model for the CPU because {why} "
        f"(P_idle {info['p_idle_w']:.2f} W, P_max {info['p_max_w']:.2f} W, {info['n_cpus']} CPUs)"
    )


def select_auto(
    p: Probe,
    model_params: ModelParams | Mapping[str, object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[CompositeMeter, Selection]:
    """Build the ``auto`` meter from a :class:`Probe` (see the module docstring)."""
    c = _Choice(
        warnings=[f"{key} left out of auto: dead counter, {why}" for key, why in sorted(p.dead.items())]
    )
    why_model = _choose_rapl(p, c)
    _choose_nvml(p, c)
    modeled: list[str] = []
    if why_model is not None:
        _model_cpu(c, as_model_params(model_params), clock, why_model)
        modeled.append("cpu-model")
    if p.dead:
        c.phrases.append("left out as dead: " + ", ".join(sorted(p.dead)))
    line = "auto meter: " + "; ".join(c.phrases)
    # Close meters that were probed but not used.
    used = {id(m.inner) if isinstance(m, FilteredMeter) else id(m) for m in c.parts}
    for m in (p.rapl, p.nvml):
        if m is not None and id(m) not in used:
            m.close()
    meter = CompositeMeter(c.parts, name="auto", notes=[line], warnings=c.warnings)
    return meter, Selection(c.measured, modeled, dict(p.dead), line, c.warnings)


def open_meter(
    kind: str = "auto",
    *,
    powercap_root: str | None = None,
    model_params: ModelParams | Mapping[str, object] | None = None,
    calibrate: bool = True,
    calibration_s: float = DEFAULT_CALIBRATION_S,
    pynvml_module: ModuleType | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Meter:
    """Open a meter: ``auto`` (see module doc), ``rapl``, ``nvml`` or ``model``."""
    if kind == "rapl":
        return RaplMeter(powercap_root)
    if kind == "nvml":
        return NvmlMeter(pynvml_module=pynvml_module, clock=clock)
    if kind == "model":
        return CpuModelMeter(as_model_params(model_params), clock=clock)
    if kind != "auto":
        raise ConfigError(f"unknown meter {kind!r}", f"use one of {', '.join(KINDS)}")
    p = probe(
        powercap_root,
        calibrate=calibrate,
        calibration_s=calibration_s,
        pynvml_module=pynvml_module,
        clock=clock,
    )
    meter, sel = select_auto(p, model_params, clock)
    log.info(sel.line)
    for w in sel.warnings:
        log.warning(w)
    return meter
