"""Sampler overhead: how much a 10 ms background sampler slows two fixed CPU-bound workloads.

* ``python``: a pure-Python loop, which holds the GIL (the sampler thread must take it);
* ``numpy``: a NumPy matmul loop, which releases the GIL (as llama.cpp does).

Each workload runs without a sampler, with a sampler thread and with a sampler child
process (``Sampler(mode=...)``; RAPL meter on a fake powercap tree, ``intel-psys``
layout: 4 domains) in interleaved rounds (A B C C B A ...), so drift on a shared
machine hits every arm alike. Printed: median wall time of each arm and the slowdown
ratio (median with / median without; target <= 1.01), plus the median latency of one
boundary read of all domains in each mode (target < 100 us).

On a shared or saturated machine wall-clock ratios carry several per cent of noise;
the CPU time each mode spends sampling (per sample, and as a share of one core) is
printed too, because it is robust to other load: in ``thread`` mode that time is
taken under the GIL, so it is a lower bound on the slowdown of GIL-bound code; in
``process`` mode it runs in another process and costs GIL-bound code nothing where a
core is free.

Usage: python benchmarks/sampler_overhead.py [--rounds N] [--seconds S] [--interval-ms MS]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from alems.energy.rapl import RaplMeter
from alems.energy.sampler import Sampler
from alems.energy.simulated import make_powercap_tree


def python_loop(n: int) -> int:
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFFFFFF
    return x


def numpy_loop(n: int, a: np.ndarray, b: np.ndarray) -> float:
    s = 0.0
    for _ in range(n):
        s += float((a @ b)[0, 0])
    return s


def sampler_schedstat(s: Sampler) -> str:
    """The /proc schedstat file of the sampler's thread or child (run time in ns)."""
    if s._child is not None:
        return f"/proc/{s._child.proc.pid}/schedstat"
    assert s._thread is not None
    return f"/proc/self/task/{s._thread.native_id}/schedstat"


def run_ns(path: str) -> int:
    with open(path) as fh:
        return int(fh.read().split()[0])


def calibrate(fn, target_s: float) -> int:  # type: ignore[no-untyped-def]
    n = 1
    while True:
        t = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t
        if dt > 0.2:
            return max(1, int(n * target_s / dt))
        n *= 2


def timed(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn(n)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=0.5, help="length of one workload run")
    ap.add_argument("--interval-ms", type=float, default=10.0)
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    fake = make_powercap_tree(Path(tmp.name) / "powercap", "intel-psys")
    meter = RaplMeter(fake.root)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((384, 384)), rng.standard_normal((384, 384))
    workloads = {
        "python (holds the GIL)": lambda n: python_loop(n),
        "numpy matmul (releases the GIL)": lambda n: numpy_loop(n, a, b),
    }
    print(
        f"fake tree: {len(meter.domains())} domains ({', '.join(d.key for d in meter.domains())}); "
        f"interval {args.interval_ms:g} ms; {args.rounds} interleaved rounds of ~{args.seconds:g} s"
    )
    arms = ("none", "thread", "process")
    for name, fn in workloads.items():
        n = calibrate(fn, args.seconds)
        times: dict[str, list[float]] = {a: [] for a in arms}
        rows = {a: 0 for a in arms}
        cpu = {a: 0.0 for a in arms}
        for r in range(args.rounds):
            order = arms if r % 2 == 0 else arms[::-1]
            for arm in order:
                if arm == "none":
                    times[arm].append(timed(fn, n))
                    continue
                s = Sampler(meter, interval_s=args.interval_ms / 1000.0, mode=arm)
                s.start()
                rows0 = len(s.samples())
                sched = sampler_schedstat(s)
                c0 = run_ns(sched)
                times[arm].append(timed(fn, n))
                cpu[arm] += (run_ns(sched) - c0) / 1e9  # CPU time of the sampling thread/child only
                rows[arm] += len(s.samples()) - rows0
                s.stop()
        base = statistics.median(times["none"])
        print(f"{name}: without a sampler {base:.4f} s (median of {args.rounds})")
        for arm in arms[1:]:
            ratio = statistics.median(times[arm]) / base
            pair = statistics.median(x / y for x, y in zip(times[arm], times["none"]))
            best = min(times[arm]) / min(times["none"])
            rate = rows[arm] / sum(times[arm])
            per = cpu[arm] / max(rows[arm], 1) * 1e6
            share = cpu[arm] / sum(times[arm]) * 100
            print(
                f"    sampler {arm:7}  {statistics.median(times[arm]):.4f} s  slowdown {ratio:.4f}  "
                f"(paired median {pair:.4f}, min/min {best:.4f})  [target <= 1.01]\n"
                f"                      {rate:.0f} samples/s; sampling CPU {per:.0f} us/sample = {share:.2f} % "
                f"of one core{' (holding the GIL)' if arm == 'thread' else ' (another process)'}"
            )

    for arm in arms[1:]:
        s = Sampler(meter, mode=arm)
        s.start()
        for _ in range(200):
            s.boundary_read()
        lat = []
        for _ in range(3000):
            t = time.perf_counter()
            s.boundary_read()
            lat.append(time.perf_counter() - t)
        s.stop()
        med = statistics.median(lat) * 1e6
        print(
            f"boundary read ({arm} mode), all {len(meter.domains())} domains + CPU times: median {med:.1f} us "
            f"(p90 {statistics.quantiles(lat, n=10)[-1] * 1e6:.1f} us)  [target < 100 us]"
        )
    raw = []
    for _ in range(3000):
        t = time.perf_counter()
        meter.read_raw()
        raw.append(time.perf_counter() - t)
    print(f"counters alone (meter.read_raw): median {statistics.median(raw) * 1e6:.1f} us")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
