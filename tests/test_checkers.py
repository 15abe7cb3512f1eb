"""The strict checker: a table of tricky outputs, each with its verdict and reason.

Every row is (answer text, expected, goal shape, success, reason). The shapes: ``N`` a
numeric goal, ``S`` a string goal with aliases, ``C`` a closed-choice goal, ``YN`` a
yes/no goal. ``truncated`` rows say the answer's call stopped at its token cap.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from alems.tasks import Goal
from alems.tasks.checkers import (
    REASONS,
    Verdict,
    answer_segment,
    extract_number,
    judge,
    judge_text,
    read_number,
)

NAMES = ("Alice", "Bruno", "Carmen")
CITIES = ("Sydney", "Melbourne", "Canberra", "Perth")


def goal(shape: str, expected: str) -> Goal:
    if shape == "N":
        return Goal("t", "g", "p", expected, "numeric", value_kind="numeric")
    if shape == "NX":  # exact big integers
        return Goal("t", "g", "p", expected, "numeric", value_kind="numeric", rel_tol=0, abs_tol=0)
    if shape == "S":
        return Goal("t", "g", "p", expected, "string", aliases=("Leonardo", "da Vinci"))
    if shape == "SC":  # a string goal whose other candidates are known
        return Goal("t", "g", "p", expected, "string", choices=CITIES)
    if shape == "C":
        return Goal("t", "g", "p", expected, "string", choices=NAMES)
    if shape == "YN":
        return Goal("t", "g", "p", expected, "string", choices=("yes", "no"))
    raise ValueError(shape)


CASES = [
    # --- the cases the issue measured on the old checker
    ("Answer: Sydney, Melbourne or Canberra", "Canberra", "S", False, "ambiguous"),
    ("Answer: Sydney, Melbourne or Canberra", "Canberra", "SC", False, "ambiguous"),
    ("Answer: It is not Canberra; it is Sydney.", "Canberra", "SC", False, "negated"),
    ("Answer: It is not Canberra; it is Sydney.", "Canberra", "S", False, "negated"),
    ("The capital is Sydney. Many think Canberra.", "Canberra", "SC", False, "no_marker"),
    ("Answer: I am not sure\nLater I counted 39 of them.", "39", "N", False, "wrong"),
    ("36, 39", "39", "N", False, "no_marker"),
    ("Answer: 36, 39", "39", "N", False, "ambiguous"),
    ("The answer is 39. Check: 39+1=40", "39", "N", True, "correct"),
    # --- plain and marked numbers
    ("Answer: 42", "42", "N", True, "correct"),
    ("answer: 42", "42", "N", True, "correct"),
    ("ANSWER:42", "42", "N", True, "correct"),
    ("Final answer: 42", "42", "N", True, "correct"),
    ("The final answer is 42.", "42", "N", True, "correct"),
    ("#### 72", "72", "N", True, "correct"),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72", "N", True, "correct"),
    ("\\boxed{56} is my result", "56", "N", True, "correct"),
    ("Answer: 317\nWait, recomputing: \\boxed{930}", "930", "N", True, "correct"),  # the last marker wins
    ("\\boxed{930}. Checking again... Answer: 317", "317", "N", True, "correct"),
    ("Answer:\n\n  88", "88", "N", True, "correct"),
    ("Answer: forty-two", "42", "N", True, "correct"),
    ("Answer: 19.0", "19", "N", True, "correct"),
    ("Answer: 19.5", "19", "N", False, "wrong"),
    ("Answer: 2019", "19", "N", False, "wrong"),
    ("Answer: 41", "42", "N", False, "wrong"),
    ("It is 42.", "42", "N", False, "no_marker"),
    ("", "42", "N", False, "no_marker"),
    # --- units, currency, separators
    ("Answer: $1,234.50", "1234.5", "N", True, "correct"),
    ("Answer: 1,234", "1234", "N", True, "correct"),
    ("Answer: 12 345 metres", "12345", "N", True, "correct"),
    ("Answer: 480 km", "480", "N", True, "correct"),
    ("Answer: 25%", "25", "N", True, "correct"),
    ("Answer: 75 minutes (1 hour 15 minutes)", "75", "N", True, "correct"),
    ("Answer: -5 degrees", "-5", "N", True, "correct"),
    ("Answer: \u22125", "-5", "N", True, "correct"),
    ("Answer: 1.2e3 litres", "1200", "N", True, "correct"),
    ("Final answer: 121932631112635269", "121932631112635269", "NX", True, "correct"),
    ("Answer: 121932631112635270", "121932631112635269", "NX", False, "wrong"),
    ("Answer: 1.2193263111263527e17", "121932631112635269", "NX", False, "wrong"),
    # --- first number, equations, trailing explanations
    ("Answer: 3 × 4 = 12 apples", "12", "N", True, "correct"),
    ("Answer: 12 + 7 = 19", "19", "N", True, "correct"),
    ("Answer: 57 litres are left after 9 days", "57", "N", True, "correct"),
    ("Answer: 17 bags. She filled 3 trays first.", "17", "N", True, "correct"),
    ("Answer: 17\nExplanation: 3 trays of 12 is 36, minus 19.", "17", "N", True, "correct"),
    ("Answer: after 9 days the tank holds 57 litres", "57", "N", False, "wrong"),  # strict: first number
    # --- hedges, lists, negations of numbers
    ("Answer: 39 or 40", "39", "N", False, "ambiguous"),
    ("Answer: either 39 or maybe 40", "39", "N", False, "ambiguous"),
    ("Answer: 39-40", "39", "N", False, "ambiguous"),
    ("Answer: 39 to 40 apples", "39", "N", False, "ambiguous"),
    ("Answer: 12 apples and 3 pears", "12", "N", False, "ambiguous"),
    ("Answer: not 40", "40", "N", False, "negated"),
    ("Answer: probably 39", "39", "N", True, "correct"),
    ("Answer: I am not sure, maybe 39", "39", "N", True, "correct"),
    ("Answer: I don't know", "39", "N", False, "wrong"),
    ("Answer: 39, 39", "39", "N", True, "correct"),  # repeating the same value is not a list of candidates
    # --- markdown
    ("**Answer:** 42", "42", "N", True, "correct"),
    ("**Answer**: 42", "42", "N", True, "correct"),
    ("### Working\n- 6 × 7 = 42\n\n**Final answer: 42**", "42", "N", True, "correct"),
    ("Answer: `42`", "42", "N", True, "correct"),
    ("Answer: **Canberra**", "Canberra", "SC", True, "correct"),
    # --- strings with aliases, accents, whole words
    ("Answer: Canberra", "Canberra", "SC", True, "correct"),
    ("Answer: canberra!", "Canberra", "SC", True, "correct"),
    ("Answer: The capital of Australia is Canberra.", "Canberra", "SC", True, "correct"),
    ("Answer: Canberraville", "Canberra", "SC", False, "wrong"),
    ("Answer: Sydney", "Canberra", "SC", False, "wrong"),
    ("Answer: Sydney, not Canberra", "Canberra", "SC", False, "negated"),
    ("Answer: Canberra, not Sydney", "Canberra", "SC", True, "correct"),
    ("Answer: Canberra or Sydney", "Canberra", "SC", False, "ambiguous"),
    ("Answer: Canberra. Sydney is larger but is not the capital.", "Canberra", "SC", True, "correct"),
    ("Answer: Canberra, Sydney is larger", "Canberra", "SC", False, "ambiguous"),
    ("Answer: St. Petersburg", "St. Petersburg", "S", True, "correct"),
    ("Answer: Washington, D.C.", "Washington", "S", True, "correct"),
    ("Answer: da Vinci", "Leonardo da Vinci", "S", True, "correct"),
    ("Answer: It was painted by Leonardo da Vinci.", "Leonardo da Vinci", "S", True, "correct"),
    ("Answer: Michelangelo or Leonardo", "Leonardo da Vinci", "S", False, "ambiguous"),
    ("Answer: São Paulo", "Sao Paulo", "S", True, "correct"),
    ("Answer: 1000", "100", "S", False, "wrong"),
    # --- closed choices
    ("Answer: Alice", "Alice", "C", True, "correct"),
    ("Bruno is taller than Carmen.\nAnswer: Alice", "Alice", "C", True, "correct"),
    ("Answer: Alice or Bruno", "Alice", "C", False, "ambiguous"),
    ("Answer: Alice and Bruno", "Alice", "C", False, "ambiguous"),
    ("Answer: Bruno", "Alice", "C", False, "wrong"),
    ("Answer: not Alice", "Alice", "C", False, "negated"),
    ("Alice is the tallest.", "Alice", "C", False, "no_marker"),
    # --- yes / no
    ("Answer: No, it does not follow.", "no", "YN", True, "correct"),
    ("Answer: It is not certain, so no.", "no", "YN", True, "correct"),
    ("Answer: Yes... no, wait.", "no", "YN", False, "ambiguous"),
    ("Answer: yes", "no", "YN", False, "wrong"),
    ("Answer: Nobody knows", "no", "YN", False, "wrong"),
    ("Answer: yes or no", "yes", "YN", False, "ambiguous"),
    ("Answer: **Yes**", "yes", "YN", True, "correct"),
]

TRUNCATED = [
    ("Let me think. First, 3 trays of 12", "36", "N", False, "truncated"),  # cut before any marker
    ("Working...\nAnswer: 12", "1234", "N", False, "truncated"),  # the answer line itself was cut
    ("Answer: 36\nBecause 3 trays of 12 cookies ma", "36", "N", True, "correct"),  # cut after a complete line
    ("Answer: 35\nBecause 3 trays of 12 cookies ma", "36", "N", False, "wrong"),
]


def test_the_table_is_big_and_covers_every_reason() -> None:
    assert len(CASES) + len(TRUNCATED) >= 60
    seen = {r for *_, r in CASES} | {r for *_, r in TRUNCATED}
    assert seen == set(REASONS)


@pytest.mark.parametrize(("answer", "expected", "shape", "success", "reason"), CASES)
def test_checker_table(answer: str, expected: str, shape: str, success: bool, reason: str) -> None:
    v = judge(goal(shape, expected), answer)
    assert (v.success, v.reason) == (success, reason), (answer, v)


@pytest.mark.parametrize(("answer", "expected", "shape", "success", "reason"), TRUNCATED)
def test_truncated_answers(answer: str, expected: str, shape: str, success: bool, reason: str) -> None:
    v = judge(goal(shape, expected), answer, truncated=True)
    assert (v.success, v.reason) == (success, reason), (answer, v)
    # without the cap the same texts are judged on their content
    assert judge(goal(shape, expected), answer).reason != "truncated"


def test_extracted_value_is_reported() -> None:
    assert judge(goal("N", "1234"), "Answer: $1,234").extracted == "1234"
    assert judge(goal("N", "39"), "Answer: 36, 39").extracted == "36"
    assert judge(goal("SC", "Canberra"), "Answer: Canberra").extracted == "Canberra"
    assert judge(goal("N", "7"), "no marker 7").extracted is None


def test_verdict_is_consistent() -> None:
    with pytest.raises(ValueError):
        Verdict(True, "wrong")
    with pytest.raises(ValueError):
        Verdict(False, "maybe")
    assert Verdict(True, "correct", "5").to_dict() == {"success": True, "reason": "correct", "extracted": "5"}


def test_segment_and_number_helpers() -> None:
    assert answer_segment("blah\nAnswer: Paris\nmore").text == "Paris"
    assert answer_segment("Answer: Paris").complete is False  # nothing follows: could have been cut
    assert answer_segment("Answer: Paris\n").complete is True
    assert answer_segment("no marker").marked is False
    assert read_number("3 × 4 = 12").value == Decimal("12")
    assert read_number("36, 39").reason == "ambiguous"
    assert extract_number("Answer: 36, 39") is None
    assert extract_number("no marker 5") is None
    assert extract_number("Answer: 1,000,000 grains") == Decimal("1000000")


def test_bad_expected_number_is_an_error() -> None:
    with pytest.raises(ValueError, match="is not a number"):
        judge_text("Answer: 1", "abc", value_kind="numeric")


def test_tolerance() -> None:
    assert judge_text("Answer: 3.1416", "3.14159", value_kind="numeric", rel_tol=1e-4, abs_tol=0).success
    assert not judge_text("Answer: 3.15", "3.14159", value_kind="numeric", rel_tol=1e-4, abs_tol=0).success
    assert judge_text("Answer: 0.0004", "0", value_kind="numeric", rel_tol=0, abs_tol=1e-3).success


def test_file_contents_need_no_marker(tmp_path) -> None:
    g = Goal("t", "g", "p", "47", "file", value_kind="numeric", output_file="out.txt")
    (tmp_path / "out.txt").write_text("47\n")
    assert judge(g, None, tmp_path).reason == "correct"
    (tmp_path / "out.txt").write_text("The total is 47.\nAnswer: 48")
    assert judge(g, None, tmp_path).reason == "wrong"  # a marker in the file still decides
    assert judge(g, None, tmp_path / "nowhere").reason == "wrong"
