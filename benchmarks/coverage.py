"""Benchmark: coverage of the OOI intervals on simulated studies whose true OOI is known.

Each scenario simulates ``--studies`` (default 500) whole studies of 8 families and
runs the real table code (:func:`alems.metrics.ooi_from_executions`) on each, then
counts how often the reported intervals contain the true value. It prints, per
scenario:

- ``fam rep.``: the share of family rows that got an interval (the others are
  undefined, i.e. a mode without success, or flagged ``insufficient_data``);
- ``fam cov``: coverage of those family intervals (all families together), and the
  lowest and highest coverage of a single family;
- ``simult``: the share of studies in which every reported Bonferroni-adjusted family
  interval (``ci_low_adj``/``ci_high_adj``) covers its family's truth at once;
- ``overall <estimand>``: coverage of the overall pooled interval of each estimand
  (``rep.`` in brackets: the share of studies that reported one);
- ``at 0/inf``: how many of the reported intervals (all rows) have an endpoint at 0 or
  ``inf``, out of how many (an OOI of 0 or ``inf`` is impossible once both modes succeed:
  such an endpoint comes from degenerate resamples).

The data-generating process (per family f, mode m, goal g, rep r):

- goal effects shared by all reps: an energy factor ``a_g ~ lognormal(-s^2/2, s)``
  (mean 1, s = 0.4) shared by both modes, a mode-specific one ``c_gm`` (the same with
  s = 0.3: a goal's plan may be long or short) and a success shift
  ``b_g ~ N(0, 2^2)`` on the logit scale shared by both modes;
- energy ``E = mu_fm * a_g * c_gm * lognormal(-0.15^2/2, 0.15)`` (run-to-run noise);
- success: rep 0 draws ``S ~ Bernoulli(logistic(logit(p_fm) + b_g))``; every later rep
  repeats the goal's rep-0 outcome with probability 0.8 and draws afresh otherwise (at
  temperature 0 reps mostly agree), so each rep is still Bernoulli with the same
  probability; S is independent of E given the goal;
- linear success rates ``p_fl`` run from 0.2 to 0.9 across families, agentic ones are
  the same shifted by +-0.05; energy scales differ by a factor of 20 across families
  and agentic costs 2x-6x linear.

So EpG_fm = E[E] / E[S] = mu_fm / pi_fm with pi_fm = E[logistic(logit p_fm + b)]
(Gauss-Hermite quadrature), the family OOI is EpG_fa / EpG_fl, and the pooled
estimands follow from the family EpGs (``ratio_of_means``: mean over families;
``geomean_ooi``: geometric mean of the OOIs; ``pooled_ratio``: pooled means and
success probabilities). A pooled estimand's truth is taken over the families the
study included (those whose OOI was defined).

Scenarios: the default config's scale (4 goals x 1 rep; run with ``min_goals`` 1 to
see what those intervals would claim, since the default ``min_goals`` of 10 reports
none), ``min_goals``'s scale (10 x 1), the paper config's scale (40 x 5), and the paper
scale resampled the old way, one unit per ``(goal, rep)`` pair (pseudo-replication).
A last scenario scales every success probability by 0.3 (linear 0.06-0.27) at 30 goals:
modes with a handful of successes, where degenerate resamples (a mode without success) are
common; it checks the rule for them (they give no value, and no interval endpoint).
The target is 0.93-0.97 at the paper's scale; with 500 studies the binomial standard
error of a 0.95 coverage is about 0.01 (0.003 for the family rows, 4,000 intervals).

Run: ``.venv/bin/python benchmarks/coverage.py [--studies 500] [--bootstrap 2000]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from alems.contracts import POOLED_ESTIMANDS, REASONING_FAMILIES, TOOL_FAMILIES
from alems.metrics import MetricsConfig, ooi_from_executions

KNOWN_FAMILIES = REASONING_FAMILIES + TOOL_FAMILIES  # the eight slots of a study

ENERGY_SD = 0.4  # goal-level energy factor (log sd)
SUCCESS_SD = 2.0  # goal-level success shift (logit sd): reps of a goal mostly agree
NOISE_SD = 0.15  # run-to-run energy noise (log sd)
MODE_SD = 0.3  # mode-specific goal energy factor (log sd)
REPEAT = 0.8  # probability that a later rep repeats the goal's rep-0 outcome
P_LINEAR = np.linspace(0.2, 0.9, len(KNOWN_FAMILIES))
P_AGENTIC = np.clip(P_LINEAR + np.tile([0.05, -0.05], len(KNOWN_FAMILIES) // 2), 0.05, 0.95)
MU_LINEAR = np.geomspace(3.0, 60.0, len(KNOWN_FAMILIES))
MU_AGENTIC = MU_LINEAR * np.linspace(2.0, 6.0, len(KNOWN_FAMILIES))[::-1]


@dataclass(frozen=True)
class Scenario:
    name: str
    goals: int
    reps: int
    min_goals: int
    pairs_as_units: bool = False  # the old bootstrap: every (goal, rep) its own unit
    p_scale: float = 1.0  # success probabilities scaled by this (few successes: degenerate resamples)


SCENARIOS = (
    Scenario("default 4x1 (min_goals 1)", 4, 1, 1),
    Scenario("min_goals 10x1", 10, 1, 10),
    Scenario("paper 40x5", 40, 5, 10),
    Scenario("paper 40x5, pairs (old)", 40, 5, 10, pairs_as_units=True),
    Scenario("low success 30x1 (p x0.3)", 30, 1, 10, p_scale=0.3),
)


def mean_success(p: np.ndarray) -> np.ndarray:
    """E[logistic(logit p + b)], b ~ N(0, SUCCESS_SD^2), by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return (expit(logit(p)[:, None] + SUCCESS_SD * x[None, :]) * w).sum(axis=1) / w.sum()


