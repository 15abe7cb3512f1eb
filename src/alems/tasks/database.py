"""The database families: ``tg_single_db`` (answer one question from a small SQLite
table) and ``tg_sequential_2`` (query the table, then write the result to a file).

Each instance builds its own ``orders`` table from ``numpy.random.default_rng([seed, i, salt])``:
12 to 16 rows of sales orders. The goal carries the SQL fixture (``db_sql``) that builds
the database, the reference query (``db_query``) whose value is the ground truth, and
the schema text shown to agents. The task text shows the same rows as a table, so the
linear mode (which has no tools) can do the work in text; the agentic mode may query the
database instead. Questions whose answer is a name are drawn so that the answer is unique.

``tg_sequential_2`` spreads its difficulty by table size: each goal first draws (seeded)
a level, a table of 3-5 rows (40 %), 6-9 rows (30 %) or 12-16 rows (30 %), so that a model
without tools can sometimes read the answer off a short table and cannot sum a long one.
``tg_single_db`` keeps its 12-16 rows. Every db goal records ``steps``, the rows its
reference query reads (those its ``WHERE`` selects; all rows for a whole-table question),
and ``template``, the table size (``rows14``).

File goals (``tg_sequential_2``) name the file to write. The checker reads that file in
the attempt's sandbox. In linear mode there are no tools, so the harness writes the
model's final answer text into that file; the same file checker then applies to both modes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alems.tasks.base import AnswerKind, Goal, ValueKind
from alems.tasks.checkers import query_value

REPS = ("Ana", "Ben", "Carla", "Dev", "Eli", "Fay", "Gus", "Hana")
REGIONS = ("North", "South", "East", "West")
PRODUCTS = ("laptop", "monitor", "keyboard", "mouse", "printer", "tablet")

SCHEMA = (
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, rep TEXT, region TEXT, "
    "product TEXT, units INTEGER, price INTEGER)"
)
OUTPUT_FILE = "result.txt"
_SALT = {"tg_single_db": 31, "tg_sequential_2": 32}


@dataclass(frozen=True)
class Row:
    id: int
    rep: str
    region: str
    product: str
    units: int
    price: int


SIZES: tuple[tuple[float, int, int], ...] = ((0.4, 3, 5), (0.3, 6, 9), (0.3, 12, 16))
"""``tg_sequential_2``'s table sizes: (share of goals, fewest rows, most rows)."""


def make_rows(rng: np.random.Generator, lo: int = 12, hi: int = 16) -> list[Row]:
    n = int(rng.integers(lo, hi + 1))
    reps = [REPS[j] for j in rng.permutation(len(REPS))[:5]]
    rows = []
    for k in range(n):
        rows.append(
            Row(
                id=k + 1,
                rep=reps[int(rng.integers(len(reps)))],
                region=REGIONS[int(rng.integers(len(REGIONS)))],
                product=PRODUCTS[int(rng.integers(len(PRODUCTS)))],
                units=int(rng.integers(1, 40)),
                price=int(rng.integers(5, 400)),
            )
        )
    return rows


def rows_sql(rows: list[Row]) -> str:
    """The SQL fixture that builds the database (deterministic text)."""
    values = ",\n".join(
        f"({r.id}, '{r.rep}', '{r.region}', '{r.product}', {r.units}, {r.price})" for r in rows
    )
    return f"{SCHEMA};\nINSERT INTO orders (id, rep, region, product, units, price) VALUES\n{values};\n"


def rows_table(rows: list[Row]) -> str:
    """The rows as a plain-text table, for the task text."""
    lines = ["id | rep | region | product | units | price"]
    lines += [f"{r.id} | {r.rep} | {r.region} | {r.product} | {r.units} | {r.price}" for r in rows]
    return "\n".join(lines)


# A question: (text, reference query, value kind, choices for name answers).
Question = tuple[str, str, ValueKind, tuple[str, ...]]


def _pick(rng: np.random.Generator, rows: list[Row], column: str) -> str:
    """One of the distinct values of ``column`` in ``rows`` (sorted, then drawn uniformly)."""
    values = sorted({str(getattr(r, column)) for r in rows})
    return values[int(rng.integers(len(values)))]


@dataclass(frozen=True)
class _AboutOneValue:
    """A numeric question about one value of ``column`` drawn from the table: its text and
    its reference query, with ``{v}`` for the value."""

    column: str
    text: str
    query: str

    def __call__(self, rng: np.random.Generator, rows: list[Row]) -> Question:
        v = _pick(rng, rows, self.column)
        return self.text.format(v=v), self.query.format(v=v), "numeric", ()


