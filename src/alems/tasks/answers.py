"""Judging one answer *text* against an expected value: the final-answer segment after the
last marker, the number it states, the words it names, and the :class:`Verdict` with its
reason. The rules are those of :mod:`alems.tasks.checkers` (its docstring), which applies
them to goals (database and file answers included).
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

REASONS: tuple[str, ...] = ("correct", "wrong", "no_marker", "ambiguous", "negated", "truncated")


@dataclass(frozen=True)
class Verdict:
    """One judgement: did the answer reach the goal, why, and what was read as the answer."""

    success: bool
    reason: str
    extracted: str | None = None

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {self.reason!r}")
        if self.success != (self.reason == "correct"):
            raise ValueError(f"success={self.success} contradicts reason {self.reason!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_MARKERS = re.compile(
    r"(?:\bfinal[*_\s]+answer[*_\s]*(?:is\b|[:=])?|\banswer[*_\s]*(?:is\b\s*:?|[:=])|(?<!#)####(?!#))",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_STRIP = " \t*_`:>#"

# A number: grouped thousands or plain digits, optional decimals and exponent.
# A minus sign counts only when it is not a hyphen after a word, digit or ')'.
_NUMBER = re.compile(
    r"(?P<sign>(?<![\w)\]])[-\u2212])?"
    r"(?P<body>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d+(?![\w.]))?"
)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|[!?]|\n")
# a sentence end in a string answer: not after a short abbreviation ("St. Petersburg", "D.C.")
_STRING_SENTENCE_END = re.compile(r"(?<=\w{4})\.(?=\s+[A-Z])|[!?](?=\s)|\n")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_OPERATOR_NEXT = re.compile(r"^\s*[-+*/×÷x\u2212]\s*[$€£]?\s*\d")
_ALTERNATIVE_NEXT = re.compile(
    r"^\s*[%a-zA-Z$€£]{0,12}\s*(?:,|\bor\b|\band\b|/|-|–|\bto\b)\s*(?:maybe\s+|perhaps\s+)?[$€£]?\s*(?=[-\u2212]?\d)"
)
_NEGATION_WORDS = {"not", "never", "neither", "nor", "isnt", "arent", "wasnt", "cannot", "t", "no"}
_FILLER = {
    "it",
    "is",
    "was",
    "be",
    "maybe",
    "perhaps",
    "possibly",
    "probably",
    "either",
    "i",
    "think",
    "guess",
    "would",
    "say",
    "could",
    "answer",
    "final",
    "s",
}

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_ARTICLES = {"a", "an", "the"}


# --------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class Segment:
    """The answer segment of a text: ``text`` after the last marker, whether a marker was
    found, and whether the segment's line was completed (a newline follows it in the text)."""

    text: str
    marked: bool
    complete: bool


def answer_segment(answer: str) -> Segment:
    """The final-answer segment of ``answer`` (see the module docstring for the rule)."""
    text = answer or ""
    last_box = None
    for m in _BOXED.finditer(text):
        last_box = m
    last = None
    for m in _MARKERS.finditer(text):
        last = m
    if last_box is not None and (last is None or last_box.start() > last.start()):
        return Segment(last_box.group(1), True, True)
    if last is None:
        return Segment(text, False, True)
    rest = text[last.end() :]
    lines = rest.split("\n")
    first = lines[0].strip(_STRIP)
    if first:
        return Segment(first, True, len(lines) > 1)
    for k, ln in enumerate(lines[1:], 1):
        if ln.strip(_STRIP):
            return Segment(ln.strip(_STRIP), True, k < len(lines) - 1)
    return Segment("", True, False)


def final_segment(answer: str) -> tuple[str, bool]:
    """``(segment text, marker found)``: :func:`answer_segment` without the completeness."""
    seg = answer_segment(answer)
    return seg.text, seg.marked


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


def _join_spaced_thousands(text: str) -> str:
    """``12 345`` (space, no-break or thin space between groups of three) -> ``12345``."""
    return re.sub(r"(?<=\d)[ \u00a0\u2009\u202f](?=\d{3}(?!\d))", "", text)


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


def _first_sentence(segment: str) -> str:
    clause = _PARENS.sub(" ", segment.replace("*", " ").replace("`", " "))
    clause = _join_spaced_thousands(clause)
    m = _SENTENCE_END.search(clause)
    return clause[: m.start()] if m else clause


def _words_before(text: str) -> list[str]:
    return normalize(text).split()


