"""The GPU-host checks behind ``benchmarks/gpu_check.sh``; prints numbers and PASS/FAIL lines.

``crosscheck``: ``alems measure --meter nvml`` of ``sleep 3`` against direct NVML reads
taken around it by a 2 ms poller in this process, idle and under a bf16 matmul load that
runs before, during and after the window (steady power, so mean powers compare). The direct
power is the counter's energy between its first and last update instants seen by the
poller, divided by the time between them: no reconstruction involved.

``summary``: after the smoke study, each cell's EpG in every layer (``epg_layers.csv``),
the reconstructed gpu-0 power over the first goal pair (figure 4's bins) against the
counter's raw staircase, and the idle baseline.

Targets (issue 12): no cell with negative total or attributed EpG; a flat reconstructed
idle line; alems and direct NVML within 3 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _poll(nv, handle, stop: threading.Event, rows: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        rows.append((time.monotonic(), int(nv.nvmlDeviceGetTotalEnergyConsumption(handle))))
        time.sleep(0.002)


def _direct_power(rows: list[tuple[float, int]]) -> float:
    t = np.array([r[0] for r in rows])
    e = np.array([r[1] for r in rows], dtype=float) / 1000.0
    ch = np.flatnonzero(e[1:] != e[:-1]) + 1
    tau = 0.5 * (t[ch - 1] + t[ch])
    if len(tau) < 2:
        return float("nan")
    return float((e[ch[-1]] - e[ch[0]]) / (tau[-1] - tau[0]))


def _load(stop: threading.Event) -> None:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    while not stop.is_set():
        for _ in range(20):
            a = (a @ b).clamp_(-1, 1)
        torch.cuda.synchronize()


def crosscheck(loaded: bool) -> dict[str, float]:
    import pynvml as nv

    from alems.energy.measure import measure_command

    nv.nvmlInit()
    h = nv.nvmlDeviceGetHandleByIndex(0)
    stop_poll, stop_load = threading.Event(), threading.Event()
    rows: list[tuple[float, int]] = []
    load = threading.Thread(target=_load, args=(stop_load,), daemon=True) if loaded else None
    if load is not None:
        load.start()
        time.sleep(2.0)  # ramp to steady power
    poller = threading.Thread(target=_poll, args=(nv, h, stop_poll, rows), daemon=True)
    poller.start()
    time.sleep(0.3)
    res = measure_command(["sleep", "3"], meter="nvml")
    time.sleep(0.3)
    stop_poll.set()
    poller.join()
    stop_load.set()
    if load is not None:
        load.join()
    nv.nvmlShutdown()
    p_alems = res.energy_j["gpu-0"] / res.duration_s
    p_direct = _direct_power(rows)
    return {
        "alems_w": p_alems,
        "direct_w": p_direct,
        "ratio": p_alems / p_direct,
        "duration_s": res.duration_s,
    }


def summary(results: Path, figure: Path | None = None) -> list[str]:
    from alems.energy.sampler import read_samples
    from alems.figures import binned_power

    fails: list[str] = []
    layers = pd.read_csv(results / "tables" / "epg_layers.csv", keep_default_na=False, na_values=[""])
    print("\nEpG per cell and layer (J per successful goal):")
    cols = [
        "energy_layer",
        "family",
        "mode",
        "successes",
        "executions",
        "epg_j",
        "epg_ci_low",
        "epg_ci_high",
        "energy_source",
        "flags",
    ]
    print(layers[[c for c in cols if c in layers.columns]].to_string(index=False))
    for layer in ("total", "attributed"):
        sub = layers[layers["energy_layer"] == layer]
        neg = sub[pd.to_numeric(sub["epg_j"], errors="coerce") < 0]
        if len(neg):
            fails.append(
                f"negative {layer} EpG in {len(neg)} row(s): {list(neg['family'] + '/' + neg['mode'])}"
            )
    base = json.loads((results / "baseline" / "idle.json").read_text())
    print(
        f"\nidle baseline: {json.dumps(base.get('power_w'))} W, status {base.get('status')}, "
        f"host_util {base.get('host_util')}"
    )
    runs = sorted((results / "runs").glob("*/rep0/samples.parquet"))
    if not runs:
        return [*fails, "no samples.parquet under results/runs"]
    df, domains = read_samples(str(runs[0]))
    gpus = [d.key for d in domains if d.kind == "gpu"]
    if not gpus:
        return [*fails, f"no GPU domain in {runs[0]} (meter auto found {[d.key for d in domains]})"]
    events = [json.loads(x) for x in (runs[0].parent / "events.jsonl").read_text().splitlines() if x.strip()]
    first = [e for e in events if e["goal_id"] == events[0]["goal_id"]]
    t0, t1 = min(e["t"] for e in first), max(e["t"] for e in first)
    dt = max((t1 - t0) / 400.0, 0.02)
    for key in gpus:
        _, rec = binned_power(df, [key], t0, t1, dt, stepwise=[key])
        _, raw = binned_power(df, [key], t0, t1, dt)
        rec, raw = rec[np.isfinite(rec)], raw[np.isfinite(raw)]
        q = np.percentile(rec, [1, 50, 99])
        print(
            f"\n{key} over the first goal pair ({t1 - t0:.2f} s, {dt * 1000:.0f} ms bins, {runs[0].parent}):"
        )
        print(
            f"  reconstructed power: median {q[1]:.1f} W, 1-99 % {q[0]:.1f}-{q[2]:.1f} W, "
            f"min {rec.min():.1f} max {rec.max():.1f}"
        )
        print(
            f"  raw staircase:       median {np.median(raw):.1f} W, min {raw.min():.1f} max {raw.max():.1f}"
        )
        if not (q[2] - q[0] <= 0.15 * q[1]):
            fails.append(
                f"{key}: reconstructed idle power not flat (1-99 % spread {q[2] - q[0]:.1f} W at {q[1]:.1f} W)"
            )
    if figure is not None:
        _figure4(results, runs[0].parent, figure)
    return fails


def _figure4(results: Path, run: Path, target: Path) -> None:
    """Draw figure 4 of ``run`` to ``target`` where matplotlib is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed here: figure 4 not drawn (its line is checked above)")
        return
    import tempfile

    from alems.figures import FigureInputs, fig_timeline

    t = results / "tables"
    inp = FigureInputs.load(
        goals=t / "goals.csv",
        epg=t / "epg.csv",
        ooi=t / "ooi.csv",
        baseline=results / "baseline" / "idle.json",
        samples=run / "samples.parquet",
        events=run / "events.jsonl",
        timeline_family=run.parent.name,
    )
    with tempfile.TemporaryDirectory() as d:
        for p in fig_timeline(inp, Path(d)):
            if p.suffix == ".png":
                target.write_bytes(p.read_bytes())
    print(f"figure 4: {target}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["crosscheck", "summary"])
    ap.add_argument("--results", default="results")
    ap.add_argument(
        "--figure", default=None, help="also draw figure 4 here (PNG) where matplotlib is installed"
    )
    args = ap.parse_args()
    if args.what == "summary":
        fails = summary(Path(args.results), Path(args.figure) if args.figure else None)
    else:
        fails = []
        for loaded in (False, True):
            r = crosscheck(loaded)
            print(
                f"NVML cross-check, {'bf16 matmul load' if loaded else 'idle'}: alems {r['alems_w']:.2f} W, "
                f"direct {r['direct_w']:.2f} W, ratio {r['ratio']:.4f} ({r['duration_s']:.2f} s window)"
            )
            if not abs(r["ratio"] - 1.0) <= 0.03:
                fails.append(
                    f"alems/direct NVML power ratio {r['ratio']:.4f} ({'load' if loaded else 'idle'})"
                )
    for f in fails:
        print(f"FAIL: {f}")
    print("PASS" if not fails else f"{len(fails)} check(s) failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
