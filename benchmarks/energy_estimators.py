"""Energy estimators against simulations whose truth is known; prints error ratios.

1. NVML's energy counter steps every 100 ms. Reads every 10 ms (+-2 ms jitter) of a GPU
   at a constant 80 W, through a step to 400 W, on a ramp and on a 1 Hz square wave;
   windows of 30 ms to 1 s at random phase. Error of the old edge difference (the
   staircase) and of the reconstruction from update instants (alems.energy.stepwise).
   ``tests/test_energy_stepwise.py`` asserts the README's figures from these functions.
2. A steady background load. Host power P = P_idle + K * u_total (the simulated-RAPL /
   CPU-model law), a job at 0.8 CPU-s/s on one of 4 CPUs, the other 3 busy at u_bg. The
   idle baseline is taken under the same background. Attributed energy of the job, old
   alpha (job CPU / all busy CPU) against the new (job CPU / busy CPU net of the
   baseline's), as a ratio to the quiet host's value (truth: 1).

Run: ``PYTHONPATH=src python benchmarks/energy_estimators.py``. No hardware needed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from alems.accounting import CounterSeries, window_energy

LENGTHS_S = (0.03, 0.05, 0.08, 0.13, 0.2, 0.3, 0.5, 1.0)


def _square_j(t: np.ndarray) -> np.ndarray:
    """80 W and 400 W alternating every 0.5 s (a 1 Hz square wave), from 80 W at t = 0."""
    cycles = np.floor(t)
    return 80.0 * t + 320.0 * (0.5 * cycles + np.clip(t - cycles - 0.5, 0.0, None))


# Power profiles as closed-form cumulative energy E(t) in J (t in s from the first read), and
# the span in which a window of length L may start (None: anywhere): the step windows all
# straddle the step, the ramp windows lie on the ramp.
PROFILES: dict[
    str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[float], tuple[float, float]] | None]
] = {
    "constant 80 W": (lambda t: 80.0 * t, None),
    "step 80 -> 400 W at 10 s": (
        lambda t: 80.0 * t + 320.0 * np.clip(t - 10.0, 0.0, None),
        lambda length: (10.0 - length, 10.0),
    ),
    "ramp 80 -> 480 W over 9-11 s": (
        lambda t: 80.0 * t + 100.0 * np.clip(t - 9.0, 0.0, 2.0) ** 2 + 400.0 * np.clip(t - 11.0, 0.0, None),
        lambda length: (9.0, 11.0 - length),
    ),
    "square 80/400 W, 1 Hz": (_square_j, None),
}


def nvml_window_errors(
    profile: str = "constant 80 W", period: float = 0.1, seed: int = 0, windows: int = 300
) -> dict[float, dict[str, float]]:
    """Per window length: the largest |error| (J) of the edge difference (``staircase``) and
    of the reconstruction (``reconstruction``), and the reconstruction's mean error (``bias``).

    The counter reads E at the last update instant (every ``period`` s from the first read),
    as NVML's does; reads come every 10 +- 2 ms; windows start at random.
    """
    energy, span = PROFILES[profile]
    rng = np.random.default_rng(seed)
    t = np.cumsum(0.01 + rng.uniform(-0.002, 0.002, 2000))
    counter = energy(t[0] + np.floor((t - t[0]) / period + 1e-9) * period)
    frame = pd.DataFrame({"t": t, "gpu-0": counter, "proc_cpu_s": t, "sys_cpu_s": t})
    stair = CounterSeries.from_samples(frame, ["gpu-0"])
    rec = CounterSeries.from_samples(frame, ["gpu-0"], stepwise=["gpu-0"])
    out = {}
    for length in LENGTHS_S:
        lo, hi = span(length) if span else (t[20], t[-20] - length)
        t0 = rng.uniform(lo, hi, windows)
        t1 = t0 + length
        truth = energy(t1) - energy(t0)
        e_s = window_energy(stair, t0, t1, np.zeros(1), "none").raw_j - truth
        e_r = window_energy(rec, t0, t1, np.zeros(1), "none").raw_j - truth
        out[length] = {
            "truth": float(np.mean(truth)),
            "staircase": float(np.max(np.abs(e_s))),
            "reconstruction": float(np.max(np.abs(e_r))),
            "bias": float(np.mean(e_r)),
        }
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
    print("NVML counter stepping every 100 ms, reads every 10 +- 2 ms; |error| over 300 windows per length")
    for profile in PROFILES:
        errs = nvml_window_errors(profile)
        print(f"\n{profile}")
        print(
            f"{'window':>8} {'mean truth J':>13} {'staircase max J':>16} {'reconstructed max J':>20} {'bias J':>7}"
        )
        for length, e in errs.items():
            print(
                f"{length * 1000:6.0f}ms {e['truth']:13.2f} {e['staircase']:16.2f} "
                f"{e['reconstruction']:20.3f} {e['bias']:+7.3f}"
            )
    print("\nsteady background on 3 of 4 CPUs, baseline under the same load; attributed / quiet truth")
    print(f"{'u_bg':>6} {'old alpha':>10} {'new alpha':>10}")
    for u in (0.0, 0.1, 0.5, 0.9, 0.95):
        old, new = background(u)
        print(f"{u:6.2f} {old:10.3f} {new:10.3f}")


if __name__ == "__main__":
    main()
