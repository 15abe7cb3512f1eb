"""Counters that update less often than they are read: reconstruct energy from update instants.

An NVML energy counter (``nvmlDeviceGetTotalEnergyConsumption``) moves about once every
100 ms (80-100 ms on H100/H200), while the sampler reads it every 10 ms. The samples are a
staircase: ten reads of one value, then a jump. Differencing that staircase at window
edges gives 0, 8, 16 ... J for a 130 ms window at 80 W, whatever the truth (10.4 J).

The reconstruction, per stepwise domain:

* an **update instant** is a sample whose value differs from the previous sample's; the
  update happened between those two reads, and is placed at their midpoint ``tau_k``
  (error at most half the read spacing, the same at both edges of a window, so it cancels
  at constant power);
* the counter value read there, ``v_k``, is the energy up to ``tau_k``;
* cumulative energy is the piecewise-linear curve through the points ``(tau_k, v_k)``:
  constant power between updates, which is what the counter itself reports;
* before the first and after the last update it is extrapolated at the nearest segment's
  power, clamped to what the staircase proves (before the first update the energy lies
  between the first two values read). Those instants are **unbracketed**: the sampler
  avoids them by reading until the first update after its first read and after its last
  window closes (:meth:`alems.energy.sampler.Sampler.start` / ``stop``), and accounting
  flags any window edge that still falls outside ``[tau_1, tau_K]``.

A domain is stepwise when its ``Domain.info`` says ``stepwise: true`` (the NVML meter sets
it for energy-counter GPUs); older samples files without that key are recognised by
``kind == "gpu"`` with ``method == "energy counter"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from alems.energy.base import Domain


def is_stepwise(domain: Domain) -> bool:
    """True when ``domain``'s counter updates in steps coarser than the sampling (NVML energy)."""
    info = domain.info if isinstance(domain.info, Mapping) else {}
    if "stepwise" in info:
        return bool(info["stepwise"])
    return domain.kind == "gpu" and info.get("method") == "energy counter"


def stepwise_keys(domains: Iterable[Domain]) -> list[str]:
    return [d.key for d in domains if is_stepwise(d)]


def update_period_s(domain: Domain, default: float = 0.1) -> float:
    info = domain.info if isinstance(domain.info, Mapping) else {}
    p = info.get("update_period_s")
    return float(p) if isinstance(p, (int, float)) and p > 0 else default


@dataclass(frozen=True)
class Reconstruction:
    """A stepwise counter reconstructed at the sample instants.

    ``values``: cumulative joules at each sample time ``t`` (same length);
    ``knots_t`` / ``knots_j``: the update instants and the values read there;
    ``span``: ``(tau_1, tau_K)``, the interval where the curve is bracketed by updates
    (``None`` with fewer than two updates, where ``values`` is the raw staircase).
    """

    values: np.ndarray
    knots_t: np.ndarray
    knots_j: np.ndarray
    span: tuple[float, float] | None


def update_instants(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(tau, v)``: midpoints between the two reads around each change, and the new value.

    ``t`` must be sorted; rows with equal ``t`` are allowed (boundary reads).
    """
    t = np.asarray(t, dtype=float)
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return np.empty(0), np.empty(0)
    changed = np.flatnonzero(v[1:] != v[:-1]) + 1
    tau = 0.5 * (t[changed - 1] + t[changed])
    return tau, v[changed]


def reconstruct(t: np.ndarray, values: np.ndarray) -> Reconstruction:
    """Piecewise-linear cumulative energy through the update instants, at the times ``t``."""
    t = np.asarray(t, dtype=float)
    v = np.asarray(values, dtype=float)
    tau, kv = update_instants(t, v)
    if len(tau) < 2:
        return Reconstruction(v.copy(), tau, kv, None)
    # merge knots at one instant (two changes between reads at equal t): keep the last value
    keep = np.append(tau[1:] != tau[:-1], True)
    tau, kv = tau[keep], kv[keep]
    if len(tau) < 2:
        return Reconstruction(v.copy(), tau, kv, None)
    out = np.interp(t, tau, kv)
    before = t < tau[0]
    if before.any():
        slope = (kv[1] - kv[0]) / (tau[1] - tau[0])
        guess = kv[0] - slope * (tau[0] - t[before])
        # before the first update the energy is at least the first value read
        out[before] = np.clip(guess, v[0], kv[0])
    after = t > tau[-1]
    if after.any():
        slope = (kv[-1] - kv[-2]) / (tau[-1] - tau[-2])
        out[after] = kv[-1] + slope * (t[after] - tau[-1])
    return Reconstruction(np.maximum.accumulate(out), tau, kv, (float(tau[0]), float(tau[-1])))


def reconstruct_power(t: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean power in the bins ``edges[i]..edges[i+1]`` of the reconstructed counter (W)."""
    rec = reconstruct(t, values)
    e = np.interp(edges, np.asarray(t, dtype=float), rec.values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diff(e) / np.diff(edges)


def energy_between(t: np.ndarray, values: np.ndarray, t0: float, t1: float) -> tuple[float, bool]:
    """Reconstructed energy of one stepwise counter over ``[t0, t1]`` and whether both edges
    lie between update instants (bracketed)."""
    rec = reconstruct(t, values)
    e0, e1 = np.interp([t0, t1], np.asarray(t, dtype=float), rec.values)
    inside = rec.span is not None and rec.span[0] <= t0 and t1 <= rec.span[1]
    return float(e1 - e0), bool(inside)
