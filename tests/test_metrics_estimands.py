"""The statistics of :mod:`alems.metrics.estimands` on totals computed by hand.

Only scopes with successes in both modes are pinned here; what a resample without a
success maps to is the bootstrap's business (and may change), the flags that count such
resamples are pinned."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alems.metrics.estimands import (
    POOLED_STATS,
    any_family_degenerate,
    epg_degenerate,
    epg_stat,
    estimand_order,
    geomean_ooi_stat,
    ooi_degenerate,
    ooi_stat,
    pooled_degenerate,
    pooled_epgs,
    pooled_ratio_stat,
    ratio_of_means_stat,
)

# two families' totals (E_agentic, S_agentic, E_linear, S_linear):
# EpG agentic 60/3 = 20 and 90/2 = 45; EpG linear 10/2 = 5 and 120/2 = 60; OOIs 4 and 0.75
FAMILIES = np.array([[60.0, 3.0, 10.0, 2.0], [90.0, 2.0, 120.0, 2.0]])


def test_epg_and_ooi_of_totals():
    assert epg_stat(np.array([[10.0, 4.0], [9.0, 3.0]])).tolist() == [2.5, 3.0]
    assert ooi_stat(FAMILIES).tolist() == [4.0, 0.75]
    assert ooi_stat(FAMILIES[0]) == 4.0  # a single scope: no leading axis


def test_degenerate_marks_a_mode_without_success():
    assert epg_degenerate(np.array([[5.0, 0.0], [5.0, 1.0]])).tolist() == [True, False]
    t = np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    assert ooi_degenerate(t).tolist() == [True, True, False, True]


def test_the_pooled_statistics_by_hand():
    assert ratio_of_means_stat(FAMILIES) == pytest.approx((20 + 45) / 2 / ((5 + 60) / 2))
    assert geomean_ooi_stat(FAMILIES) == pytest.approx(math.sqrt(4.0 * 0.75))
    assert pooled_ratio_stat(FAMILIES) == pytest.approx((150 / 5) / (130 / 4))
    # with a leading resample axis: one value per resample
    both = np.stack([FAMILIES, FAMILIES[::-1]])
    assert geomean_ooi_stat(both).shape == (2,) and np.allclose(geomean_ooi_stat(both), math.sqrt(3.0))
    assert set(POOLED_STATS) == {"ratio_of_means", "geomean_ooi", "pooled_ratio"}
    assert POOLED_STATS["pooled_ratio"] == (pooled_ratio_stat, pooled_degenerate)
    assert POOLED_STATS["ratio_of_means"] == (ratio_of_means_stat, any_family_degenerate)
    assert POOLED_STATS["geomean_ooi"] == (geomean_ooi_stat, any_family_degenerate)


def test_a_family_without_a_linear_success_is_degenerate_for_the_means_not_for_the_pool():
    t = np.array([[[60.0, 3.0, 10.0, 0.0], [90.0, 2.0, 120.0, 2.0]], FAMILIES])
    assert any_family_degenerate(t).tolist() == [True, False]
    assert pooled_degenerate(t).tolist() == [False, False]
    none = np.array([[[60.0, 0.0, 10.0, 2.0], [90.0, 0.0, 120.0, 2.0]]])
    assert pooled_degenerate(none).tolist() == [True] and any_family_degenerate(none).tolist() == [True]
    # one success is a success; a single scope (no resample axis) gives one flag
    single = np.array([[60.0, 1.0, 10.0, 1.0], [90.0, 2.0, 120.0, 2.0]])
    assert not any_family_degenerate(single) and not pooled_degenerate(single)


def test_a_mode_without_success_is_computed_silently_even_where_numpy_would_raise():
    """The statistics divide under their own error state: a caller that turned numpy
    warnings into errors still gets values (the finite ones pinned here)."""
    t = np.array([[60.0, 3.0, 10.0, 2.0], [90.0, 0.0, 120.0, 0.0]])
    with np.errstate(all="raise"):
        assert epg_stat(t[:, 0:2])[0] == 20.0
        assert ooi_stat(t)[0] == 4.0
        ratio_of_means_stat(t)
        geomean_ooi_stat(t)
        assert pooled_epgs("pooled_ratio", t) == pytest.approx((150.0 / 3, 130.0 / 2))
        pooled_epgs("ratio_of_means", t)
        pooled_epgs("geomean_ooi", t)


def test_the_epg_pair_of_each_estimand():
    assert pooled_epgs("ratio_of_means", FAMILIES) == pytest.approx((32.5, 32.5))
    assert pooled_epgs("geomean_ooi", FAMILIES) == pytest.approx((math.sqrt(20 * 45), math.sqrt(5 * 60)))
    assert pooled_epgs("pooled_ratio", FAMILIES) == pytest.approx((150 / 5, 130 / 4))


def test_the_headline_comes_first():
    assert estimand_order("geomean_ooi") == ["geomean_ooi", "ratio_of_means", "pooled_ratio"]
    assert estimand_order("pooled_ratio") == ["pooled_ratio", "ratio_of_means", "geomean_ooi"]