_UNITS_REGION = _AboutOneValue(
    "region",
    "What is the total number of units sold in the {v} region?",
    "SELECT SUM(units) FROM orders WHERE region = '{v}'",
)
_COUNT_PRODUCT = _AboutOneValue(
    "product",
    "How many orders are for the product {v}?",
    "SELECT COUNT(*) FROM orders WHERE product = '{v}'",
)
_REVENUE_REP = _AboutOneValue(
    "rep",
    "What is the total revenue (units times price, summed over orders) of the sales rep {v}?",
    "SELECT SUM(units * price) FROM orders WHERE rep = '{v}'",
)
_MAX_PRICE_REGION = _AboutOneValue(
    "region",
    "What is the highest price of any order in the {v} region?",
    "SELECT MAX(price) FROM orders WHERE region = '{v}'",
)


def _q_top_rep_units(rng: np.random.Generator, rows: list[Row]) -> Question | None:
    totals: dict[str, int] = {}
    for r in rows:
        totals[r.rep] = totals.get(r.rep, 0) + r.units
    ranked = sorted(totals.values(), reverse=True)
    if len(ranked) > 1 and ranked[0] == ranked[1]:
        return None  # tie: no unique answer
    return (
        "Which sales rep sold the most units in total? Give the rep's name.",
        "SELECT rep FROM orders GROUP BY rep ORDER BY SUM(units) DESC LIMIT 1",
        "string",
        tuple(sorted(totals)),
    )


def _q_units_rep_product(rng: np.random.Generator, rows: list[Row]) -> Question:
    r = rows[int(rng.integers(len(rows)))]
    return (
        f"How many units of {r.product} did {r.rep} sell in total?",
        f"SELECT SUM(units) FROM orders WHERE rep = '{r.rep}' AND product = '{r.product}'",
        "numeric",
        (),
    )


QUESTIONS: tuple[Callable[[np.random.Generator, list[Row]], Question | None], ...] = (
    _UNITS_REGION,
    _COUNT_PRODUCT,
    _REVENUE_REP,
    _MAX_PRICE_REGION,
    _q_top_rep_units,
    _q_units_rep_product,
)


def _draw(rng: np.random.Generator, lo: int = 12, hi: int = 16) -> tuple[list[Row], Question]:
    while True:
        rows = make_rows(rng, lo, hi)
        q = QUESTIONS[int(rng.integers(len(QUESTIONS)))](rng, rows)
        if q is not None:
            return rows, q


def _goal(family: str, goal_id: str, rows: list[Row], question: Question) -> Goal:
    """The goal of one drawn table and question: a db goal (``tg_single_db``) or a file goal."""
    text, query, value_kind, choices = question
    sql = rows_sql(rows)
    prompt = f"The table `orders` below lists sales orders:\n\n{rows_table(rows)}\n\n{text}"
    kind: AnswerKind
    tools: tuple[str, ...]
    out: str | None
    if family == "tg_single_db":
        kind, tools, out = "db", ("sql", "calculator"), None
    else:
        prompt += f" Then write the answer (just the value) to a file named {OUTPUT_FILE}."
        kind, tools, out = "file", ("sql", "calculator", "write_file"), OUTPUT_FILE
    return Goal(
        family=family,
        goal_id=goal_id,
        prompt=prompt,
        expected=query_value(sql, query),
        answer_kind=kind,
        value_kind=value_kind,
        choices=choices,
        tools=tools,
        db_sql=sql,
        db_query=query,
        db_schema=SCHEMA,
        output_file=out,
        rel_tol=0.0 if value_kind == "numeric" else 1e-6,
        abs_tol=0.0 if value_kind == "numeric" else 1e-6,
        steps=rows_read(sql, query, len(rows)),
        template=f"rows{len(rows)}",
    )


def rows_read(sql: str, query: str, n_rows: int) -> int:
    """The rows ``query`` reads: those its ``WHERE`` selects, else all ``n_rows``."""
    if " WHERE " not in query:
        return n_rows
    return int(query_value(sql, "SELECT COUNT(*) FROM orders WHERE " + query.split(" WHERE ", 1)[1]))


def _generate(family: str, seed: int, n: int) -> list[Goal]:
    goals = []
    shares = np.array([w for w, _, _ in SIZES])
    for i in range(n):
        rng = np.random.default_rng([seed, i, _SALT[family]])
        lo, hi = 12, 16
        if family == "tg_sequential_2":
            _, lo, hi = SIZES[int(rng.choice(len(SIZES), p=shares / shares.sum()))]
        rows, question = _draw(rng, lo, hi)
        goals.append(_goal(family, f"{family}-s{seed}-{i:04d}", rows, question))
    return goals


def generate_tg_single_db(seed: int, n: int) -> list[Goal]:
    return _generate("tg_single_db", seed, n)


def generate_tg_sequential_2(seed: int, n: int) -> list[Goal]:
    return _generate("tg_sequential_2", seed, n)
