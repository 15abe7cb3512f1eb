"""GSM8K-grade word problems for ``gsm8k_basic`` (2–3 steps) and ``gsm8k_multi_step``
(4–8 steps), built by a program that also computes the answer.

A problem follows one held quantity through a short story: an amount of money, a
collection of items, juice in a jug (millilitres, with litres mixed in) or free time
(minutes, with hours mixed in). The story is a *structure*: a domain, a sequence of
operations and a question form, for example ``money/gain_rate+lose_pct/short``:

    Maria has $40 saved in a jar. She works 3 hours at a cafe and is paid $12 per
    hour. Her bike is 4 years old. She spends 25% of the money in the jar on a new
    backpack. She wants to buy a lamp that costs $80. How many more dollars does she need?

Each operation has a fixed number of arithmetic steps (:data:`OPS`): adding a rate
(``k × r``, then add) is 2, a unit fraction (``v / b``, then subtract) is 2, a non-unit
fraction 3, a change of unit (litres to millilitres, then add) 2. The question adds 0–2
steps. A structure's ``steps`` is their sum; the catalogue of a family holds every
structure (no operation twice in a row) whose steps fall in the family's range, and the
goal's ``template`` is the structure id. Quantity kinds mix money, rates, percentages,
fractions, unit changes and time; one or two sentences that carry no information (often
with a number of their own) are inserted between the others.

Generation: instance ``i`` of seed ``s`` draws from ``numpy.random.default_rng([s, i, salt])``:
first a structure uniformly from the catalogue, then its numbers. Numbers are drawn, the
story is run forward, and a draw that leaves a fraction, a negative amount or an
implausible size is drawn again (up to :data:`MAX_DRAWS` times, then the next structure
in the catalogue is used), so every intermediate value and the answer are positive
integers. This is deterministic and prefix-stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise, product

import numpy as np

NAMES_F = ("Maria", "Aisha", "Lena", "Priya", "Sofia", "Fatima", "Zara", "Maya", "Nora", "Elena")
NAMES_M = ("Tom", "Kenji", "Omar", "Diego", "Liam", "Chen", "Noah", "Ivan", "Samuel", "Ravi")
ITEMS = ("stickers", "marbles", "stamps", "shells", "trading cards", "pencils", "beads", "coins")
FRACTION_WORDS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth", 6: "a sixth"}
FRACTION2_WORDS = {
    (2, 3): "two thirds",
    (3, 4): "three quarters",
    (2, 5): "two fifths",
    (3, 5): "three fifths",
}
PERCENTS = (10, 20, 25, 40, 50, 60, 75)
MULT_WORDS = {2: "twice", 3: "three times"}
MAX_DRAWS = 400
MAX_VALUE = 100_000

#: Arithmetic steps of each operation.
OPS: dict[str, int] = {
    "gain": 1,
    "lose": 1,
    "scale": 1,
    "split": 1,
    "gain_rate": 2,
    "lose_rate": 2,
    "lose_pct": 2,
    "gain_pct": 2,
    "lose_frac": 2,
    "gain_unit": 2,
    "lose_unit": 2,
    "lose_frac2": 3,
}
#: Extra steps of each question form.
QUESTIONS: dict[str, int] = {"now": 0, "short": 1, "each": 1, "compare": 2}
STEP_RANGES: dict[str, tuple[int, int, int, int]] = {
    # family: (min steps, max steps, min ops, max ops)
    "gsm8k_basic": (2, 3, 1, 3),
    "gsm8k_multi_step": (4, 8, 2, 4),
}


@dataclass(frozen=True)
class Domain:
    """The phrasing of one held quantity: sentence templates per operation and question."""

    name: str
    init: str
    init_range: tuple[int, int]
    amount: tuple[int, int]  # range of a plain gain/loss
    rate: tuple[int, int]  # range of a per-unit amount
    unit: int  # size of the big unit in the held unit (bill, dozen, litre, hour)
    unit_count: tuple[int, int]
    ops: dict[str, str]
    questions: dict[str, str]
    distractors: tuple[str, ...]


DOMAINS: dict[str, Domain] = {
    "money": Domain(
        name="money",
        init="{n} has ${v} saved in a jar.",
        init_range=(20, 400),
        amount=(3, 90),
        rate=(4, 25),
        unit=20,
        unit_count=(1, 5),
        ops={
            "gain": "{P} earns ${x} for walking a neighbour's dog.",
            "lose": "{P} spends ${x} on a concert ticket.",
            "gain_rate": "{P} works {k} hours at a cafe and is paid ${r} per hour.",
            "lose_rate": "{P} buys {k} notebooks that cost ${r} each.",
            "lose_pct": "{P} spends {pct}% of the money in the jar on a new backpack.",
            "gain_pct": "{Pos} aunt adds {pct}% of whatever is in the jar.",
            "lose_frac": "{P} gives {frac} of the money to {pos} brother.",
            "lose_frac2": "{P} spends {frac} of the money on a bike helmet.",
            "scale": "{Pos} grandfather puts in enough to make the jar hold {mult} as much as before.",
            "split": "{P} shares the money equally between {refl} and {k1} cousins and keeps one share.",
            "gain_unit": "{P} finds {k} twenty-dollar {bills} in an old coat and puts them in the jar.",
            "lose_unit": "{P} takes {k} twenty-dollar {bills} out of the jar to pay for a game.",
        },
        questions={
            "now": "How many dollars does {n} have now?",
            "short": "{n} wants to buy a lamp that costs ${T}. How many more dollars does {p} need?",
            "each": "{n} puts all the money into {k} envelopes with the same amount in each. "
            "How many dollars go in each envelope?",
            "compare": "{f} has {k} times as much money as {n} has now. How many dollars do they have together?",
        },
        distractors=(
            "{Pos} bike is {d} years old.",
            "The cafe is {d} blocks from {pos} home.",
            "{f} has ${d} in a piggy bank.",
            "It rains on {d} days that month.",
        ),
    ),
    "items": Domain(
        name="items",
        init="{n} has {v} {it}.",
        init_range=(12, 300),
        amount=(2, 60),
        rate=(3, 15),
        unit=12,
        unit_count=(1, 5),
        ops={
            "gain": "{P} gets {x} more {it} from a classmate.",
            "lose": "{P} loses {x} {it} on the bus.",
            "gain_rate": "{P} buys {k} packs of {it} with {r} {it} in each pack.",
            "lose_rate": "{P} gives {r} {it} to each of {k} friends.",
            "lose_pct": "{pct}% of {pos} {it} get damaged in the rain, and {p} throws those away.",
            "gain_pct": "Over the summer the collection grows by {pct}%.",
            "lose_frac": "{P} gives {frac} of {pos} {it} to {pos} sister.",
            "lose_frac2": "{P} trades away {frac} of {pos} {it}.",
            "scale": "After {pos} birthday, {n} has {mult} as many {it} as before.",
            "split": "{P} shares the {it} equally among {refl} and {k1} friends and keeps one share.",
            "gain_unit": "{P} buys {k} dozen {it}.",
            "lose_unit": "{P} sells {k} dozen {it} at a school fair.",
        },
        questions={
            "now": "How many {it} does {n} have now?",
            "short": "{n} wants a collection of {T} {it}. How many more {it} does {p} need?",
            "each": "{n} puts all of {pos} {it} into {k} boxes with the same number in each. "
            "How many {it} are in each box?",
            "compare": "{f} has {k} times as many {it} as {n} has now. How many {it} do they have together?",
        },
        distractors=(
            "{n} is {d} years old.",
            "{f} keeps {d} postcards in a drawer.",
            "{Pos} school has {d} classrooms.",
            "The bus ride takes {d} minutes.",
        ),
    ),
    "juice": Domain(
        name="juice",
        init="A jug contains {v} millilitres of juice.",
        init_range=(300, 3000),
        amount=(20, 400),
        rate=(50, 300),
        unit=1000,
        unit_count=(1, 2),
        ops={
            "gain": "{n} pours in another {x} millilitres.",
            "lose": "{n} drinks {x} millilitres.",
            "gain_rate": "{n} adds {k} cups of juice, each holding {r} millilitres.",
            "lose_rate": "{n} fills {k} glasses from the jug with {r} millilitres each.",
            "lose_pct": "{pct}% of the juice in the jug is spilled.",
            "gain_pct": "{n} adds water equal to {pct}% of what is in the jug.",
            "lose_frac": "{n} pours {frac} of the juice into a bottle for school.",
            "lose_frac2": "Guests drink {frac} of the juice.",
            "scale": "{n} mixes in water until the jug holds {mult} as much liquid as before.",
            "split": "{n} pours the juice equally into {k} bottles, gives away {k1} of them and "
            "pours the last one back into the jug.",
            "gain_unit": "{n} adds {k} {litres} of juice from cartons.",
            "lose_unit": "The family drinks {k} {litres} at lunch.",
        },
        questions={
            "now": "How many millilitres of liquid are in the jug now?",
            "short": "The jug is full when it holds {T} millilitres. How many more millilitres are needed to fill it?",
            "each": "{n} pours all of it equally into {k} glasses. How many millilitres go in each glass?",
            "compare": "A second jug holds {k} times as much as the first jug holds now. "
            "How many millilitres do the two jugs hold together?",
        },
        distractors=(
            "The jug is {d} centimetres tall.",
            "The kitchen clock shows {d} minutes past noon.",
            "{n} has {d} glasses in the cupboard.",
            "The juice cost ${d}.",
        ),
    ),
    "time": Domain(
        name="time",
        init="{n} has {v} minutes of free time on Saturday.",
        init_range=(120, 720),
        amount=(10, 90),
        rate=(10, 45),
        unit=60,
        unit_count=(1, 3),
        ops={
            "gain": "A cancelled lesson gives {obj} {x} more minutes.",
            "lose": "{P} spends {x} minutes tidying {pos} room.",
            "gain_rate": "{P} skips {k} chores that would each have taken {r} minutes, so that time is free too.",
            "lose_rate": "{P} watches {k} episodes of a show, each {r} minutes long.",
            "lose_pct": "{P} spends {pct}% of the free time at football practice.",
            "lose_frac": "{P} spends {frac} of the free time reading.",
            "lose_frac2": "{P} spends {frac} of the free time on homework.",
            "gain_unit": "A trip is called off, which gives {obj} {k} more {hours}.",
            "lose_unit": "{P} spends {k} {hours} at the museum.",
        },
        questions={
            "now": "How many minutes of free time does {n} have left?",
            "short": "{n} wants {T} minutes for a puzzle. How many more minutes would {p} need?",
            "each": "{n} splits the free time that is left equally among {k} games. "
            "How many minutes does {p} spend on each game?",
        },
        distractors=(
            "The museum opened {d} years ago.",
            "{f} lives {d} kilometres away.",
            "{Pos} watch cost ${d}.",
            "{n} has read {d} books this year.",
        ),
    ),
}


@dataclass(frozen=True)
class Structure:
    """One problem structure: a domain, its operations in order, a question form."""

    domain: str
    ops: tuple[str, ...]
    question: str

    @property
    def steps(self) -> int:
        return sum(OPS[o] for o in self.ops) + QUESTIONS[self.question]

    @property
    def template(self) -> str:
        return f"{self.domain}/{'+'.join(self.ops)}/{self.question}"


@lru_cache(maxsize=4)
def catalogue(family: str) -> tuple[Structure, ...]:
    """Every structure of ``family`` in a fixed order (see the module docstring)."""
    lo, hi, min_ops, max_ops = STEP_RANGES[family]
    out = []
    for dname, dom in DOMAINS.items():
        ops = [o for o in OPS if o in dom.ops]
        for n_ops in range(min_ops, max_ops + 1):
            for seq in product(ops, repeat=n_ops):
                if any(a == b for a, b in pairwise(seq)):
                    continue
                for q in QUESTIONS:
                    if q not in dom.questions:
                        continue
                    s = Structure(dname, tuple(seq), q)
                    if lo <= s.steps <= hi:
                        out.append(s)
    return tuple(out)


# --------------------------------------------------------------------------- running a story
def _ri(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _apply(rng: np.random.Generator, dom: Domain, op: str, v: Fraction) -> tuple[dict[str, object], Fraction]:
    """Draw the numbers of one operation and return (its fields, the new value)."""
    if op == "gain":
        x = _ri(rng, *dom.amount)
        return {"x": x}, v + x
    if op == "lose":
        x = _ri(rng, *dom.amount)
        return {"x": x}, v - x
    if op in ("gain_rate", "lose_rate"):
        k, r = _ri(rng, 2, 8), _ri(rng, *dom.rate)
        return {"k": k, "r": r}, v + k * r if op == "gain_rate" else v - k * r
    if op in ("lose_pct", "gain_pct"):
        pct = PERCENTS[int(rng.integers(len(PERCENTS)))]
        delta = v * pct / 100
        return {"pct": pct}, v - delta if op == "lose_pct" else v + delta
    if op == "lose_frac":
        b = int(rng.choice(list(FRACTION_WORDS)))
        return {"frac": FRACTION_WORDS[b]}, v - v / b
    if op == "lose_frac2":
        keys = list(FRACTION2_WORDS)
        a, b = keys[int(rng.integers(len(keys)))]
        return {"frac": FRACTION2_WORDS[(a, b)]}, v - v / b * a
    if op == "scale":
        k = _ri(rng, 2, 3)
        return {"mult": MULT_WORDS[k]}, v * k
    if op == "split":
        k = _ri(rng, 2, 5)
        return {"k": k, "k1": k - 1}, v / k
    if op in ("gain_unit", "lose_unit"):
        k = _ri(rng, *dom.unit_count)
        words = {
            "litres": "litre" if k == 1 else "litres",
            "hours": "hour" if k == 1 else "hours",
            "bills": "bill" if k == 1 else "bills",
        }
        return {"k": k, **words}, v + k * dom.unit if op == "gain_unit" else v - k * dom.unit
    raise ValueError(f"unknown operation {op!r}")  # pragma: no cover


def _question(rng: np.random.Generator, q: str, v: Fraction) -> tuple[dict[str, object], Fraction]:
    if q == "now":
        return {}, v
    if q == "short":
        gap = _ri(rng, 5, max(6, int(v) // 2 + 5))
        return {"T": int(v) + gap}, Fraction(gap)
    if q == "each":
        k = _ri(rng, 2, 6)
        return {"k": k}, v / k
    if q == "compare":
        k = _ri(rng, 2, 4)
        return {"k": k}, v + v * k
    raise ValueError(f"unknown question {q!r}")  # pragma: no cover


def _is_ok(v: Fraction) -> bool:
    return v.denominator == 1 and 0 < v <= MAX_VALUE


def _draw(
    rng: np.random.Generator, s: Structure
) -> tuple[list[dict[str, object]], dict[str, object], int, int] | None:
    """One attempt at numbers for ``s``: (op fields, question fields, start, answer) or None."""
    dom = DOMAINS[s.domain]
    divisive = (
        any(o in ("lose_pct", "gain_pct", "lose_frac", "lose_frac2", "split") for o in s.ops)
        or s.question == "each"
    )
    grain = 60 if divisive else 1
    lo, hi = dom.init_range
    start = _ri(rng, max(1, lo // grain), max(1, hi // grain)) * grain
    v = Fraction(start)
    fields = []
    for op in s.ops:
        f, v = _apply(rng, dom, op, v)
        if not _is_ok(v):
            return None
        fields.append(f)
    qf, ans = _question(rng, s.question, v)
    if not _is_ok(ans):
        return None
    return fields, qf, start, int(ans)


def _people(rng: np.random.Generator) -> dict[str, str]:
    female = bool(rng.integers(2))
    names = NAMES_F if female else NAMES_M
    n = names[int(rng.integers(len(names)))]
    others = [x for x in (*NAMES_F, *NAMES_M) if x != n]
    f = others[int(rng.integers(len(others)))]
    p, pos, obj = ("she", "her", "her") if female else ("he", "his", "him")
    return {
        "n": n,
        "f": f,
        "p": p,
        "P": p.capitalize(),
        "pos": pos,
        "Pos": f"{n}'s",
        "obj": obj,
        "refl": "herself" if female else "himself",
        "it": ITEMS[int(rng.integers(len(ITEMS)))],
    }


@dataclass(frozen=True)
class WordProblem:
    """A generated problem: its text, integer answer, steps and structure id."""

    text: str
    answer: int
    steps: int
    template: str


def make_problem(rng: np.random.Generator, family: str) -> WordProblem:
    """One problem of ``family`` drawn from ``rng`` (module docstring)."""
    cat = catalogue(family)
    idx = int(rng.integers(len(cat)))
    who = _people(rng)
    for shift in range(len(cat)):
        s = cat[(idx + shift) % len(cat)]
        for _ in range(MAX_DRAWS):
            got = _draw(rng, s)
            if got is not None:
                return _render(rng, s, who, *got)
    raise RuntimeError(f"no structure of {family} could be drawn")  # pragma: no cover


def _render(
    rng: np.random.Generator,
    s: Structure,
    who: dict[str, str],
    fields: list[dict[str, object]],
    qf: dict[str, object],
    start: int,
    answer: int,
) -> WordProblem:
    dom = DOMAINS[s.domain]
    sentences = [dom.init.format(v=start, **who)]
    for op, f in zip(s.ops, fields, strict=True):
        sentences.append(_cap(dom.ops[op].format(**who, **f)))
    n_noise = 1 if len(s.ops) <= 2 else 2
    picks = rng.permutation(len(dom.distractors))[:n_noise]
    for j in sorted(picks):
        d = _ri(rng, 3, 40)
        pos = _ri(rng, 1, len(sentences))  # never before the opening sentence
        sentences.insert(pos, _cap(dom.distractors[int(j)].format(d=d, **who)))
    sentences.append(dom.questions[s.question].format(**who, **qf))
    return WordProblem(" ".join(sentences), answer, s.steps, s.template)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
