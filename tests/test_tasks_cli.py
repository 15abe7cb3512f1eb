"""``alems tasks list|show|check``."""

from __future__ import annotations

import json

import pytest

from alems.cli import main
from alems.tasks import FAMILIES


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(["tasks", *args])
    return code, capsys.readouterr().out


def test_list(capsys, tmp_path) -> None:
    code, out = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["family"] for r in rows] == list(FAMILIES)
    by = {r["family"]: r for r in rows}
    assert by["factual_qa_local"]["size"] == 55 and by["gsm8k_basic_local"]["size"] is None
    assert by["science_qa"]["size"] == 500 and "OpenBookQA" in by["science_qa"]["description"]
    assert by["tg_sequential_2"]["tools"] == ["sql", "calculator", "write_file"]
    data = tmp_path / "g.jsonl"
    data.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"user_families: {{mine: {{path: {data}, format: gsm8k}}}}\n")
    code, out = run(capsys, "list", "--config", str(cfg))
    assert code == 0 and "mine" in out and "unbounded" in out


def test_show(capsys) -> None:
    code, out = run(capsys, "show", "gsm8k_multi_step_local", "--n", "3", "--seed", "2", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 3
    assert all(4 <= r["steps"] <= 8 and r["template"].count("/") == 2 for r in rows)
    code, text = run(capsys, "show", "logical_reasoning_local", "--n", "2")
    assert code == 0 and "steps" in text and "accepted:" in text and "choices:" in text
    assert main(["tasks", "show", "no_such_family"]) == 2


@pytest.mark.parametrize(
    ("args", "success", "reason"),
    [
        (["--expected", "39", "--", "The answer is 39. Check: 39+1=40"], True, "correct"),
        (["--expected", "39", "--", "Answer: 36, 39"], False, "ambiguous"),
        (
            [
                "--expected",
                "Canberra",
                "--choices",
                "Sydney,Canberra",
                "--",
                "Answer: It is not Canberra; it is Sydney.",
            ],
            False,
            "negated",
        ),
        (
            ["--expected", "Leonardo da Vinci", "--aliases", "da Vinci", "--", "Answer: da Vinci"],
            True,
            "correct",
        ),
        (["--expected", "42", "--kind", "string", "--", "Answer: 42"], True, "correct"),
        (["--expected", "42", "--truncated", "--", "Let me think"], False, "truncated"),
        (["--expected", "42", "--", "no marker 42"], False, "no_marker"),
    ],
)
def test_check(capsys, args, success, reason) -> None:
    code, out = run(capsys, "check", "--json", *args)
    got = json.loads(out)
    assert code == 0 and (got["success"], got["reason"]) == (success, reason) and "extracted" in got


def test_check_plain_output_and_missing_text(capsys) -> None:
    code, out = run(capsys, "check", "--expected", "7", "--", "Answer:", "7")
    assert code == 0 and out.strip() == "success: correct (extracted: 7)"
    assert main(["tasks", "check", "--expected", "7"]) == 2
