"""Benchmark: the OOI bootstrap for B = 10,000 over 8 families x 100 (goal_id, rep) pairs.

Prints, measured in this run (best of ``REPEATS``):

1. ours, stratified: resampling the 8 family strata and reading all 11 OOI scopes
   (8 families, ``reasoning``, ``tool``, ``overall``) with BCa intervals; target < 1 s;
2. ours, ``ooi_table``: the same through the goals-table path (pandas grouping included);
3. the comparison on the *same statistic* scipy can express: scipy has no stratified
   bootstrap, so both sides compute the unstratified paired BCa interval of
   OOI = (ΣE_a / ΣS_a) / (ΣE_l / ΣS_l) over all 800 pairs, B = 10,000
   (``scipy.stats.bootstrap(..., paired=True, vectorized=True, method="BCa")``),
   and the ratio scipy time / our time.

Run: ``.venv/bin/python benchmarks/bootstrap.py``
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy import stats

from alems.contracts import GOALS_REQUIRED, REASONING_FAMILIES, TOOL_FAMILIES
from alems.metrics import (
    MetricsConfig,
    bootstrap_scope,
    group_of,
    make_stratum,
    ooi_degenerate,
    ooi_stat,
    ooi_table,
    stratum_rng,
)

KNOWN_FAMILIES = REASONING_FAMILIES + TOOL_FAMILIES  # the eight slots of a study

B = 10_000
N_PAIRS = 100
REPEATS = 3
TARGET_S = 1.0


def simulate(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i, fam in enumerate(KNOWN_FAMILIES):
        d = rng.gamma(5.0, 0.2, N_PAIRS)
        e_l = d * rng.gamma(4.0, (10.0 + i) / 4.0, N_PAIRS)
        e_a = d * rng.gamma(4.0, (25.0 + i) / 4.0, N_PAIRS)
        s_l = rng.random(N_PAIRS) < 0.7
        s_a = rng.random(N_PAIRS) < 0.8
        out[fam] = np.column_stack([e_a, s_a, e_l, s_l]).astype(float)
    return out


def goals_frame(data: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for fam, v in data.items():
        for j, (e_a, s_a, e_l, s_l) in enumerate(v):
            for mode, e, s in (("agentic", e_a, s_a), ("linear", e_l, s_l)):
                rows.append((fam, mode, f"{fam}-{j}", 0, 1, bool(s), True, e, 0.0, "measured", ""))
    return pd.DataFrame(rows, columns=[*GOALS_REQUIRED, "energy_source", "flags"])


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def ours_stratified(data: dict[str, np.ndarray]) -> list:
    strata = {f: make_stratum(f, v, B, stratum_rng(0, f"ooi\0{f}")) for f, v in data.items()}
    scopes = {f: [f] for f in data}
    for g in ("reasoning", "tool"):
        scopes[g] = [f for f in data if group_of(f) == g]
    scopes["overall"] = list(data)
    return [bootstrap_scope([strata[f] for f in m], ooi_stat, ooi_degenerate, 0.95) for m in scopes.values()]


def ours_unstratified(pooled: np.ndarray):
    return bootstrap_scope(
        [make_stratum("all", pooled, B, stratum_rng(0, "all"))], ooi_stat, ooi_degenerate, 0.95
    )


def ratio(ea, sa, el, sl, axis=-1):
    return (ea.sum(axis) / sa.sum(axis)) / (el.sum(axis) / sl.sum(axis))


def scipy_unstratified(pooled: np.ndarray):
    return stats.bootstrap(
        tuple(pooled.T),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=B,
        confidence_level=0.95,
        method="BCa",
        rng=np.random.default_rng(0),
    )


def main() -> None:
    data = simulate()
    pooled = np.concatenate(list(data.values()))
    goals = goals_frame(data)

    t_strat, res = best_of(lambda: ours_stratified(data))
    t_table, _ = best_of(lambda: ooi_table(goals, MetricsConfig(bootstrap=B, seed=0)))
    t_ours, ours = best_of(lambda: ours_unstratified(pooled))
    t_scipy, ref = best_of(lambda: scipy_unstratified(pooled))

    overall = res[-1]
    print(f"B={B}, {len(data)} families x {N_PAIRS} pairs, best of {REPEATS}")
    print(
        f"ours, stratified, 11 OOI scopes (BCa):       {t_strat:7.3f} s   target < {TARGET_S:.1f} s: "
        f"{'OK' if t_strat < TARGET_S else 'MISSED'}"
    )
    print(f"ours, ooi_table from a goals table:          {t_table:7.3f} s")
    print(
        f"  overall OOI {overall.estimate:.4f} [{overall.ci_low:.4f}, {overall.ci_high:.4f}] ({overall.method})"
    )
    print("same statistic, unstratified paired BCa over all 800 pairs:")
    print(
        f"  ours                                       {t_ours:7.3f} s   "
        f"[{ours.ci_low:.4f}, {ours.ci_high:.4f}]"
    )
    ci = ref.confidence_interval
    print(f"  scipy.stats.bootstrap (paired, vectorized) {t_scipy:7.3f} s   [{ci.low:.4f}, {ci.high:.4f}]")
    print(f"  ratio scipy / ours: {t_scipy / t_ours:.1f}x")
    print(f"  ratio scipy (unstratified) / ours (stratified, 11 scopes): {t_scipy / t_strat:.1f}x")


if __name__ == "__main__":
    main()
