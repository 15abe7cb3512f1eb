"""Answer checkers: the one place that decides whether an answer reaches its goal, and why.

The same functions judge the linear and the agentic mode. They are strict and explained:
every judgement is a :class:`Verdict` ``(success, reason, extracted)`` with ``reason`` one
of :data:`REASONS`:

``correct``    the final answer matches the goal;
``wrong``      a final answer is there and does not match (or states nothing usable);
``no_marker``  the text has no answer marker, so it states no final answer;
``ambiguous``  the final answer names several candidates (``36, 39``; ``Sydney or Canberra``);
``negated``    the expected value is named only under a negation (``not Canberra``);
``truncated``  the call that wrote the answer stopped at its token cap before the answer
               line was complete (the caller says whether the cap was hit).

Rules:

* **Marker.** The final answer is what follows the *last* answer marker and only that:
  ``Answer:`` (also ``Final answer:``, ``answer is``, markdown ``**Answer:**``), ``####``
  (GSM8K) or ``\\boxed{...}``. The answer segment is the rest of the marker's line (or the
  next non-empty line when the marker ends its line). Text without a marker fails with
  ``no_marker``; file contents (a file goal's output) are the exception: there the whole
  file is the answer when it holds no marker.
* **Numbers.** The *first* number of the segment's first sentence, with thousands
  separators (``12,345``, ``12 345``), currency and units (``$12.50``, ``12 km``, ``25%``),
  a leading minus sign and exponents understood, compared as exact decimals (a tolerance
  of zero means exact; otherwise ``|x - expected| <= max(abs_tol, rel_tol*|expected|)``).
  Parenthesised asides are ignored. An equation ``3 × 4 = 12`` states its result (after
  ``=``). A second, different number joined to the first as a list or alternative
  (``36, 39``; ``39 or 40``; ``39-40``) is ``ambiguous``; a negation right before the number
  (``not 40``) is ``negated``. With no digits, English number words ("forty-two") count.
* **Strings.** Both sides are normalised (Unicode compatibility form, accents and case
  dropped, thousands commas removed, punctuation to spaces except a decimal point, the
  articles a/an/the dropped). The expected value or an alias must occur as whole words in
  the segment's first sentence (a trailing explanation is not the answer), not under a
  negation in its clause (``It is not Canberra; it is Sydney``
  fails as ``negated``). Naming another candidate (any of the goal's ``choices`` besides
  the expected one) or offering alternatives with ``or`` is ``ambiguous``. A candidate
  named under a negation does not count as named.
* **Database answers** are judged against the value the goal's reference query returns
  on the real database, rebuilt from the goal's SQL fixture; **file answers** read the
  file the goal names inside the attempt's sandbox and judge its content the same way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal, Protocol

from alems.tasks.answers import (
    REASONS,
    NumberReading,
    Segment,
    Verdict,
    answer_segment,
    check_choice,
    check_numeric,
    check_string,
    contains_phrase,
    extract_number,
    final_segment,
    find_numbers,
    judge_choice_segment,
    judge_number_segment,
    judge_open_segment,
    judge_string_segment,
    judge_text,
    normalize,
    numbers_match,
    parse_number_words,
    read_number,
)

#: Largest file the file checker reads (bytes); bigger files fail the check.
MAX_FILE_BYTES = 1_000_000

AnswerKind = Literal["numeric", "string", "db", "file"]
ValueKind = Literal["numeric", "string"]
AnswerFormat = Literal["numeric", "string", "choice", "open"]
"""How a goal's text answer is judged: a ValueKind, or ``choice`` (a lettered option:
:func:`judge_choice_segment`) or ``open`` (any accepted answer, NQ-open style:
:func:`judge_open_segment`)."""
ANSWER_KINDS: tuple[str, ...] = ("numeric", "string", "db", "file")
"""What a goal's answer is compared with (:class:`alems.tasks.base.Goal`, ``answer_kind``)."""
VALUE_KINDS: tuple[str, ...] = ("numeric", "string")
"""How an answer value is read: as a number or as words (``value_kind``; ``answer_kind`` of text goals)."""


