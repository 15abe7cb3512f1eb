"""Coverage of the intervals the tables report, through the tables' own code path.

``benchmarks/coverage.py`` simulates whole studies whose true OOIs are known and runs the
real table code (:func:`alems.metrics.ooi_from_executions`, what ``alems metrics`` and the
workflow call) on each. This test runs the README's scenarios at the README's configuration
(500 studies each, B = 2,000, seed 0) and asserts the README's table, then that the family
and headline (``ratio_of_means``) coverage at the paper's scale lies in a binomial band
around 0.95. 67 s of CPU in all (20 s for the paper scale); marked slow, which `make test`
still runs.
"""

from __future__ import annotations

import math

import pytest
from benchmark_module import load_benchmark

STUDIES, BOOTSTRAP, SEED = 500, 2000, 0


def summary(out: dict) -> dict[str, float]:
    """The README's columns from :func:`coverage.run`'s counts."""
    fam = out["fam"]
    hit, n = sum(v[0] for v in fam.values()), sum(v[1] for v in fam.values())
    per = [v[0] / v[1] for v in fam.values() if v[1]]
    row = {
        "rep": n / (STUDIES * len(fam)),
        "n_fam": n,
        "fam": hit / n if n else math.nan,
        "fam_min": min(per, default=math.nan),
        "fam_max": max(per, default=math.nan),
        "simult": out["simult"][0] / out["simult"][1] if out["simult"][1] else math.nan,
    }
    for estimand, (h, m) in out["pooled"].items():
        row[estimand] = h / m if m else math.nan
        row[f"{estimand}_rep"] = m / STUDIES
    return row


@pytest.fixture(scope="module")
def coverage():
    return load_benchmark("coverage")


def run(coverage, name: str) -> dict[str, float]:
    (scenario,) = [s for s in coverage.SCENARIOS if s.name == name]
    return summary(coverage.run(scenario, STUDIES, BOOTSTRAP, SEED))


def band(p: float, n: int, sds: float = 3.0) -> tuple[float, float]:
    half = sds * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


@pytest.mark.slow
def test_paper_scale_coverage_is_nominal_through_the_tables(coverage):
    """README, "Statistics": "paper scale, 40 goals × 5 reps | 1.00 | **0.950** (0.936–0.968) |
    **0.938** | **0.970** | **0.970** | **0.952**", and "Binomial standard error: about 0.01 per
    pooled cell, 0.003 for the family column"."""
    r = run(coverage, "paper 40x5")
    assert round(r["rep"], 2) == 1.00 and r["n_fam"] == 8 * STUDIES
    got = [r["fam"], r["fam_min"], r["fam_max"], r["simult"]]
    got += [r["ratio_of_means"], r["geomean_ooi"], r["pooled_ratio"]]
    assert [round(x, 3) for x in got] == [0.950, 0.936, 0.968, 0.938, 0.970, 0.970, 0.952]
    # the binomial band around 0.95 (3 standard errors), family rows and the headline estimand
    lo, hi = band(0.95, r["n_fam"])
    assert lo <= r["fam"] <= hi
    lo, hi = band(0.95, STUDIES)
    assert lo <= r["ratio_of_means"] <= hi and r["ratio_of_means_rep"] == 1.0
    assert round(math.sqrt(0.95 * 0.05 / STUDIES), 2) == 0.01
    assert round(math.sqrt(0.95 * 0.05 / (8 * STUDIES)), 3) == 0.003


@pytest.mark.slow
def test_the_smaller_scales_and_the_old_bootstrap_as_the_readme_states(coverage):
    """README, "Statistics", the other rows: "4 goals × 1 rep, forced to min_goals 1 | 0.27 |
    0.873 (0.765–0.914) | 0.744 | no interval | no interval | 0.956"; "10 goals × 1 rep | 0.82 |
    0.924 (0.912–0.939) | 0.844 | 0.971 (rep. 0.07) | 0.971 (rep. 0.07) | 0.936" (the new rule:
    degenerate resamples give no value); "resampling
    (goal, rep) pairs (the old bootstrap) | 1.00 | 0.671 (0.628–0.708) | 0.224 | 0.652 | 0.684 |
    0.648"."""
    r = run(coverage, "default 4x1 (min_goals 1)")
    got = [r["rep"], r["fam"], r["fam_min"], r["fam_max"], r["simult"], r["pooled_ratio"]]
    assert [round(x, 3) for x in got] == [0.27, 0.873, 0.765, 0.914, 0.744, 0.956]
    assert r["ratio_of_means_rep"] == 0.0 and r["geomean_ooi_rep"] == 0.0
    r = run(coverage, "min_goals 10x1")
    got = [r["fam"], r["fam_min"], r["fam_max"], r["simult"], r["ratio_of_means"], r["geomean_ooi"]]
    assert round(r["rep"], 2) == 0.82
    assert [round(x, 3) for x in [*got, r["pooled_ratio"]]] == [
        0.924,
        0.912,
        0.939,
        0.844,
        0.971,
        0.971,
        0.936,
    ]
    assert round(r["ratio_of_means_rep"], 2) == 0.07 and round(r["geomean_ooi_rep"], 2) == 0.07
    r = run(coverage, "paper 40x5, pairs (old)")
    got = [r["fam"], r["fam_min"], r["fam_max"], r["simult"], r["ratio_of_means"], r["geomean_ooi"]]
    assert [round(x, 3) for x in [*got, r["pooled_ratio"]]] == [
        0.671,
        0.628,
        0.708,
        0.224,
        0.652,
        0.684,
        0.648,
    ]