@dataclass(frozen=True)
class Truth:
    """The true family EpGs and success probabilities of a scenario's data-generating process."""

    pi_linear: np.ndarray
    pi_agentic: np.ndarray

    @classmethod
    def of(cls, sc: Scenario) -> Truth:
        return cls(mean_success(P_LINEAR * sc.p_scale), mean_success(P_AGENTIC * sc.p_scale))

    def family(self) -> dict[str, float]:
        ooi = (MU_AGENTIC / self.pi_agentic) / (MU_LINEAR / self.pi_linear)
        return dict(zip(KNOWN_FAMILIES, ooi, strict=True))

    def pooled(self, estimand: str, idx: list[int]) -> float:
        epg_a, epg_l = MU_AGENTIC / self.pi_agentic, MU_LINEAR / self.pi_linear
        if estimand == "ratio_of_means":
            return float(epg_a[idx].mean() / epg_l[idx].mean())
        if estimand == "geomean_ooi":
            return float(np.exp(np.log(epg_a[idx] / epg_l[idx]).mean()))
        pooled_a = MU_AGENTIC[idx].sum() / self.pi_agentic[idx].sum()
        return float(pooled_a / (MU_LINEAR[idx].sum() / self.pi_linear[idx].sum()))


def simulate(sc: Scenario, rng: np.random.Generator) -> pd.DataFrame:
    """One study as an executions frame (what :func:`alems.metrics.executions` returns)."""
    n_f, n_g, n_r = len(KNOWN_FAMILIES), sc.goals, sc.reps
    a = rng.lognormal(-(ENERGY_SD**2) / 2, ENERGY_SD, (n_f, n_g, 1))
    b = rng.normal(0.0, SUCCESS_SD, (n_f, n_g, 1))
    frames = []
    modes = (("linear", MU_LINEAR, P_LINEAR * sc.p_scale), ("agentic", MU_AGENTIC, P_AGENTIC * sc.p_scale))
    for mode, mu, p in modes:
        c = rng.lognormal(-(MODE_SD**2) / 2, MODE_SD, (n_f, n_g, 1))
        e = mu[:, None, None] * a * c * rng.lognormal(-(NOISE_SD**2) / 2, NOISE_SD, (n_f, n_g, n_r))
        s = rng.random((n_f, n_g, n_r)) < expit(logit(p)[:, None, None] + b)
        repeat = rng.random((n_f, n_g, n_r)) < REPEAT
        repeat[:, :, 0] = False
        s = np.where(repeat, s[:, :, :1], s)
        f_idx, g_idx, r_idx = np.meshgrid(np.arange(n_f), np.arange(n_g), np.arange(n_r), indexing="ij")
        goal = np.char.add("g", g_idx.ravel().astype(str))
        if sc.pairs_as_units:
            goal = np.char.add(np.char.add(goal, "r"), r_idx.ravel().astype(str))
        frames.append(
            pd.DataFrame(
                {
                    "family": np.asarray(KNOWN_FAMILIES)[f_idx.ravel()],
                    "mode": mode,
                    "goal_id": goal,
                    "rep": r_idx.ravel(),
                    "energy_j": e.ravel(),
                    "success": s.ravel(),
                    "attempts": 1,
                    "low_coverage": 0,
                    "energy_source": "modeled",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def covers(lo: float, hi: float, truth: float) -> bool:
    return bool(lo <= truth <= hi)


def run(sc: Scenario, studies: int, bootstrap: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng([seed, SCENARIOS.index(sc)])
    cfg = MetricsConfig(bootstrap=bootstrap, seed=seed, min_goals=sc.min_goals)
    truth = Truth.of(sc)
    true_family = truth.family()
    fam_hits = {f: [0, 0] for f in KNOWN_FAMILIES}  # [covered, reported]
    simult = [0, 0]
    pooled = {e: [0, 0] for e in POOLED_ESTIMANDS}
    at_limit = [0, 0]  # [reported intervals with an endpoint at 0 or inf, reported intervals]
    for k in range(studies):
        ooi = ooi_from_executions(simulate(sc, rng), MetricsConfig(**{**cfg.__dict__, "seed": seed + k}))
        fam = ooi[ooi["estimand"] == "family"]
        shown = ooi[np.isfinite(ooi["ci_low"]) | np.isinf(ooi["ci_high"])]
        at_limit[0] += int(((shown["ci_low"] <= 0) | np.isinf(shown["ci_high"])).sum())
        at_limit[1] += len(shown)
        all_cover, any_adj = True, False
        for r in fam.itertuples():
            if np.isfinite(r.ci_low):
                fam_hits[r.scope][1] += 1
                fam_hits[r.scope][0] += covers(r.ci_low, r.ci_high, true_family[r.scope])
            if np.isfinite(r.ci_low_adj):
                any_adj = True
                all_cover &= covers(r.ci_low_adj, r.ci_high_adj, true_family[r.scope])
        if any_adj:
            simult[1] += 1
            simult[0] += all_cover
        for r in ooi[(ooi["scope"] == "overall") & (ooi["estimand"] != "family")].itertuples():
            if np.isfinite(r.ci_low):
                excluded = {f.split(":", 1)[1] for f in str(r.flags).split(";") if f.startswith("excluded:")}
                idx = [i for i, f in enumerate(KNOWN_FAMILIES) if f not in excluded]
                pooled[r.estimand][1] += 1
                pooled[r.estimand][0] += covers(r.ci_low, r.ci_high, truth.pooled(r.estimand, idx))
    return {"fam": fam_hits, "simult": simult, "pooled": pooled, "at_limit": at_limit}


def share(hit: int, n: int) -> str:
    return f"{hit / n:.3f}" if n else "  -  "


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=500)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="run only the scenarios whose name contains this text")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"{args.studies} simulated studies per scenario, 8 families, B={args.bootstrap}, 95 % intervals")
    head = f"{'scenario':28} {'fam rep.':>8} {'fam cov':>8} {'(min-max)':>13} {'simult':>7}"
    head += "".join(f" {'overall ' + e:>22}" for e in POOLED_ESTIMANDS) + f" {'at 0/inf':>9}"
    print(head)
    for sc in (sc for sc in SCENARIOS if args.only in sc.name):
        t1 = time.perf_counter()
        out = run(sc, args.studies, args.bootstrap, args.seed)
        fam = out["fam"]
        hit, n = sum(v[0] for v in fam.values()), sum(v[1] for v in fam.values())
        per = [v[0] / v[1] for v in fam.values() if v[1]]
        rng_txt = f"({min(per):.3f}-{max(per):.3f})" if per else "(-)"
        line = f"{sc.name:28} {n / (args.studies * len(fam)):8.3f} {share(hit, n):>8} {rng_txt:>13}"
        line += f" {share(*out['simult']):>7}"
        for e in POOLED_ESTIMANDS:
            h, m = out["pooled"][e]
            line += f" {share(h, m) + f' (rep. {m / args.studies:.2f})':>22}"
        line += f" {out['at_limit'][0]:>4}/{out['at_limit'][1]:<4}"
        print(line + f"   [{time.perf_counter() - t1:.0f} s]", flush=True)
    print(f"total wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
