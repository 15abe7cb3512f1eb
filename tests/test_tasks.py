"""Task families and checkers: tricky answers, determinism, data files, user families."""

from __future__ import annotations

import json
import sqlite3

import pytest

from alems.errors import ConfigError
from alems.tasks import FAMILIES, Goal, get_family, load_jsonl_family, materialise_db
from alems.tasks.checkers import (
    check_answer,
    check_choice,
    check_numeric,
    check_string,
    normalize,
    query_value,
)

# --------------------------------------------------------------------------- checkers
# The table of tricky outputs is tests/test_checkers.py.


# --------------------------------------------------------------------------- string checker
def test_normalize() -> None:
    assert normalize("  The Café,  au-lait! ") == "cafe au lait"
    assert normalize("H₂O") == "h2o"
    assert normalize("3.14 and 12,345 or 1,2") == "3.14 and 12345 or 1 2"


# --------------------------------------------------------------------------- db and file checkers
def _db_goal(kind: str = "db", **kw) -> Goal:
    sql = "CREATE TABLE t (name TEXT, v INTEGER);INSERT INTO t VALUES ('a', 10), ('b', 32), ('c', 5);"
    return Goal(
        family="x",
        goal_id="g",
        prompt="p",
        expected="999",
        answer_kind=kind,
        value_kind="numeric",
        rel_tol=0,
        abs_tol=0,
        db_sql=sql,
        db_query="SELECT SUM(v) FROM t",
        output_file="out.txt" if kind == "file" else None,
        **kw,
    )


def test_db_checker_uses_the_real_database() -> None:
    g = _db_goal()
    assert query_value(g.db_sql, g.db_query) == "47"
    # the stored expected value is ignored: the real database decides
    assert check_answer(g, "Answer: 47")
    assert not check_answer(g, "Answer: 999")
    assert not check_answer(g, None)


def test_file_checker_reads_the_sandbox(tmp_path) -> None:
    g = _db_goal("file")
    assert not check_answer(g, "Answer: 47", tmp_path)  # no file written
    assert not check_answer(g, "Answer: 47", None)
    (tmp_path / "out.txt").write_text("46")
    assert not check_answer(g, "Answer: 47", tmp_path)  # the file decides, not the text answer
    (tmp_path / "out.txt").write_text("The sum is 47\n")
    assert check_answer(g, None, tmp_path)


def test_file_checker_ignores_symlink_escape(tmp_path) -> None:
    g = _db_goal("file")
    outside = tmp_path / "outside.txt"
    outside.write_text("47")
    box = tmp_path / "box"
    box.mkdir()
    (box / "out.txt").symlink_to(outside)
    assert not check_answer(g, None, box)


def test_goal_validation() -> None:
    with pytest.raises(ValueError, match="answer_kind"):
        Goal(family="x", goal_id="g", prompt="p", expected="1", answer_kind="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs db_sql"):
        Goal(family="x", goal_id="g", prompt="p", expected="1", answer_kind="db")
    with pytest.raises(ValueError, match="needs output_file"):
        Goal(family="x", goal_id="g", prompt="p", expected="1", answer_kind="file")


# --------------------------------------------------------------------------- families
@pytest.mark.parametrize("name", FAMILIES)
def test_family_is_deterministic_and_prefix_stable(name: str, benchmark_data, monkeypatch) -> None:
    monkeypatch.chdir(benchmark_data.parents[1])
    fam = get_family(name)
    a = fam.generate(7, 12)
    b = fam.generate(7, 12)
    assert a == b
    assert fam.generate(7, 5) == a[:5]
    assert len({g.goal_id for g in a}) == 12
    c = fam.generate(8, 12)
    assert [g.prompt for g in c] != [g.prompt for g in a]
    assert all(g.family == name for g in a)


@pytest.mark.parametrize("name", FAMILIES)
def test_expected_answers_pass_their_own_checker(name: str, tmp_path, benchmark_data) -> None:
    fam = get_family(name, {"study": {"benchmarks_dir": str(benchmark_data)}})
    for g in fam.generate(3, 40 if fam.size is None else min(40, fam.size)):
        if g.answer_kind == "file":
            box = tmp_path / g.goal_id
            box.mkdir()
            (box / g.output_file).write_text(g.expected)
            assert fam.check(g, None, box), g
            assert not fam.check(g, None, tmp_path / "missing"), g
        else:
            assert fam.check(g, f"Answer: {g.expected}"), g
            assert not fam.check(g, "Answer: 987654321987"), g


def test_groups_and_unknown_family() -> None:
    groups = {n: get_family(n).group for n in FAMILIES}
    assert [n for n, g in groups.items() if g == "tool"] == [
        "tg_single_calc",
        "tg_single_db",
        "tg_sequential_2",
    ]
    with pytest.raises(ConfigError, match="unknown task family 'nope'") as exc:
        get_family("nope")
    assert "factual_qa" in exc.value.fix


def test_curated_sets_have_at_least_40_items_with_answers() -> None:
    for name in ("factual_qa_local", "science_qa_local"):
        fam = get_family(name)
        assert fam.size is not None and fam.size >= 40
        goals = fam.generate(0, fam.size)
        assert len({g.goal_id for g in goals}) == fam.size
        assert all(g.prompt.endswith("?") and g.expected for g in goals)
        with pytest.raises(ConfigError, match=f"has {fam.size} items"):
            fam.generate(0, fam.size + 1)


