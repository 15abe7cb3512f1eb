"""alems.contracts is the one home of the shared lists; DESIGN.md and the workflow agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alems import contracts
from alems.sections import schema_default
from alems.tasks import get_family

ROOT = Path(__file__).resolve().parents[1]
DESIGN = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")


def _design_list(label: str) -> list[str]:
    """The backticked names after ``label`` on its line of DESIGN.md."""
    line = next(ln for ln in DESIGN.splitlines() if label in ln)
    return re.findall(r"`([a-z_0-9]+)`", line.split(label, 1)[1])


def test_event_kinds_match_design() -> None:
    assert _design_list("`kind` is one of") == list(contracts.EVENT_KINDS)


def test_goals_columns_match_design() -> None:
    section = DESIGN.split("- `goals.csv`: one row per attempt.", 1)[1].split("Optional task columns", 1)[0]
    named = []
    for label in ("identity and outcome:", "energy:", "work done:", "provenance:"):
        line = next(ln for ln in section.splitlines() if label in ln)
        named += [c.strip() for c in line.split("`")[1].split(",")]
    assert named == list(contracts.GOALS_COLUMNS)


def test_builtin_families_carry_the_group_their_name_implies() -> None:
    for fam in contracts.BUILTIN_FAMILIES:
        assert get_family(fam).group == contracts.default_group(fam) == contracts.family_group(fam)
    assert set(contracts.REASONING_FAMILIES).isdisjoint(contracts.TOOL_FAMILIES)


def test_user_family_group_comes_from_config() -> None:
    cfg = {"user_families": {"tg_mine": {"group": "reasoning"}, "mine": {"group": "tool"}, "plain": {}}}
    assert contracts.family_group("tg_mine", cfg) == "reasoning"
    assert contracts.family_group("mine", cfg) == "tool"
    assert contracts.family_group("plain", cfg) == "reasoning"
    assert contracts.family_group("tg_x") == "tool"


def test_figure_reports_exist_for_every_figure() -> None:
    for name in contracts.FIGURES:
        assert (ROOT / "workflow" / "report" / f"{name}.rst").is_file(), name


def test_hashed_config_drops_only_the_drawing_sections() -> None:
    cfg = {"study": {"reps": 1}, "figures": {"timeline_family": None}, "llm": {}}
    assert contracts.hashed_config(cfg) == {"study": {"reps": 1}, "llm": {}}


def test_schema_default_reads_the_schema() -> None:
    assert schema_default("accounting", "min_coverage") == pytest.approx(0.8)
    assert schema_default("metrics", "pooled_estimand") == contracts.POOLED_ESTIMANDS[0]
    with pytest.raises(KeyError):
        schema_default("llm", "no_such_key")


def test_the_library_imports_without_a_checkout(tmp_path: Path) -> None:
    """Settings defaults come from the schema the package ships, so `alems` copied alone (as a
    wheel installs it, without workflow/) imports and reads its defaults."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "src" / "alems", tmp_path / "alems", ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "import alems.energy.model, alems.accounting, alems.baseline, alems.metrics;"
        "from alems.sections import schema_default;"
        "print(schema_default('accounting', 'min_coverage'))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "0.8"
