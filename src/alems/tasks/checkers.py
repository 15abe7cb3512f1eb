"""Answer checkers: the one place that decides whether an answer reaches its goal.

The same functions judge the linear and the agentic mode. They are written for
free-text model answers, never tuned to one model:

* **Final segment.** Both modes are asked to end with a line ``Answer: ...``. If the
  text holds an answer marker (``answer:``, ``answer is``, ``final answer``, ``####``,
  ``\\boxed{...}``), only what follows the *last* marker counts; otherwise the whole text does.
* **Numbers.** The last number in the final segment (an answer sentence restates the
  question's numbers first: "Answer: after 9 days the tank holds 57 litres"). Thousands commas (``12,345``), currency and units (``$12.50``, ``12 km``,
  ``25%``), a leading minus sign (not a hyphen between two numbers) and exponents are
  understood. Numbers are parsed as :class:`~decimal.Decimal`, so big integers compare
  exactly. A tolerance of zero means exact equality; otherwise
  ``|answer - expected| <= max(abs_tol, rel_tol * |expected|)``. If the segment holds no
  digits, simple English number words ("forty-two") are read.
* **Strings.** Both sides are normalised (Unicode compatibility form, accents and case
  dropped, thousands commas removed, punctuation to spaces except a decimal point inside a number, the articles
  a/an/the dropped, whitespace collapsed). The answer passes when the expected value or
  one of its aliases occurs in the final segment as whole words.
* **Closed choices** (a goal with ``choices``: yes/no, a name out of a puzzle): exactly one
  distinct choice must be named in the final segment, and it must be the expected one.
  Naming several candidates is ambiguous and fails.
* **Database answers** are compared with the value the goal's reference query returns on
  the real database, rebuilt from the goal's SQL fixture; **file answers** read the file the
  goal names inside the attempt's sandbox directory and judge its content the same way.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from alems.tasks.base import Goal

#: Largest file the file checker reads (bytes); bigger files fail the check.
MAX_FILE_BYTES = 1_000_000

_MARKERS = re.compile(
    r"(?:final\s+answer\s*(?:is|:)?|answer\s*(?:is|:)|####)",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")

# A number: grouped thousands or plain digits, optional decimals and exponent.
# A minus sign counts only when it is not a hyphen after a word, digit or ')'.
_NUMBER = re.compile(
    r"(?P<sign>(?<![\w)\]])[-\u2212])?"
    r"(?P<body>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d+(?![\w.]))?"
)

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_ARTICLES = {"a", "an", "the"}


# --------------------------------------------------------------------------- segments
def final_segment(answer: str) -> tuple[str, bool]:
    """The part of ``answer`` that states the final answer, and whether a marker was found.

    The marker that occurs last wins: a ``\\boxed{x}`` gives ``x``; an answer marker gives
    the text after it to the end of its line (or the next non-empty line when the marker
    ends its line). Without any marker the whole text counts.
    """
    text = answer or ""
    last_box = None
    for m in _BOXED.finditer(text):
        last_box = m
    last = None
    for m in _MARKERS.finditer(text):
        last = m
    if last_box is not None and (last is None or last_box.start() > last.start()):
        return last_box.group(1), True
    if last is None:
        return text, False
    rest = text[last.end():]
    lines = rest.split("\n")
    first = lines[0].strip(" \t*:")
    if not first and len(lines) > 1:
        first = next((ln.strip(" \t*:") for ln in lines[1:] if ln.strip()), "")
    return first, True


# --------------------------------------------------------------------------- numbers
def _to_decimal(m: re.Match[str]) -> Decimal | None:
    body = m.group("body").replace(",", "")
    if body.startswith("."):
        body = "0" + body
    raw = ("-" if m.group("sign") else "") + body + (m.group("exp") or "")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the regex only admits valid numbers
        return None


def find_numbers(text: str) -> list[Decimal]:
    """Every number in ``text``, in order, as exact decimals."""
    out = []
    for m in _NUMBER.finditer(text or ""):
        d = _to_decimal(m)
        if d is not None:
            out.append(d)
    return out


def parse_number_words(text: str) -> Decimal | None:
    """The first run of English number words in ``text`` ("forty-two" -> 42), or None."""
    tokens = re.findall(r"[a-z]+", (text or "").lower().replace("-", " "))
    total = current = 0
    seen = False
    for tok in tokens:
        if tok in _UNITS:
            current += _UNITS[tok]
            seen = True
        elif tok in _TENS:
            current += _TENS[tok]
            seen = True
        elif tok in _SCALES and seen:
            if tok == "hundred":
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[tok]
                current = 0
        elif tok == "and" and seen:
            continue
        elif seen:
            break
    if not seen:
        return None
    return Decimal(total + current)


def extract_number(answer: str) -> Decimal | None:
    """The number an answer states (see the module docstring for the rule), or None."""
    segment, marked = final_segment(answer)
    nums = find_numbers(segment)
    if nums:
        return nums[-1]
    worded = parse_number_words(segment)
    if worded is not None or not marked:
        return worded
    # A marker followed by no number at all: fall back to the last number in the text.
    nums = find_numbers(answer)
    return nums[-1] if nums else None


def numbers_match(value: Decimal, expected: Decimal, *, rel_tol: float, abs_tol: float) -> bool:
    """Exact when both tolerances are 0, else within ``max(abs_tol, rel_tol*|expected|)``."""
    if rel_tol == 0 and abs_tol == 0:
        return value == expected
    bound = max(Decimal(str(abs_tol)), Decimal(str(rel_tol)) * abs(expected))
    return abs(value - expected) <= bound


def check_numeric(answer: str, expected: str, *, rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> bool:
    """True when the number the answer states matches ``expected`` within tolerance."""
    exp = find_numbers(str(expected))
    if not exp:
        raise ValueError(f"expected value {expected!r} is not a number")
    value = extract_number(answer)
    if value is None:
        return False
    return numbers_match(value, exp[0], rel_tol=rel_tol, abs_tol=abs_tol)


# --------------------------------------------------------------------------- strings
def normalize(text: str, *, drop_articles: bool = True) -> str:
    """Compatibility form, no accents, lower case, thousands commas removed, punctuation to
    spaces (a decimal point inside a number survives), articles dropped, single spaces."""
    t = unicodedata.normalize("NFKD", text or "")
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = t.lower()
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", t)  # 12,345 -> 12345
    t = re.sub(r"(?<=\d)\.(?=\d)", "\x00", t)  # keep 3.14 together
    t = re.sub(r"[^\w\x00]+", " ", t)
    t = t.replace("\x00", ".").replace("_", " ")
    words = [w for w in t.split() if not (drop_articles and w in _ARTICLES)]
    return " ".join(words)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word occurrence of ``phrase`` in ``text``, both normalised. A phrase that is
    only an article (a choice "A") is matched with articles kept."""
    p = normalize(phrase)
    hay = normalize(text)
    if not p:
        p, hay = normalize(phrase, drop_articles=False), normalize(text, drop_articles=False)
        if not p:
            return False
    return re.search(rf"(?<![\w.]){re.escape(p)}(?![\w]|\.\d)", hay) is not None


