"""`alems baseline` end to end on a fake powercap tree (fractions of a second of real time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alems.baseline import load_baseline
from alems.cli import main


def _tree(root: Path) -> Path:
    z = root / "intel-rapl:0"
    (z / "intel-rapl:0:0").mkdir(parents=True)
    (z / "name").write_text("package-0\n")
    (z / "energy_uj").write_text("1000\n")
    (z / "max_energy_range_uj").write_text("262143328850\n")
    (z / "intel-rapl:0:0" / "name").write_text("dram\n")
    (z / "intel-rapl:0:0" / "energy_uj").write_text("5\n")
    (z / "intel-rapl:0:0" / "max_energy_range_uj").write_text("65712999613\n")
    return root


FAST = ["--meter", "rapl", "--seconds", "0.02", "--windows", "2", "--settle", "0"]


def test_baseline_json_and_cache(tmp_path: Path, capsys) -> None:
    root = _tree(tmp_path / "pc")
    out = tmp_path / "baseline" / "idle.json"
    args = ["baseline", *FAST, "--powercap-root", str(root), "--out", str(out)]
    assert main([*args, "--json"]) == 0
    cap = capsys.readouterr()
    data = json.loads(cap.out)
    assert data["status"] == "stable" and data["reused"] is False
    assert set(data["power_w"]) == {"package-0", "dram-0"} and data["power_w"]["package-0"] == 0.0
    assert data["source"] == {"package-0": "measured", "dram-0": "measured"} and data["modeled"] is False
    assert (
        data["config"]["window_s"] == 0.02
        and data["config"]["windows"] == 2
        and data["config"]["settle_s"] == 0
    )
    assert len(data["windows"]) == 2 and len(data["hw_hash"]) == 16
    assert "window 2/2" in cap.err
    assert load_baseline(out).baseline_id == data["baseline_id"]

    assert main([*args, "--reuse", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["reused"] is True and again["baseline_id"] == data["baseline_id"]

    out.write_text("{corrupt")
    assert main([*args, "--reuse"]) == 0
    cap = capsys.readouterr()
    assert (
        "warning:" in cap.err and "not valid JSON" in cap.err and "measuring a new idle baseline" in cap.err
    )
    assert "STABLE" in cap.out and "package-0" in cap.out and "written to" in cap.out
    assert load_baseline(out).status == "stable"


def test_baseline_bad_arguments(tmp_path: Path, capsys) -> None:
    root = _tree(tmp_path / "pc")
    assert main(["baseline", *FAST, "--powercap-root", str(root), "--reuse"]) == 2
    assert "--reuse needs --out" in capsys.readouterr().err
    assert main(["baseline", "--meter", "rapl", "--windows", "1", "--powercap-root", str(root)]) == 2
    assert "baseline.windows = 1 is invalid" in capsys.readouterr().err


def test_baseline_help_text(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["baseline", "--help"])
    text = capsys.readouterr().out
    assert "length of each measurement window" in text and "--settle" in text