@dataclass(frozen=True)
class NumberReading:
    """What a final-answer segment states as a number: the value (None when none) and
    ``reason`` None when usable, else ``ambiguous`` or ``negated``."""

    value: Decimal | None
    reason: str | None = None


def read_number(segment: str) -> NumberReading:
    """The number a final-answer segment states (module docstring, *Numbers*)."""
    clause = _first_sentence(segment)
    matches = list(_NUMBER.finditer(clause))
    if not matches:
        worded = parse_number_words(clause)
        return NumberReading(worded)
    m = matches[0]
    after = clause[m.end() :]
    if _OPERATOR_NEXT.match(after) and "=" in after:
        eq = after.index("=")
        res = _NUMBER.search(after[eq + 1 :])
        if res is not None:
            base = m.end() + eq + 1
            result = _NUMBER.match(clause, base + res.start())
            if result is not None:
                m = result
                after = clause[m.end() :]
    value = _to_decimal(m)
    before = _words_before(clause[: m.start()])
    if any(w in _NEGATION_WORDS for w in before[-2:]):
        return NumberReading(value, "negated")
    alt = _ALTERNATIVE_NEXT.match(after)
    if alt is not None:
        nxt = _NUMBER.match(after, alt.end())
        other = _to_decimal(nxt) if nxt else None
        if other is not None and other != value:
            return NumberReading(value, "ambiguous")
    return NumberReading(value)


def extract_number(answer: str) -> Decimal | None:
    """The number the final answer states, or None (no marker, no number, or unusable)."""
    seg = answer_segment(answer)
    if not seg.marked:
        return None
    reading = read_number(seg.text)
    return reading.value if reading.reason is None else None


def numbers_match(value: Decimal, expected: Decimal, *, rel_tol: float, abs_tol: float) -> bool:
    """Exact when both tolerances are 0, else within ``max(abs_tol, rel_tol*|expected|)``."""
    if rel_tol == 0 and abs_tol == 0:
        return value == expected
    bound = max(Decimal(str(abs_tol)), Decimal(str(rel_tol)) * abs(expected))
    return abs(value - expected) <= bound


def _expected_number(expected: str) -> Decimal:
    exp = find_numbers(_join_spaced_thousands(str(expected)))
    if not exp:
        raise ValueError(f"expected value {expected!r} is not a number")
    return exp[0]


def judge_number_segment(segment: str, expected: str, *, rel_tol: float, abs_tol: float) -> Verdict:
    """Judge an answer segment against a numeric ``expected``."""
    target = _expected_number(expected)
    reading = read_number(segment)
    shown = None if reading.value is None else _show(reading.value)
    if reading.reason is not None:
        return Verdict(False, reading.reason, shown)
    if reading.value is None:
        return Verdict(False, "wrong", None)
    ok = numbers_match(reading.value, target, rel_tol=rel_tol, abs_tol=abs_tol)
    return Verdict(ok, "correct" if ok else "wrong", shown)


def _show(d: Decimal) -> str:
    if d == d.to_integral_value() and abs(d) < Decimal("1e40"):
        return str(int(d))
    return str(d.normalize())


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


def _norm_phrase(phrase: str) -> tuple[str, bool]:
    p = normalize(phrase)
    if p:
        return p, True
    return normalize(phrase, drop_articles=False), False


