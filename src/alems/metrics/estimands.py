"""The statistics: EpG and OOI of totals, the pooled OOI estimands over families, and which
resamples are degenerate for each (the ``stat`` and ``degenerate`` arguments of
:func:`~alems.metrics.bootstrap.bootstrap_strata`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alems.contracts import POOLED_ESTIMANDS

FAMILY_ESTIMAND = "family"
"""The ``estimand`` of an ooi.csv family row (the family's own OOI)."""

Statistic = Callable[[np.ndarray], np.ndarray]
"""Totals (..., k) or per-stratum totals (..., S, k) -> one value per leading index."""


def epg_stat(totals: np.ndarray) -> np.ndarray:
    """EpG from totals (..., 2) = (Σ energy, Σ successes); ``inf`` with no success."""
    e, s = totals[..., 0], totals[..., 1]
    with np.errstate(all="ignore"):
        return np.where(s > 0, e / np.where(s > 0, s, 1.0), np.inf)


def epg_degenerate(totals: np.ndarray) -> np.ndarray:
    return totals[..., 1] <= 0


def ooi_stat(totals: np.ndarray) -> np.ndarray:
    """OOI from totals (..., 4) = (E_agentic, S_agentic, E_linear, S_linear).

    EpG(agentic) / EpG(linear) of each resample: ``inf`` when the agentic side has no
    success, ``0`` when only the linear side has none, ``nan`` when neither has one. Such
    totals are degenerate (:func:`ooi_degenerate`): the bootstrap drops those resamples
    and the tables leave such a point estimate undefined, so ``0``/``inf`` never become numbers.
    """
    a = epg_stat(totals[..., 0:2])
    lin = epg_stat(totals[..., 2:4])
    with np.errstate(all="ignore"):
        return a / lin


def ooi_degenerate(totals: np.ndarray) -> np.ndarray:
    return (totals[..., 1] <= 0) | (totals[..., 3] <= 0)


def _family_epgs(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-family EpG(agentic), EpG(linear) from per-family totals (..., S, 4)."""
    return epg_stat(t[..., 0:2]), epg_stat(t[..., 2:4])


def ratio_of_means_stat(t: np.ndarray) -> np.ndarray:
    """Mean EpG(agentic) over families / mean EpG(linear) over the same families (the paper's)."""
    a, lin = _family_epgs(t)
    with np.errstate(all="ignore"):
        return a.mean(axis=-1) / lin.mean(axis=-1)


def geomean_ooi_stat(t: np.ndarray) -> np.ndarray:
    """Geometric mean of the family OOIs (= geometric-mean EpG(agentic) / geometric-mean EpG(linear))."""
    a, lin = _family_epgs(t)
    with np.errstate(all="ignore"):
        return np.exp(np.log(a / lin).mean(axis=-1))


def pooled_ratio_stat(t: np.ndarray) -> np.ndarray:
    """EpG(agentic) / EpG(linear) of the families' pooled energy and successes."""
    return ooi_stat(t.sum(axis=-2))


def any_family_degenerate(t: np.ndarray) -> np.ndarray:
    """A resample in which some family has no success in a mode (its EpG is inf there)."""
    return np.asarray(((t[..., 1] <= 0) | (t[..., 3] <= 0)).any(axis=-1))


def pooled_degenerate(t: np.ndarray) -> np.ndarray:
    return ooi_degenerate(t.sum(axis=-2))


POOLED_STATS: dict[str, tuple[Statistic, Statistic]] = {
    "ratio_of_means": (ratio_of_means_stat, any_family_degenerate),
    "geomean_ooi": (geomean_ooi_stat, any_family_degenerate),
    "pooled_ratio": (pooled_ratio_stat, pooled_degenerate),
}


def pooled_epgs(estimand: str, t: np.ndarray) -> tuple[float, float]:
    """The EpG pair whose ratio is the estimand: means, geometric means or pooled EpGs."""
    if estimand == "pooled_ratio":
        s = t.sum(axis=0)
        return float(epg_stat(s[None, 0:2])[0]), float(epg_stat(s[None, 2:4])[0])
    a, lin = _family_epgs(t)
    with np.errstate(all="ignore"):
        if estimand == "geomean_ooi":
            return float(np.exp(np.log(a).mean())), float(np.exp(np.log(lin).mean()))
        return float(a.mean()), float(lin.mean())


def estimand_order(headline: str) -> list[str]:
    """The pooled estimands of a scope, headline first (the figures draw the first)."""
    return [headline, *(e for e in POOLED_ESTIMANDS if e != headline)]