def check_string(answer: str, expected: str, aliases: tuple[str, ...] | list[str] = ()) -> bool:
    """True when the expected value or an alias occurs, as whole words, in the final segment."""
    segment, _ = final_segment(answer)
    return any(contains_phrase(segment, cand) for cand in (expected, *aliases))


def check_choice(answer: str, expected: str, choices: tuple[str, ...] | list[str]) -> bool:
    """Exactly one distinct choice is named in the final segment, and it is ``expected``."""
    segment, _ = final_segment(answer)
    named = {normalize(c, drop_articles=False) for c in choices if contains_phrase(segment, c)}
    return len(named) == 1 and next(iter(named)) == normalize(expected, drop_articles=False)


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


def check_value(goal: Goal, answer: str, expected: str) -> bool:
    """Judge ``answer`` against ``expected`` the way ``goal.value_kind`` says."""
    if goal.value_kind == "numeric":
        return check_numeric(answer, expected, rel_tol=goal.rel_tol, abs_tol=goal.abs_tol)
    if goal.choices:
        return check_choice(answer, expected, goal.choices)
    return check_string(answer, expected, goal.aliases)


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


def check_answer(goal: Goal, answer: str | None, workdir: str | Path | None = None) -> bool:
    """The checker for every family: dispatch on ``goal.answer_kind``."""
    kind = goal.answer_kind
    if kind == "file":
        if not goal.output_file:
            raise ValueError(f"goal {goal.goal_id} is a file goal without output_file")
        content = read_answer_file(workdir, goal.output_file)
        if content is None:
            return False
        expected = query_value(goal.db_sql, goal.db_query) if goal.db_sql and goal.db_query else goal.expected
        return check_value(goal, content, expected)
    if answer is None:
        return False
    if kind == "db":
        if not (goal.db_sql and goal.db_query):
            raise ValueError(f"goal {goal.goal_id} is a db goal without db_sql/db_query")
        return check_value(goal, answer, query_value(goal.db_sql, goal.db_query))
    if kind == "numeric":
        return check_numeric(answer, goal.expected, rel_tol=goal.rel_tol, abs_tol=goal.abs_tol)
    if kind == "string":
        if goal.choices:
            return check_choice(answer, goal.expected, goal.choices)
        return check_string(answer, goal.expected, goal.aliases)
    raise ValueError(f"unknown answer_kind {kind!r}")