class CheckedGoal(Protocol):
    """What the checker reads of a goal: the fields of :class:`alems.tasks.base.Goal` it
    judges by. The checker depends on this shape only, never on the task records."""

    @property
    def goal_id(self) -> str: ...
    @property
    def expected(self) -> str: ...
    @property
    def answer_kind(self) -> str: ...
    @property
    def value_kind(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def choices(self) -> tuple[str, ...]: ...
    @property
    def rel_tol(self) -> float: ...
    @property
    def abs_tol(self) -> float: ...
    @property
    def db_sql(self) -> str | None: ...
    @property
    def db_query(self) -> str | None: ...
    @property
    def output_file(self) -> str | None: ...


# --------------------------------------------------------------------------- db / file
def query_value(db_sql: str, query: str) -> str:
    """Run the reference ``query`` on a fresh in-memory database built from ``db_sql``
    and return its single value as text."""
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(db_sql)
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    if len(rows) != 1 or len(rows[0]) != 1:
        raise ValueError(f"reference query must return one value, got {rows!r}")
    value = rows[0][0]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def read_answer_file(workdir: str | Path | None, name: str) -> str | None:
    """The text of ``workdir/name`` if it is a regular file inside ``workdir``, else None."""
    if workdir is None:
        return None
    root = Path(workdir).resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        return None
    if path.stat().st_size > MAX_FILE_BYTES:
        return None
    return path.read_text(encoding="utf-8", errors="replace")


def _expected_of(goal: CheckedGoal) -> str:
    if goal.db_sql and goal.db_query and goal.answer_kind in ("db", "file"):
        return query_value(goal.db_sql, goal.db_query)
    return goal.expected


def _judge_goal_text(
    goal: CheckedGoal, text: str, *, truncated: bool, require_marker: bool = True
) -> Verdict:
    """:func:`judge_text` with the goal's expected value, kinds, candidates and tolerances."""
    return judge_text(
        text,
        _expected_of(goal),
        value_kind=goal.value_kind,
        aliases=tuple(goal.aliases),
        choices=tuple(goal.choices),
        rel_tol=goal.rel_tol,
        abs_tol=goal.abs_tol,
        truncated=truncated,
        require_marker=require_marker,
    )


def judge(
    goal: CheckedGoal, answer: str | None, workdir: str | Path | None = None, *, truncated: bool = False
) -> Verdict:
    """The checker for every family, with its reason: dispatch on ``goal.answer_kind``.

    ``truncated`` says the call that produced ``answer`` stopped at its token cap. For a
    file goal the file in ``workdir`` is judged (a missing file is ``wrong``)."""
    kind = goal.answer_kind
    if kind not in ANSWER_KINDS:
        raise ValueError(f"unknown answer_kind {kind!r}")
    if kind == "db" and not (goal.db_sql and goal.db_query):
        raise ValueError(f"goal {goal.goal_id} is a db goal without db_sql/db_query")
    if kind == "file":
        if not goal.output_file:
            raise ValueError(f"goal {goal.goal_id} is a file goal without output_file")
        content = read_answer_file(workdir, goal.output_file)
        if content is None:
            return Verdict(False, "truncated" if truncated else "wrong", None)
        return _judge_goal_text(goal, content, truncated=truncated, require_marker=False)
    if answer is None:
        return Verdict(False, "truncated" if truncated else "wrong", None)
    return _judge_goal_text(goal, answer, truncated=truncated)


def check_answer(goal: CheckedGoal, answer: str | None, workdir: str | Path | None = None) -> bool:
    """``judge(goal, answer, workdir).success``."""
    return judge(goal, answer, workdir).success


__all__ = [
    "ANSWER_KINDS",
    "MAX_FILE_BYTES",
    "REASONS",
    "VALUE_KINDS",
    "AnswerFormat",
    "AnswerKind",
    "CheckedGoal",
    "NumberReading",
    "Segment",
    "ValueKind",
    "Verdict",
    "answer_segment",
    "check_answer",
    "check_choice",
    "check_numeric",
    "check_string",
    "contains_phrase",
    "extract_number",
    "final_segment",
    "find_numbers",
    "judge",
    "judge_choice_segment",
    "judge_number_segment",
    "judge_open_segment",
    "judge_string_segment",
    "judge_text",
    "normalize",
    "numbers_match",
    "parse_number_words",
    "query_value",
    "read_answer_file",
    "read_number",
]
