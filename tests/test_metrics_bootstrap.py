"""The bootstrap engine: coverage on simulated data with a known ratio (agreement with
scipy.stats.bootstrap, to 1 % of the width, is in ``test_metrics_reference.py``).

The coverage check holds for its own case only: 40 independent units per family, success
rates 0.6-0.9. Coverage of the tables' intervals across study sizes, success rates and
reps that share goal effects is measured by ``benchmarks/coverage.py`` (README table)."""

from __future__ import annotations

import numpy as np

from alems.metrics import bootstrap_scope, make_stratum, ooi_degenerate, ooi_stat, stratum_rng

# two families: (mean linear J, linear success p, mean agentic J, agentic success p)
FAMILIES = ((10.0, 0.7, 25.0, 0.8), (20.0, 0.6, 30.0, 0.9))
TRUE_FAMILY0 = (25.0 / 0.8) / (10.0 / 0.7)
TRUE_OVERALL = ((25.0 + 30.0) / (0.8 + 0.9)) / ((10.0 + 20.0) / (0.7 + 0.6))


def simulate(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Per family, n pairs (E_agentic, S_agentic, E_linear, S_linear); a shared goal difficulty
    (mean 1) couples the two modes, as real pairs are."""
    out = []
    for mu_l, p_l, mu_a, p_a in FAMILIES:
        d = rng.gamma(5.0, 1 / 5.0, n)
        e_l = d * rng.gamma(4.0, mu_l / 4.0, n)
        e_a = d * rng.gamma(4.0, mu_a / 4.0, n)
        out.append(np.column_stack([e_a, rng.random(n) < p_a, e_l, rng.random(n) < p_l]).astype(float))
    return out


def test_bca_coverage_is_close_to_nominal_on_data_with_a_known_ratio():
    rng = np.random.default_rng(2024)
    trials, n, b = 200, 40, 999
    hits_family = hits_overall = 0
    methods = set()
    for trial in range(trials):
        data = simulate(rng, n)
        strata = [make_stratum(f"f{i}", v, b, stratum_rng(trial, f"f{i}")) for i, v in enumerate(data)]
        fam = bootstrap_scope(strata[:1], ooi_stat, ooi_degenerate, 0.95)
        overall = bootstrap_scope(strata, ooi_stat, ooi_degenerate, 0.95)
        hits_family += fam.ci_low <= TRUE_FAMILY0 <= fam.ci_high
        hits_overall += overall.ci_low <= TRUE_OVERALL <= overall.ci_high
        methods |= {fam.method, overall.method}
    assert methods == {"BCa"}
    # binomial sd at 95 % over 200 trials is 1.5 points; allow about +-3 sd
    assert 0.90 <= hits_family / trials <= 0.99, hits_family
    assert 0.90 <= hits_overall / trials <= 0.99, hits_overall
