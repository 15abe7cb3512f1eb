"""A workload whose CPU time is known: ``python -c BURN SECONDS [CHILD_SECONDS]`` burns
SECONDS of its own CPU time, then, given CHILD_SECONDS, runs a child process that burns
that much. On exit it prints the CPU seconds of itself and its
waited-for children (interpreter start-ups included) as ``cpu_s=...`` on stderr.

Under the CPU model with P_idle = 0 the attributed energy of such a workload is
(P_max / n_cpus) x its CPU seconds, whatever else the host runs (:func:`model_meter`)."""

from __future__ import annotations

import re
import subprocess
import sys

from alems.energy.model import CpuModelMeter, ModelParams

SPIN = """
import hashlib, sys, time
start = time.process_time()
while time.process_time() - start < float(sys.argv[1]):
    hashlib.sha256(b"x" * 65536).digest()
"""
BURN = (
    SPIN
    + """
if len(sys.argv) > 2:
    import subprocess
    subprocess.run([sys.executable, "-c", sys.argv[3], sys.argv[2]], check=True)
import resource
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"cpu_s={own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime:.6f}", file=sys.stderr)
"""
)


def burn_command(seconds: float, child_seconds: float | None = None) -> list[str]:
    """The command: burn ``seconds`` here, then ``child_seconds`` in a child process."""
    args = [sys.executable, "-c", BURN, str(seconds)]
    return [*args, str(child_seconds), SPIN] if child_seconds is not None else args


def cpu_seconds(stderr: str) -> float:
    """The ``cpu_s=`` a burn command printed."""
    (value,) = re.findall(r"cpu_s=([0-9.]+)", stderr)
    return float(value)


def run_burn(seconds: float, child_seconds: float | None = None) -> float:
    """Run a burn command to completion here; its CPU seconds."""
    res = subprocess.run(burn_command(seconds, child_seconds), capture_output=True, text=True, check=True)
    return cpu_seconds(res.stderr)


def model_meter() -> CpuModelMeter:
    """The CPU model with no idle power: 3.5 W per logical CPU at full load (the default)."""
    return CpuModelMeter(ModelParams(p_idle_w=0.0))


def watts_per_busy_cpu(meter: CpuModelMeter) -> float:
    """(P_max - P_idle) / n_cpus: joules per CPU-second under the model."""
    return (meter.profile.p_max_w - meter.profile.p_idle_w) / meter.profile.n_cpus
