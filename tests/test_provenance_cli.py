"""`alems fingerprint` and `alems verify` end to end (real host, fake powercap tree)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alems import provenance as pv
from alems.cli import main


def _powercap(root: Path, limit_uw: int = 50_000_000) -> Path:
    z = root / "intel-rapl:0"
    z.mkdir(parents=True)
    (z / "name").write_text("package-0\n")
    (z / "energy_uj").write_text("12345\n")
    (z / "max_energy_range_uj").write_text("262143328850\n")
    (z / "constraint_0_name").write_text("long_term\n")
    (z / "constraint_0_power_limit_uw").write_text(f"{limit_uw}\n")
    return root


def _fingerprint(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["fingerprint", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_fingerprint_json_has_every_section_and_stable_hashes(tmp_path: Path, capsys) -> None:
    root = _powercap(tmp_path / "pc")
    a = _fingerprint(capsys, "--powercap-root", str(root))
    assert set(a) == {"hardware", "environment", "config", "hashes", "volatile"}
    assert a["config"] is None and a["hashes"]["config_hash"] is None
    zone = a["hardware"]["rapl_zones"][0]
    assert zone["name"] == "package-0" and zone["max_energy_range_uj"] == 262143328850
    assert zone["constraints"][0]["power_limit_uw"] == 50_000_000
    assert "pytest" in a["environment"]["distributions"]
    assert a["volatile"]["powercap_root"] == str(root)
    (root / "intel-rapl:0" / "energy_uj").write_text("99999999\n")  # counters move; hashes must not
    b = _fingerprint(capsys, "--powercap-root", str(root))
    assert a["hashes"] == b["hashes"]
    (root / "intel-rapl:0" / "constraint_0_power_limit_uw").write_text("40000000\n")
    c = _fingerprint(capsys, "--powercap-root", str(root))
    assert c["hashes"]["hw_hash"] != a["hashes"]["hw_hash"]
    assert c["hashes"]["env_hash"] == a["hashes"]["env_hash"]


def test_fingerprint_config_change_moves_only_config_hash(tmp_path: Path, capsys) -> None:
    if not (Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").is_file():
        pytest.skip("no workflow schema in this checkout")
    m = tmp_path / "model.gguf"
    m.write_bytes(b"GGUF fake")
    c1, c2 = tmp_path / "c1.yaml", tmp_path / "c2.yaml"
    c1.write_text("llm: {backend: scripted}\n")
    c2.write_text("llm: {backend: scripted}\nbaseline: {windows: 12}\n")
    a = _fingerprint(capsys, "--config", str(c1), "--model-file", str(m))
    b = _fingerprint(capsys, "--config", str(c2), "--model-file", str(m))
    assert a["config"]["baseline"]["windows"] == 10  # defaults filled
    assert b["config"]["baseline"]["windows"] == 12
    assert a["environment"]["model"]["sha256"] == pv.file_sha256(m)
    assert a["hashes"]["config_hash"] != b["hashes"]["config_hash"]
    assert (a["hashes"]["hw_hash"], a["hashes"]["env_hash"]) == (
        b["hashes"]["hw_hash"],
        b["hashes"]["env_hash"],
    )
    assert a["hashes"]["run_id"] != b["hashes"]["run_id"]


def test_fingerprint_text_and_out_dir(tmp_path: Path, capsys) -> None:
    out = tmp_path / "prov"
    assert main(["fingerprint", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for label in (
        "cpu ",
        "topology",
        "cpufreq",
        "memory",
        "rapl",
        "gpus",
        "kernel",
        "virtualised",
        "python",
        "git",
        "hw_hash",
        "env_hash",
        "config_hash",
        "run_id",
    ):
        assert label in text
    hashes = pv.load_hashes(out / "hashes.json")
    assert f"hw_hash      {hashes.hw_hash}" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "environment.json",
        "hardware.json",
        "hashes.json",
    ]


def test_fingerprint_bad_config_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["fingerprint", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "alems fingerprint: error:" in err and "missing.yaml" in err and "Fix:" in err


def test_verify_ok_changed_missing(tmp_path: Path, capsys) -> None:
    res = tmp_path / "results"
    (res / "tables").mkdir(parents=True)
    (res / "tables" / "goals.csv").write_text("a\n1\n")
    (res / "tables" / "epg.csv").write_text("b\n2\n")
    hashes = pv.Hashes("a" * 16, "b" * 16, "c" * 16, "d" * 16)
    pv.write_manifest(res / "manifest.json", [res / "tables"], hashes)
    manifest = str(res / "manifest.json")

    assert main(["verify", "--manifest", manifest]) == 0
    assert "2/2 files match" in capsys.readouterr().out

    (res / "tables" / "goals.csv").write_text("a\n9\n")
    (res / "tables" / "epg.csv").unlink()
    assert main(["verify", "--manifest", manifest]) == 1
    out = capsys.readouterr().out
    assert (
        "CHANGED  tables/goals.csv" in out and "MISSING  tables/epg.csv" in out and "0/2 files match" in out
    )

    assert main(["verify", "--manifest", manifest, "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False and rep["missing"] == ["tables/epg.csv"]
    assert rep["changed"][0]["path"] == "tables/goals.csv" and rep["hashes"]["run_id"] == "d" * 16


def test_verify_without_manifest_says_how_to_make_one(tmp_path: Path, capsys) -> None:
    assert main(["verify", "--manifest", str(tmp_path / "manifest.json")]) == 2
    err = capsys.readouterr().err
    assert "manifest" in err and "not found" in err and "snakemake --cores 1 all" in err