def test_arithmetic_families_have_integer_answers() -> None:
    for name in ("gsm8k_basic_local", "gsm8k_multi_step_local"):
        for g in get_family(name).generate(5, 60):
            assert int(g.expected) >= 0
            assert g.answer_kind == "numeric" and "calculator" in g.tools
    calc = get_family("tg_single_calc").generate(0, 30)
    assert all(g.rel_tol == 0 and g.abs_tol == 0 for g in calc)
    assert max(len(g.expected) for g in calc) > 16  # beyond float precision


def test_calc_expected_matches_the_expression() -> None:
    for g in get_family("tg_single_calc").generate(1, 30):
        expr = g.prompt.split("value of ")[1].split(". Give")[0].replace("×", "*").replace("^", "**")
        assert str(eval(expr, {"__builtins__": {}})) == g.expected  # test-side only: trusted text


def test_db_goals_build_a_real_database(tmp_path) -> None:
    for name in ("tg_single_db", "tg_sequential_2"):
        for g in get_family(name).generate(2, 10):
            path = materialise_db(g, tmp_path / f"{g.goal_id}.sqlite")
            con = sqlite3.connect(path)
            (value,) = con.execute(g.db_query).fetchone()
            con.close()
            assert str(value) == g.expected
            # the task text shows the same rows as the database
            n_rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM orders").fetchone()[0]
            assert g.prompt.count("\n") >= n_rows
            if g.value_kind == "string":
                assert g.expected in g.choices
    seq = get_family("tg_sequential_2").generate(0, 3)
    assert all(
        g.answer_kind == "file" and g.output_file == "result.txt" and "write_file" in g.tools for g in seq
    )


def test_logic_answers_are_definite_choices() -> None:
    goals = get_family("logical_reasoning_local").generate(0, 80)
    assert all(g.choices and g.expected in g.choices for g in goals)
    assert {g.expected for g in goals} >= {"yes", "no"}
    assert not any(set(g.choices) == {"yes", "no"} and "Answer yes or no" not in g.prompt for g in goals)


# --------------------------------------------------------------------------- user families
def test_user_jsonl_family(tmp_path) -> None:
    p = tmp_path / "mine.jsonl"
    items = [
        {"id": "q1", "prompt": "How many legs has a spider?", "answer": 8, "aliases": ["eight"]},
        {"id": "q2", "prompt": "Capital of France?", "answer": "Paris"},
        {"id": "q3", "prompt": "Pick one", "answer": "B", "choices": ["A", "B", "C"]},
        {"id": "q4", "prompt": "Big", "answer": "1,234"},
    ]
    p.write_text("\n".join(json.dumps(i) for i in items) + "\n\n")
    fam = load_jsonl_family("mine", p, group="tool")
    assert fam.group == "tool" and fam.size == 4
    goals = {g.goal_id: g for g in fam.generate(0, 4)}
    assert goals["q1"].answer_kind == "numeric" and fam.check(goals["q1"], "Answer: It has 8 legs")
    assert goals["q2"].answer_kind == "string" and fam.check(goals["q2"], "Answer: paris")
    assert fam.check(goals["q3"], "Answer: B") and not fam.check(goals["q3"], "Answer: A or B")
    assert fam.check(goals["q4"], "Answer: 1234")
    via_config = get_family("mine", {"user_families": {"mine": {"path": str(p), "group": "reasoning"}}})
    assert via_config.group == "reasoning" and via_config.generate(1, 2) == fam.generate(1, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1, "prompt": "x"}\n', r"missing key\(s\) answer"),
        (
            '{"id": 1, "prompt": "x", "answer": 1}\n{"id": 1, "prompt": "y", "answer": 2}\n',
            "duplicate id '1'",
        ),
        ("not json\n", "not valid JSON"),
        ("[1, 2]\n", "expected a JSON object"),
        ('{"id": 1, "prompt": "x", "answer": "abc", "kind": "numeric"}\n', "is not a number"),
        ("\n", "no items"),
    ],
)
def test_user_jsonl_errors_name_the_line(tmp_path, content: str, message: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(content)
    with pytest.raises(ConfigError, match=message) as exc:
        load_jsonl_family("bad", p)
    assert "bad.jsonl" in str(exc.value)


def test_user_family_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_jsonl_family("x", tmp_path / "missing.jsonl")
    p = tmp_path / "ok.jsonl"
    p.write_text('{"id": 1, "prompt": "x", "answer": 1}\n')
    with pytest.raises(ConfigError, match="group must be one of"):
        get_family("ok", {"user_families": {"ok": {"path": str(p), "group": "other"}}})
    with pytest.raises(ConfigError, match="has no path"):
        get_family("ok", {"user_families": {"ok": {"group": "tool"}}})


def test_bool_wrappers_follow_the_verdict() -> None:
    assert check_numeric("Answer: 42", "42") and not check_numeric("42", "42")
    assert check_string("Answer: Paris", "Paris") and not check_string("Answer: Paris or Rome", "Paris")
    assert check_choice("Answer: Alice", "Alice", ("Alice", "Bruno"))
    assert not check_choice("Answer: Alice, Bruno", "Alice", ("Alice", "Bruno"))
