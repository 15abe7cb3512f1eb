"""Seeded arithmetic families: ``gsm8k_basic_local`` (2–3 steps), ``gsm8k_multi_step_local``
(4–8 steps), both from :mod:`alems.tasks.wordproblems`, and ``tg_single_calc`` (exact
arithmetic; ``steps`` is the number of operators, ``template`` the expression shape and
the operands' largest digit count, e.g. ``product/d9``).

``tg_single_calc`` spreads its difficulty: each goal first draws a level (seeded, like
everything else; never by whether a model solves it). Level 1 (30 %) is one operation on
1–2-digit numbers and level 2 (20 %) one operation on 2–3-digit numbers, which a model
without a tool can sometimes do in its head; level 3 (20 %) is two operations on 3–4-digit
numbers and level 4 (30 %) the large-integer expressions (up to 12-digit operands, powers)
that it cannot.

Every instance ``i`` of seed ``s`` draws from ``numpy.random.default_rng([s, i, salt])``,
so generation is reproducible and prefix-stable.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from alems.tasks.base import Goal
from alems.tasks.wordproblems import make_problem

_FAMILY_SALT = {"gsm8k_basic": 11, "gsm8k_multi_step": 12, "tg_single_calc": 13}


def _ri(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi]."""
    return int(rng.integers(lo, hi + 1))


# --------------------------------------------------------------------------- tg_single_calc
def _c_product(rng):
    a, b = _ri(rng, 10**6, 10**9), _ri(rng, 10**6, 10**9)
    return f"{a} * {b}", a * b


def _c_product_plus(rng):
    a, b, c = _ri(rng, 10**5, 10**8), _ri(rng, 10**5, 10**8), _ri(rng, 10**6, 10**10)
    return f"{a} * {b} + {c}", a * b + c


def _c_diff_products(rng):
    a, b, c, d = (_ri(rng, 10**4, 10**7) for _ in range(4))
    return f"{a} * {b} - {c} * {d}", a * b - c * d


def _c_power(rng):
    base, exp = _ri(rng, 13, 97), _ri(rng, 7, 12)
    return f"{base} ** {exp}", base**exp


def _c_sum(rng):
    terms = [_ri(rng, 10**8, 10**12) for _ in range(_ri(rng, 4, 6))]
    return " + ".join(str(t) for t in terms), sum(terms)


def _c_grouped(rng):
    a, b, c, d = (
        _ri(rng, 10**5, 10**8),
        _ri(rng, 10**5, 10**8),
        _ri(rng, 10**4, 10**6),
        _ri(rng, 10**2, 10**4),
    )
    return f"({a} + {b}) * ({c} - {d})", (a + b) * (c - d)


CALC: tuple[Callable[[np.random.Generator], tuple[str, int]], ...] = (
    _c_product,
    _c_product_plus,
    _c_diff_products,
    _c_power,
    _c_sum,
    _c_grouped,
)
"""Level 4: large integers."""


def _evaluate(nums: list[int], ops: list[str]) -> int:
    """``nums[0] ops[0] nums[1] ...`` with ``*`` before ``+``/``-``."""
    terms = [nums[0]]
    for op, x in zip(ops, nums[1:], strict=True):
        if op == "*":
            terms[-1] *= x
        else:
            terms.append(x if op == "+" else -x)
    return sum(terms)


def _small(lo: int, hi: int, ops: int) -> Callable[[np.random.Generator], tuple[str, int]]:
    """Expressions of ``ops`` operations (+, -, *) on integers in [lo, hi]; a negative
    result turns the expression's minus signs into plus signs."""

    def make(rng: np.random.Generator) -> tuple[str, int]:
        nums = [_ri(rng, lo, hi)]
        signs: list[str] = []
        for _ in range(ops):
            signs.append("+-*"[int(rng.integers(3))])
            nums.append(_ri(rng, lo, hi))
        if _evaluate(nums, signs) < 0:
            signs = ["+" if o == "-" else o for o in signs]
        expr = " ".join([str(nums[0]), *(f"{o} {x}" for o, x in zip(signs, nums[1:], strict=True))])
        return expr, _evaluate(nums, signs)

    make.__name__ = f"_c_ops{ops}"
    return make


LEVELS: tuple[tuple[float, tuple[Callable[[np.random.Generator], tuple[str, int]], ...]], ...] = (
    (0.3, (_small(2, 99, 1),)),
    (0.2, (_small(10, 999, 1),)),
    (0.2, (_small(100, 9999, 2),)),
    (0.3, CALC),
)
"""``tg_single_calc``'s difficulty levels: (share of goals, expression makers)."""


def _pretty(expr: str) -> str:
    return expr.replace("**", "^").replace("*", "×")


# --------------------------------------------------------------------------- generators
def _instance_rng(family: str, seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, i, _FAMILY_SALT[family]])


def _word_problems(family: str, seed: int, n: int) -> list[Goal]:
    goals = []
    for i in range(n):
        prob = make_problem(_instance_rng(family, seed, i), family)
        goals.append(
            Goal(
                family=family,
                goal_id=f"{family}-s{seed}-{i:04d}",
                prompt=prob.text,
                expected=str(prob.answer),
                answer_kind="numeric",
                value_kind="numeric",
                tools=("calculator",),
                steps=prob.steps,
                template=prob.template,
            )
        )
    return goals


def generate_gsm8k_basic(seed: int, n: int) -> list[Goal]:
    return _word_problems("gsm8k_basic", seed, n)


def generate_gsm8k_multi_step(seed: int, n: int) -> list[Goal]:
    return _word_problems("gsm8k_multi_step", seed, n)


def generate_tg_single_calc(seed: int, n: int) -> list[Goal]:
    goals = []
    shares = np.array([w for w, _ in LEVELS])
    for i in range(n):
        rng = _instance_rng("tg_single_calc", seed, i)
        makers = LEVELS[int(rng.choice(len(LEVELS), p=shares / shares.sum()))][1]
        make = makers[int(rng.integers(len(makers)))]
        expr, value = make(rng)
        digits = max(len(t) for t in re.findall(r"\d+", expr))
        prompt = f"Compute the exact value of {_pretty(expr)}. Give every digit of the integer result."
        goals.append(
            Goal(
                family="tg_single_calc",
                goal_id=f"tg_single_calc-s{seed}-{i:04d}",
                prompt=prompt,
                expected=str(value),
                answer_kind="numeric",
                value_kind="numeric",
                rel_tol=0.0,
                abs_tol=0.0,
                tools=("calculator",),
                steps=len(re.findall(r"\*\*|[-+*]", expr)),
                template=f"{make.__name__.removeprefix('_c_')}/d{digits}",
            )
        )
    return goals
