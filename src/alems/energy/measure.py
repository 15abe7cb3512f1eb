"""``alems measure``: the energy one command moves the counters by.

The meter is opened and the sampler started *before* the command is spawned, so wraps
are tracked all along; the window runs from a boundary read just before the spawn to
one just after the command is waited for. Stepwise counters (NVML energy) are
reconstructed from their update instants (:mod:`alems.energy.stepwise`); the sampler
reads on after the command until their next update. ``proc_cpu_s`` is the CPU time of the
command's whole process tree, from ``wait4``'s resource usage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from alems.energy.auto import open_meter
from alems.energy.model import ModelParams
from alems.energy.monitor import measurement_from_samples
from alems.energy.sampler import Sample, Sampler
from alems.errors import AlemsError, ConfigError


@dataclass
class MeasureResult:
    """The ``alems measure --json`` object (DESIGN.md's keys first, then extras)."""

    meter: str
    duration_s: float
    energy_j: dict[str, float]
    sources: dict[str, str]
    total_j: float
    exit_code: int
    static: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    proc_cpu_s: float = 0.0
    interval_s: float = 0.01
    selection: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [
            f"meter {self.meter}: {self.duration_s:.3f} s, exit code {self.exit_code}, "
            f"command CPU {self.proc_cpu_s:.3f} s"
        ]
        for k, v in self.energy_j.items():
            flag = "  (static)" if k in self.static else ""
            w = v / self.duration_s if self.duration_s > 0 else float("nan")
            lines.append(f"  {k:12} {v:14.4f} J  {w:9.3f} W  {self.sources[k]}{flag}")
        lines.append(f"  {'total':12} {self.total_j:14.4f} J")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N -> 128 + N, as a shell says


def _wait(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for ``proc``; (exit code, CPU seconds of its tree). Ctrl-C twice kills it."""
    interrupts = 0
    while True:
        try:
            _, status, ru = os.wait4(proc.pid, 0)
            break
        except ChildProcessError:
            proc.wait()
            return int(proc.returncode), 0.0
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts >= 2:
                proc.send_signal(signal.SIGKILL)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return _exit_code(status), ru.ru_utime + ru.ru_stime


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(argv)
    except FileNotFoundError as exc:
        raise AlemsError(f"command not found: {argv[0]}", "check the command name and PATH") from exc
    except PermissionError as exc:
        raise AlemsError(f"cannot execute {argv[0]}: permission denied", f"chmod +x {argv[0]}") from exc


def _run_sampled(sampler: Sampler, argv: list[str]) -> tuple[Sample, Sample, int, float]:
    """Run ``argv`` between two boundary reads of the running ``sampler``: (first read, last read,
    exit code, CPU seconds of the command's tree)."""
    sampler.start()
    try:
        a = sampler.boundary_read()
        exit_code, cpu_s = _wait(_spawn(argv))
        b = sampler.boundary_read()
    finally:
        sampler.stop()
    return a, b, exit_code, cpu_s


def measure_command(
    argv: Sequence[str],
    *,
    meter: str = "auto",
    powercap_root: str | None = None,
    interval_s: float = 0.01,
    model_params: ModelParams | Mapping[str, object] | None = None,
    calibrate: bool = True,
    pynvml_module: ModuleType | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MeasureResult:
    """Run ``argv`` and return the energy it moved the chosen meter's counters by."""
    argv = list(argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise ConfigError("no command to measure", "alems measure [options] -- CMD [ARGS ...]")
    m = open_meter(
        meter,
        powercap_root=powercap_root,
        model_params=model_params,
        calibrate=calibrate,
        pynvml_module=pynvml_module,
        clock=clock,
    )
    try:
        sampler = Sampler(m, interval_s=interval_s, clock=clock)
        a, b, exit_code, cpu_s = _run_sampled(sampler, argv)
        warnings = list(m.warnings()) + list(sampler.warnings)
    finally:
        m.close()
    meas = measurement_from_samples("command", a, b, sampler.domains, sampler.samples())
    warnings += meas.warnings
    if sampler.errors:
        warnings.append(
            f"{len(sampler.errors)} background read(s) failed and were skipped; first: {sampler.errors[0].message}"
        )
    notes = getattr(m, "notes", None)
    return MeasureResult(
        meter=meter,
        duration_s=meas.duration_s,
        energy_j=meas.energy_j,
        sources=meas.sources,
        total_j=meas.total_j,
        exit_code=exit_code,
        static=meas.static,
        warnings=warnings,
        proc_cpu_s=cpu_s,
        interval_s=sampler.interval_s,
        selection=notes[0] if notes else None,
    )
