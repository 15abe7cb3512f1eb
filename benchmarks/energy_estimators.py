"""Energy estimators against simulations whose truth is known; prints error ratios.

1. NVML's energy counter steps every 100 ms. Reads every 10 ms (+-2 ms jitter) of an
   80 W GPU; windows of 30 ms to 1 s at random phase. Error of the old edge difference
   (the staircase) and of the reconstruction from update instants (alems.energy.stepwise).
2. A steady background load. Host power P = P_idle + K * u_total (the simulated-RAPL /
   CPU-model law), a job at 0.8 CPU-s/s on one of 4 CPUs, the other 3 busy at u_bg. The
   idle baseline is taken under the same background. Attributed energy of the job, old
   alpha (job CPU / all busy CPU) against the new (job CPU / busy CPU net of the
   baseline's), as a ratio to the quiet host's value (truth: 1).

Run: ``PYTHONPATH=src python benchmarks/energy_estimators.py``. No hardware needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alems.accounting import CounterSeries, window_energy

LENGTHS_S = (0.03, 0.05, 0.08, 0.13, 0.2, 0.3, 0.5, 1.0)


def nvml_errors(watts: float = 80.0, period: float = 0.1, seed: int = 0) -> dict[float, tuple[float, float]]:
    """Max |error| in J per window length: (staircase, reconstruction)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(0.01 + rng.uniform(-0.002, 0.002, 2000))
    counter = np.floor((t - t[0]) / period + 1e-9) * period * watts
    frame = pd.DataFrame({"t": t, "gpu-0": counter, "proc_cpu_s": t, "sys_cpu_s": t})
    stair = CounterSeries.from_samples(frame, ["gpu-0"])
    rec = CounterSeries.from_samples(frame, ["gpu-0"], stepwise=["gpu-0"])
    out = {}
    for length in LENGTHS_S:
        t0 = rng.uniform(t[20], t[-20] - length, 300)
        t1 = t0 + length
        truth = watts * length
        e_s = window_energy(stair, t0, t1, np.zeros(1), "none").raw_j
        e_r = window_energy(rec, t0, t1, np.zeros(1), "none").raw_j
        out[length] = (float(np.max(np.abs(e_s - truth))), float(np.max(np.abs(e_r - truth))))
    return out


def background(
    u_bg: float, n: int = 4, p_idle: float = 20.0, p_max: float = 100.0, job: float = 0.8
) -> tuple[float, float]:
    """(old, new) attributed energy of a 2 s job / the quiet truth, baseline under the same load."""
    k = p_max - p_idle
    dt = 0.01
    t = np.arange(0, 6.0, dt)
    in_job = (t >= 2.0) & (t < 4.0)
    busy_rate = u_bg * (n - 1) + np.where(in_job, job, 0.0)
    sys_cpu = np.concatenate([[0.0], np.cumsum(busy_rate[:-1] * dt)])
    proc = np.concatenate([[0.0], np.cumsum(np.where(in_job, job, 0.0)[:-1] * dt)])
    energy = np.concatenate([[0.0], np.cumsum((p_idle + k * busy_rate[:-1] / n) * dt)])
    frame = pd.DataFrame({"t": t, "package-0": energy, "proc_cpu_s": proc, "sys_cpu_s": sys_cpu})
    series = CounterSeries.from_samples(frame, ["package-0"])
    idle_w = np.array([p_idle + k * u_bg * (n - 1) / n])  # what an idle baseline under this load measures
    t0, t1 = np.array([2.0]), np.array([4.0])
    old = window_energy(series, t0, t1, idle_w, "cpu_share").attributed_j[0]
    new = window_energy(series, t0, t1, idle_w, "cpu_share", idle_busy_cpu_per_s=u_bg * (n - 1)).attributed_j[
        0
    ]
    truth = k * job * 2.0 / n
    return float(old / truth), float(new / truth)


def main() -> None:
    print("NVML counter stepping every 100 ms, 80 W, reads every 10 +- 2 ms; max |error| over 300 windows")
    print(f"{'window':>8} {'truth J':>8} {'staircase J':>12} {'reconstructed J':>16}")
    for length, (e_s, e_r) in nvml_errors().items():
        print(f"{length * 1000:6.0f}ms {80 * length:8.2f} {e_s:12.2f} {e_r:16.3f}")
    print("\nsteady background on 3 of 4 CPUs, baseline under the same load; attributed / quiet truth")
    print(f"{'u_bg':>6} {'old alpha':>10} {'new alpha':>10}")
    for u in (0.0, 0.1, 0.5, 0.9, 0.95):
        old, new = background(u)
        print(f"{u:6.2f} {old:10.3f} {new:10.3f}")


if __name__ == "__main__":
    main()
