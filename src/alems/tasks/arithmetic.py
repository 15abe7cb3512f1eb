"""Seeded arithmetic families: ``gsm8k_basic`` (one or two steps), ``gsm8k_multi_step``
(three or more steps) and ``tg_single_calc`` (exact arithmetic on large integers).

Every instance ``i`` of seed ``s`` draws from ``numpy.random.default_rng([s, i, salt])``,
so generation is reproducible and prefix-stable. Word problems are built backwards from
their answer so every quantity is a whole, positive number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alems.tasks.base import Goal

NAMES = (
    "Maria", "Tom", "Aisha", "Kenji", "Lena", "Omar", "Priya", "Diego", "Sofia", "Liam",
    "Chen", "Fatima", "Noah", "Zara", "Ivan", "Maya", "Samuel", "Nora", "Ravi", "Elena",
)
ITEMS = ("apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "shells")

Template = Callable[[np.random.Generator], tuple[str, int]]

_FAMILY_SALT = {"gsm8k_basic": 11, "gsm8k_multi_step": 12, "tg_single_calc": 13}


def _ri(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi]."""
    return int(rng.integers(lo, hi + 1))


def _pick(rng: np.random.Generator, seq: tuple[str, ...]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _person(rng: np.random.Generator) -> tuple[str, str]:
    name = _pick(rng, NAMES)
    return name, ("she" if name in {"Maria", "Aisha", "Lena", "Priya", "Sofia", "Fatima", "Zara",
                                   "Maya", "Nora", "Elena"} else "he")


# --------------------------------------------------------------------------- gsm8k_basic
def _b_buy_more(rng):
    n, p = _person(rng)
    a, b, it = _ri(rng, 5, 60), _ri(rng, 3, 40), _pick(rng, ITEMS)
    return f"{n} has {a} {it}. {p.capitalize()} gets {b} more. How many {it} does {n} have now?", a + b


def _b_give_away(rng):
    n, p = _person(rng)
    b, left, it = _ri(rng, 3, 40), _ri(rng, 2, 50), _pick(rng, ITEMS)
    return f"{n} had {b + left} {it} and gave {b} of them to a friend. How many {it} does {n} have left?", left


def _b_boxes(rng):
    a, b, it = _ri(rng, 4, 24), _ri(rng, 3, 15), _pick(rng, ITEMS)
    return f"A box holds {a} {it}. How many {it} are there in {b} full boxes?", a * b


def _b_share(rng):
    n, _ = _person(rng)
    each, k, it = _ri(rng, 3, 20), _ri(rng, 2, 9), _pick(rng, ITEMS)
    return (f"{n} shares {each * k} {it} equally among {k} friends. "
            f"How many {it} does each friend get?"), each


def _b_shopping(rng):
    n, p = _person(rng)
    a, price, pen = _ri(rng, 2, 9), _ri(rng, 2, 15), _ri(rng, 1, 9)
    return (f"{n} buys {a} notebooks that cost ${price} each and one pen that costs ${pen}. "
            f"How many dollars does {p} spend in total?"), a * price + pen


def _b_train(rng):
    s, h = _ri(rng, 40, 120), _ri(rng, 2, 8)
    return f"A train travels at {s} kilometres per hour for {h} hours. How many kilometres does it travel?", s * h


def _b_reading(rng):
    n, p = _person(rng)
    a, d, extra = _ri(rng, 5, 40), _ri(rng, 2, 9), _ri(rng, 3, 30)
    return (f"{n} reads {a} pages every day for {d} days, and then reads {extra} more pages. "
            f"How many pages has {p} read in total?"), a * d + extra


def _b_wages(rng):
    n, p = _person(rng)
    rate, hours = _ri(rng, 8, 30), _ri(rng, 3, 10)
    spend = _ri(rng, 1, rate * hours - 1)
    return (f"{n} earns ${rate} per hour and works {hours} hours. Then {p} spends ${spend}. "
            f"How many dollars does {n} have left from the wages?"), rate * hours - spend


BASIC: tuple[Template, ...] = (
    _b_buy_more, _b_give_away, _b_boxes, _b_share, _b_shopping, _b_train, _b_reading, _b_wages,
)


# --------------------------------------------------------------------------- gsm8k_multi_step
def _m_bakery(rng):
    trays, per, bag = _ri(rng, 3, 8), _ri(rng, 8, 16), _ri(rng, 2, 6)
    total = trays * per
    bags = _ri(rng, 1, (total - 2) // bag)
    rest = total - bags * bag
    sold = _ri(rng, 1, rest - 1)
    gift = rest - sold
    return (f"A baker bakes {trays} trays with {per} cookies on each tray. She sells {sold} cookies "
            f"and gives {gift} cookies to her neighbours. She packs the remaining cookies into bags of "
            f"{bag}. How many bags does she fill?"), bags


def _m_change(rng):
    n, p = _person(rng)
    a, pa, b, pb = _ri(rng, 2, 5), _ri(rng, 4, 20), _ri(rng, 1, 4), _ri(rng, 10, 35)
    cost = a * pa + b * pb
    bill = 50 * (cost // 50 + 1)
    return (f"{n} buys {a} shirts at ${pa} each and {b} pairs of trousers at ${pb} each. "
            f"{p.capitalize()} pays with ${bill}. How many dollars of change does {p} get?"), bill - cost


def _m_savings(rng):
    n, p = _person(rng)
    week, weeks, extra = 2 * _ri(rng, 2, 15), _ri(rng, 3, 12), _ri(rng, 5, 40)
    return (f"{n} saves ${week} every week for {weeks} weeks. Then {p} spends half of the savings "
            f"on a gift. After that, {p} earns ${extra} more. How many dollars does {n} have now?"), (
        week * weeks // 2 + extra
    )


def _m_farm(rng):
    cows, hens = _ri(rng, 5, 20), _ri(rng, 6, 30)
    sold = _ri(rng, 1, cows - 1)
    return (f"A farm has {cows} cows and {hens} hens. The farmer sells {sold} cows. "
            f"How many legs do the remaining cows and hens have altogether?"), (cows - sold) * 4 + hens * 2


def _m_tank(rng):
    days, used, added = _ri(rng, 3, 10), _ri(rng, 20, 60), _ri(rng, 5, 19)
    start = days * (used - added) + _ri(rng, 10, 200)
    return (f"A water tank holds {start} litres. Every day {used} litres are used and {added} litres "
            f"are added. How many litres are in the tank after {days} days?"), start - days * (used - added)


def _m_class(rng):
    pct = _pick(rng, ("20", "25", "40", "50", "60", "75", "80"))
    unit = 100 // np.gcd(int(pct), 100)
    students = unit * _ri(rng, max(1, 10 // unit), max(2, 40 // unit))
    girls = students * int(pct) // 100
    x = _ri(rng, 2, 6)
    y = x + _ri(rng, 1, 4) if rng.integers(2) else x - _ri(rng, 1, x - 1)
    return (f"A class has {students} students, and {pct}% of them are girls. Each girl gets {x} stickers "
            f"and each boy gets {y} stickers. How many stickers are given out in total?"), (
        girls * x + (students - girls) * y
    )


def _m_trip(rng):
    s1, h1, s2, h2 = _ri(rng, 40, 70), _ri(rng, 2, 4), _ri(rng, 50, 90), _ri(rng, 1, 3)
    done = s1 * h1 + s2 * h2
    dist = done + _ri(rng, 20, 300)
    return (f"A family drives to a city {dist} miles away. They drive at {s1} miles per hour for {h1} hours, "
            f"then at {s2} miles per hour for {h2} hours. How many miles do they still have to drive?"), dist - done


def _m_store(rng):
    crates, per = _ri(rng, 3, 9), _ri(rng, 12, 30)
    total = crates * per
    bad = _ri(rng, 1, total // 5)
    price = _ri(rng, 1, 3)
    return (f"A shop receives {crates} crates with {per} oranges in each crate. {bad} oranges are bad and "
            f"thrown away. The rest are sold for ${price} each. How many dollars does the shop earn?"), (
        (total - bad) * price
    )


MULTI: tuple[Template, ...] = (_m_bakery, _m_change, _m_savings, _m_farm, _m_tank, _m_class, _m_trip, _m_store)


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
    a, b, c, d = _ri(rng, 10**5, 10**8), _ri(rng, 10**5, 10**8), _ri(rng, 10**4, 10**6), _ri(rng, 10**2, 10**4)
    return f"({a} + {b}) * ({c} - {d})", (a + b) * (c - d)


CALC: tuple[Callable[[np.random.Generator], tuple[str, int]], ...] = (
    _c_product, _c_product_plus, _c_diff_products, _c_power, _c_sum, _c_grouped,
)


def _pretty(expr: str) -> str:
    return expr.replace("**", "^").replace("*", "×")


# --------------------------------------------------------------------------- generators
def _instance_rng(family: str, seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, i, _FAMILY_SALT[family]])


def _word_problems(family: str, templates: tuple[Template, ...], seed: int, n: int) -> list[Goal]:
    goals = []
    for i in range(n):
        rng = _instance_rng(family, seed, i)
        question, answer = templates[int(rng.integers(len(templates)))](rng)
        goals.append(
            Goal(
                family=family,
                goal_id=f"{family}-s{seed}-{i:04d}",
                prompt=question,
                expected=str(int(answer)),
                answer_kind="numeric",
                value_kind="numeric",
                tools=("calculator",),
            )
        )
    return goals


def generate_gsm8k_basic(seed: int, n: int) -> list[Goal]:
    return _word_problems("gsm8k_basic", BASIC, seed, n)


def generate_gsm8k_multi_step(seed: int, n: int) -> list[Goal]:
    return _word_problems("gsm8k_multi_step", MULTI, seed, n)


def generate_tg_single_calc(seed: int, n: int) -> list[Goal]:
    goals = []
    for i in range(n):
        rng = _instance_rng("tg_single_calc", seed, i)
        expr, value = CALC[int(rng.integers(len(CALC)))](rng)
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
            )
        )
    return goals
