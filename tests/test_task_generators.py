"""The GSM8K-grade generators, logical depth, and the native dataset formats."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from alems.errors import ConfigError
from alems.tasks import get_family
from alems.tasks.wordproblems import DOMAINS, OPS, QUESTIONS, STEP_RANGES, catalogue, make_problem

GSM = ("gsm8k_basic_local", "gsm8k_multi_step_local")


# --------------------------------------------------------------------------- word problems
@pytest.mark.parametrize("family", GSM)
def test_structure_counts_and_step_ranges(family: str) -> None:
    lo, hi, _, _ = STEP_RANGES[family.removesuffix("_local")]
    cat = catalogue(family.removesuffix("_local"))
    assert len({s.template for s in cat}) == len(cat) >= 30
    assert {s.steps for s in cat} == set(range(lo, hi + 1))  # every step count of the range occurs
    goals = get_family(family).generate(7, 200)
    assert all(lo <= g.steps <= hi for g in goals)
    assert len({g.template for g in goals}) >= 30  # 200 goals already show 30+ distinct structures
    assert {g.template.split("/")[0] for g in goals} == set(DOMAINS)
    # the recorded steps are the structure's own count
    for g in goals:
        domain, ops, q = g.template.split("/")
        assert g.steps == sum(OPS[o] for o in ops.split("+")) + QUESTIONS[q]


@pytest.mark.parametrize("family", GSM)
def test_word_problems_are_integer_deterministic_and_prefix_stable(family: str) -> None:
    fam = get_family(family)
    a, b = fam.generate(3, 40), fam.generate(3, 15)
    assert a[:15] == b
    assert a == fam.generate(3, 40)
    assert fam.generate(4, 5) != a[:5]
    for g in a:
        assert re.fullmatch(r"[1-9]\d*", g.expected), g  # a positive integer
        assert g.answer_kind == "numeric" and g.tools == ("calculator",)
        assert g.prompt.endswith("?")


def test_problems_mix_quantity_kinds_and_carry_irrelevant_sentences() -> None:
    goals = get_family("gsm8k_multi_step_local").generate(0, 200) + get_family("gsm8k_basic_local").generate(
        0, 200
    )
    text = " ".join(g.prompt for g in goals)
    for cue in (
        "$",
        "%",
        "per hour",
        "a third",
        "two thirds",
        "litre",
        "hour",
        "dozen",
        "millilitres",
        "minutes",
    ):
        assert cue in text, cue
    ops = Counter(o for g in goals for o in g.template.split("/")[1].split("+"))
    assert set(ops) == set(OPS)
    # every problem has at least one sentence that carries no information: more
    # sentences than its operations, the opening and the question account for
    for g in goals:
        n_ops = len(g.template.split("/")[1].split("+"))
        sentences = [s for s in re.split(r"(?<=[.?])\s+", g.prompt) if s]
        q = g.template.split("/")[2]
        q_sentences = 2 if q in ("short", "each", "compare") else 1
        assert len(sentences) >= 1 + n_ops + q_sentences + 1, g.prompt


def test_answers_follow_from_the_story() -> None:
    """Re-solve the money stories of one simple structure by reading the numbers back."""
    hits = 0
    for i in range(400):
        p = make_problem(np.random.default_rng([5, i, 11]), "gsm8k_basic")
        if p.template != "money/gain_rate/now":
            continue
        start = int(re.search(r"has \$(\d+) saved", p.text).group(1))
        k, r = map(int, re.search(r"works (\d+) hours at a cafe and is paid \$(\d+)", p.text).groups())
        assert p.answer == start + k * r
        hits += 1
    assert hits >= 1


# --------------------------------------------------------------------------- logical depth
def test_logical_reasoning_records_depth_and_form() -> None:
    goals = get_family("logical_reasoning_local").generate(0, 120)
    kinds = Counter(g.template.split("_")[0] for g in goals)
    assert set(kinds) == {"ordering", "syllogism", "conditional", "elimination"}
    for g in goals:
        assert g.steps is not None and 1 <= g.steps <= 5, g
        if g.template.startswith(("ordering_top", "ordering_bottom")):
            assert g.steps == g.prompt.count(" than ")  # every comparison of the chain is needed
        if g.template == "elimination":
            assert g.steps == g.prompt.count("is not in the")
        if g.template.startswith("conditional"):
            assert g.steps == 2


def test_calc_goals_record_operators_digits_and_spread_difficulty() -> None:
    goals = get_family("tg_single_calc").generate(0, 400)
    shapes = {"ops1", "ops2", "product", "product_plus", "diff_products", "power", "sum", "grouped"}
    levels = {"easy": 0, "hard": 0}
    for g in goals:
        shape, digits = g.template.split("/d")
        numbers = re.findall(r"\d+", g.prompt.split("value of ", 1)[1].split(". Give")[0])
        assert shape in shapes and int(digits) == max(len(x) for x in numbers), g
        ops = re.findall(r"\^|[-+×]", g.prompt.split("value of ", 1)[1])
        assert g.steps == len(ops) >= 1, g
        assert int(g.expected) >= 0 or shape not in ("ops1", "ops2")
        levels["easy" if shape == "ops1" and int(digits) <= 2 else "hard"] += 1
    # about 30 % one operation on 1-2-digit numbers (level 1; level 2 may also draw 2 digits)
    assert 0.25 <= levels["easy"] / len(goals) <= 0.45, levels
    assert sum(int(g.template.split("/d")[1]) >= 5 for g in goals) / len(goals) > 0.2  # large integers stay


def test_small_calc_goals_are_right() -> None:
    for g in get_family("tg_single_calc").generate(1, 200):
        if g.template.startswith("ops"):
            expr = g.prompt.split("value of ", 1)[1].split(". Give")[0].replace("×", "*")
            assert eval(expr, {"__builtins__": {}}) == int(g.expected), g


def test_sequential_tables_spread_their_size_and_record_rows_read() -> None:
    goals = get_family("tg_sequential_2").generate(0, 300)
    sizes = [int(g.template.removeprefix("rows")) for g in goals]
    assert {"small": sum(s <= 5 for s in sizes), "large": sum(s >= 12 for s in sizes)} == {
        "small": pytest.approx(0.4 * 300, abs=30),
        "large": pytest.approx(0.3 * 300, abs=30),
    }
    for g, n in zip(goals, sizes, strict=True):
        assert g.prompt.count(" | ") == 5 * (n + 1)  # the header and n rows of six cells
        assert 1 <= g.steps <= n
    db = get_family("tg_single_db").generate(0, 50)
    assert all(12 <= int(g.template.removeprefix("rows")) <= 16 for g in db)


# --------------------------------------------------------------------------- native formats
def _user(tmp_path, name, **entry):
    return get_family(name, {"user_families": {name: entry}})


def test_gsm8k_format(tmp_path) -> None:
    f = tmp_path / "test.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {
                    "question": "Natalia sold clips to 48 friends in April, and half as many in May. How many in all?",
                    "answer": "In May she sold 48/2 = <<48/2=24>>24.\nIn all 48+24 = <<48+24=72>>72.\n#### 72",
                },
                {
                    "question": "A shop sells 1,000 pens a day. How many in 2 days?",
                    "answer": "1000*2=2000\n#### 2,000",
                },
            ]
        )
        + "\n"
    )
    fam = _user(tmp_path, "gsm", path=str(f), format="gsm8k")
    goals = fam.generate(0, 2)
    by = {g.goal_id: g for g in goals}
    assert set(by) == {"gsm-00001", "gsm-00002"}
    assert by["gsm-00001"].expected == "72" and by["gsm-00002"].expected == "2000"
    assert by["gsm-00001"].answer_kind == "numeric" and by["gsm-00001"].tools == ("calculator",)
    assert fam.check(by["gsm-00001"], "Answer: 72") and not fam.check(by["gsm-00001"], "Answer: 24")
    f.write_text(json.dumps({"question": "q", "answer": "no final line"}) + "\n")
    with pytest.raises(ConfigError, match="####"):
        _user(tmp_path, "gsm", path=str(f), format="gsm8k")


def _rows():
    return [
        {
            "qid": "a1",
            "q": "What gas do plants absorb?",
            "right": "carbon dioxide",
            "opts": ["oxygen", "carbon dioxide", "nitrogen"],
        },
        {"qid": "a2", "q": "How many legs has an insect?", "right": "6", "opts": ["4", "6", "8"]},
    ]


def test_jsonl_format_with_a_column_mapping(tmp_path) -> None:
    f = tmp_path / "mc.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in _rows()) + "\n")
    cols = {"question": "q", "answer": "right", "id": "qid", "choices": "opts"}
    fam = _user(tmp_path, "mc", path=str(f), format="jsonl", columns=cols)
    by = {g.goal_id: g for g in fam.generate(1, 2)}
    g = by["a1"]
    assert (
        g.choices == ("oxygen", "carbon dioxide", "nitrogen")
        and "Choices: oxygen; carbon dioxide; nitrogen" in g.prompt
    )
    assert fam.check(g, "Answer: carbon dioxide") and not fam.check(g, "Answer: oxygen or carbon dioxide")
    assert fam.check(by["a2"], "Answer: 6") and not fam.check(by["a2"], "Answer: 8")
    with pytest.raises(ConfigError, match="columns"):
        _user(tmp_path, "mc", path=str(f), format="jsonl")
    with pytest.raises(ConfigError, match="no column"):
        _user(
            tmp_path, "mc", path=str(f), format="jsonl", columns={"question": "question", "answer": "right"}
        )


def test_parquet_format_with_choice_columns(tmp_path) -> None:
    import pandas as pd

    rows = [
        {
            "question": "Largest planet?",
            "correct_answer": "Jupiter",
            "distractor1": "Mars",
            "distractor2": "Venus",
        },
        {
            "question": "Boiling point of water at sea level in C?",
            "correct_answer": "100",
            "distractor1": "90",
            "distractor2": "120",
        },
    ]
    f = tmp_path / "sciq.parquet"
    pd.DataFrame(rows).to_parquet(f)
    cols = {
        "question": "question",
        "answer": "correct_answer",
        "choices": ["correct_answer", "distractor1", "distractor2"],
    }
    fam = _user(tmp_path, "sciq", path=str(f), format="parquet", columns=cols)
    by = {g.goal_id: g for g in fam.generate(0, 2)}
    assert set(by) == {"sciq-00001", "sciq-00002"}
    g = by["sciq-00001"]
    assert g.expected == "Jupiter" and fam.check(g, "Answer: Jupiter") and not fam.check(g, "Answer: Mars")
    # without choices a numeric answer is judged as a number
    fam2 = _user(
        tmp_path,
        "sciq2",
        path=str(f),
        format="parquet",
        columns={"question": "question", "answer": "correct_answer"},
    )
    g2 = {g.goal_id: g for g in fam2.generate(0, 2)}["sciq2-00002"]
    assert g2.answer_kind == "numeric" and fam2.check(g2, "Answer: 100 degrees")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ConfigError, match="Parquet"):
        _user(tmp_path, "b", path=str(bad), format="parquet", columns=cols)


def test_unknown_format_and_misplaced_columns(tmp_path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"id": "1", "prompt": "p", "answer": "a"}) + "\n")
    with pytest.raises(ConfigError, match="unknown format"):
        _user(tmp_path, "x", path=str(f), format="csv")
    with pytest.raises(ConfigError, match="columns apply"):
        _user(tmp_path, "x", path=str(f), columns={"question": "p", "answer": "a"})
    assert _user(tmp_path, "x", path=str(f)).generate(0, 1)[0].goal_id == "1"  # the default format