def _occurrences(text: str, phrase: str) -> list[int]:
    """Word offsets where ``phrase`` occurs as whole words in ``text`` (both normalised)."""
    p, articles_dropped = _norm_phrase(phrase)
    if not p:
        return []
    hay = normalize(text, drop_articles=articles_dropped)
    out = []
    for m in re.finditer(rf"(?<![\w.]){re.escape(p)}(?![\w]|\.\d)", hay):
        out.append(len(hay[: m.start()].split()))
    return out


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word occurrence of ``phrase`` in ``text``, both normalised. A phrase that is
    only an article (a choice "A") is matched with articles kept."""
    return bool(_occurrences(text, phrase))


_CLAUSE_SPLIT = re.compile(r"[,;:!?]|(?<=\w{4})\.(?!\d)|\bbut\b|\bhowever\b|\bwhereas\b|\n", re.IGNORECASE)


def _clauses(segment: str) -> list[str]:
    return [c for c in _CLAUSE_SPLIT.split(segment) if c.strip()]


def _mentions(segment: str, phrase: str, negation_words: set[str]) -> tuple[bool, bool]:
    """(named plainly somewhere, named under a negation somewhere) in ``segment``."""
    plain = negated = False
    articles_dropped = _norm_phrase(phrase)[1]
    for clause in _clauses(segment):
        words = normalize(clause, drop_articles=articles_dropped).split()
        for pos in _occurrences(clause, phrase):
            if any(w in negation_words for w in words[:pos]):
                negated = True
            else:
                plain = True
    return plain, negated


def _offers_alternatives(segment: str, correct: tuple[str, ...]) -> bool:
    """True when the segment offers ``X or Y`` and some alternative is not a correct name."""
    if not re.search(r"\bor\b|/", segment, re.IGNORECASE):
        return False
    parts = re.split(r"\bor\b|/|,|;|\beither\b", segment, flags=re.IGNORECASE)
    for part in parts:
        words = [w for w in normalize(part).split() if w not in _FILLER]
        if not words:
            continue
        if not any(contains_phrase(part, c) for c in correct):
            return True
    return False


def judge_string_segment(
    segment: str,
    expected: str,
    aliases: tuple[str, ...] | list[str] = (),
    choices: tuple[str, ...] | list[str] = (),
) -> Verdict:
    """Judge an answer segment against a string ``expected`` (module docstring, *Strings*)."""
    m = _STRING_SENTENCE_END.search(segment)
    segment = segment[: m.start()] if m else segment  # a trailing explanation is not the answer
    correct = tuple(c for c in (expected, *aliases) if normalize(c, drop_articles=False))
    correct_norm = {normalize(c, drop_articles=False) for c in correct}
    others = [c for c in choices if normalize(c, drop_articles=False) not in correct_norm]
    neg_words = set(_NEGATION_WORDS)
    if any(normalize(c, drop_articles=False) == "no" for c in (*choices, *correct)):
        neg_words.discard("no")
    plain = negated = False
    hit = None
    for c in correct:
        p, n = _mentions(segment, c, neg_words)
        if p and hit is None:
            hit = c
        plain, negated = plain or p, negated or n
    other_named = [
        c
        for c in others
        if _mentions(segment, c, neg_words)[0] and not any(contains_phrase(c, k) for k in correct)
    ]
    if plain:
        if other_named or _offers_alternatives(segment, correct):
            return Verdict(False, "ambiguous", hit)
        return Verdict(True, "correct", hit)
    if negated:
        return Verdict(False, "negated", None)
    return Verdict(False, "wrong", other_named[0] if other_named else (segment.strip() or None))


# --------------------------------------------------------------------------- open-domain QA
def squad_normalize(text: str) -> str:
    """NQ-open's (SQuAD's) answer normalisation: lower case, punctuation removed, the
    articles a/an/the removed, whitespace collapsed."""
    t = (text or "").lower()
    t = "".join(ch for ch in t if ch not in _PUNCTUATION)
    t = re.sub(r"\b(a|an|the)\b", " ", t)
    return " ".join(t.split())


_PUNCTUATION = frozenset(string.punctuation)


def judge_open_segment(segment: str, expected: str, aliases: tuple[str, ...] | list[str] = ()) -> Verdict:
    """Judge an open-domain answer (NQ-open): correct when any accepted answer, normalised
    as the benchmark does (:func:`squad_normalize`), occurs as whole words in the
    normalised first line of the final answer, not under a negation, and the line does not
    offer other alternatives (``X or Y``)."""
    line = segment.strip().splitlines()[0] if segment.strip() else ""
    hay = squad_normalize(line)
    negated = False
    for a in (expected, *aliases):
        na = squad_normalize(a)
        if not na:
            continue
        for m in re.finditer(rf"(?<!\S){re.escape(na)}(?!\S)", hay):
            if any(w in _NEGATION_WORDS for w in hay[: m.start()].split()[-2:]):
                negated = True
                continue
            if _offers_alternatives(line, (expected, *aliases)):
                return Verdict(False, "ambiguous", a)
            return Verdict(True, "correct", a)
    if negated:
        return Verdict(False, "negated", None)
    return Verdict(False, "wrong", line or None)


# --------------------------------------------------------------------------- multiple choice
_LETTER_KEYWORD = re.compile(
    r"\b(?:option|choice|letter|answer)\s*(?:is\s*)?\(?([A-Z])\)?(?![\w'])", re.IGNORECASE
)


def _named_letters(segment: str, letters: str) -> list[tuple[str, int]]:
    """``(letter, position)`` of each option letter the segment names as a label: ``B``,
    ``(B)``, ``B.``, ``B)``, ``B:``, ``option B``, or ``B and C``. A capital followed by a
    lower-case word is an article or a word (``A marsh``), not a label."""
    out: list[tuple[str, int]] = []
    label = rf"(?<![\w'])\(?([{letters}])(?:\)|\]|[.:,](?!\w)|(?=\s*$)|(?=\s+(?:and|or|&)\s)|(?=\s*[-–—(/]))"
    for m in re.finditer(label, segment):
        out.append((m.group(1), m.start(1)))
    bare = segment.strip(" \t*_.()[]:")
    if not out and len(bare) == 1 and bare.upper() in letters:  # a lone lower-case letter: "b"
        out.append((bare.upper(), segment.index(bare)))
    for m in _LETTER_KEYWORD.finditer(segment):
        x = m.group(1).upper()
        if x in letters and all(p != m.start(1) for _, p in out):
            out.append((x, m.start(1)))
    return out


def judge_choice_segment(segment: str, expected: str, options: tuple[str, ...] | list[str]) -> Verdict:
    """Judge a multiple-choice answer: ``expected`` is the letter of the right option
    (``A`` is ``options[0]``). The answer may give the letter or the option's text (or
    both); naming two different options (two letters, or a letter and another option's
    text) is ``ambiguous``; a letter or text only under a negation is ``negated``."""
    letters = "".join(chr(ord("A") + i) for i in range(len(options)))
    if expected not in letters or len(expected) != 1:
        raise ValueError(f"expected must be one of the letters {letters!r}, got {expected!r}")
    line = segment.strip().splitlines()[0] if segment.strip() else ""
    named: set[int] = set()
    negated = False
    for x, pos in _named_letters(line, letters):
        before = normalize(line[:pos]).split()[-2:]
        if any(w in _NEGATION_WORDS for w in before):
            negated = True
        else:
            named.add(ord(x) - ord("A"))
    text_hits = []
    for k, opt in enumerate(options):
        plain, neg = _mentions(line, opt, set(_NEGATION_WORDS))
        if plain:
            text_hits.append(k)
        negated = negated or neg
    # an option whose text lies inside another named option's text is not named by itself
    for k in text_hits:
        if not any(j != k and contains_phrase(options[j], options[k]) for j in text_hits):
            named.add(k)
    want = ord(expected) - ord("A")
    shown = f"{expected}. {options[want]}"
    if named == {want}:
        return Verdict(True, "correct", shown)
    if len(named) > 1:
        return Verdict(False, "ambiguous", ", ".join(letters[k] for k in sorted(named)))
    if named:
        k = next(iter(named))
        return Verdict(False, "wrong", f"{letters[k]}. {options[k]}")
    if negated:
        return Verdict(False, "negated", None)
    return Verdict(False, "wrong", line or None)


def check_numeric(answer: str, expected: str, *, rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> bool:
    """True when the final answer states a number matching ``expected`` within tolerance."""
    return judge_text(answer, expected, value_kind="numeric", rel_tol=rel_tol, abs_tol=abs_tol).success


def check_string(answer: str, expected: str, aliases: tuple[str, ...] | list[str] = ()) -> bool:
    """True when the final answer names ``expected`` or an alias, unambiguously and not negated."""
    return judge_text(answer, expected, aliases=tuple(aliases)).success


def check_choice(answer: str, expected: str, choices: tuple[str, ...] | list[str]) -> bool:
    """True when the final answer names ``expected`` and no other of ``choices``."""
    return judge_text(answer, expected, choices=tuple(choices)).success


def judge_text(
    answer: str | None,
    expected: str,
    *,
    value_kind: str = "string",
    aliases: tuple[str, ...] = (),
    choices: tuple[str, ...] = (),
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-6,
    truncated: bool = False,
    require_marker: bool = True,
) -> Verdict:
    """Judge one free-text answer. ``truncated``: the call that wrote it hit its token cap.
    ``require_marker=False`` reads a marker-less text whole (file contents)."""
    if value_kind == "numeric":
        _expected_number(expected)  # a bad expected value is an error, whatever the answer
    seg = answer_segment(answer or "")
    if truncated and (not seg.marked or not seg.complete):
        return Verdict(False, "truncated", None)
    if not seg.marked and require_marker:
        return Verdict(False, "no_marker", None)
    if value_kind == "numeric":
        return judge_number_segment(seg.text, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    if value_kind == "choice":
        return judge_choice_segment(seg.text, expected, choices)
    if value_kind == "open":
        return judge_open_segment(seg.text, expected, aliases)
    return judge_string_segment(seg.text, expected, aliases, choices)
