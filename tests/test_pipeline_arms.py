"""Arms (``study.arms``) through the real Snakemake workflow, on the scripted oracle backend and
the CPU-model meter (seconds per job):

* two arms that differ only in the oracle's failure rate: ``results/compare/ratios.csv`` gives
  ``success_diff`` with the right sign, and its numbers agree with the arms' own tables;
* the arms are measured in the interleaved order the DAG asks for (``arm_measurement_order``);
* rerunning one arm x one family, or one whole arm, leaves every other arm's files (and the
  shared baseline) as they were: same mtimes, same bytes;
* the same runs give byte-identical tables through an arm and through a study without arms;
* an arm that changes which goals run is refused before anything runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from test_pipeline import ci_config, sha256, snakemake, write_config

ARMS = {"good": {"llm": {"oracle": {"fail_rate": 0.05}}}, "bad": {"llm": {"oracle": {"fail_rate": 0.7}}}}
FAMILIES = ["gsm8k_basic_local", "tg_single_calc"]  # as test_pipeline.simulated_study


def arms_config(**over: Any) -> dict[str, Any]:
    cfg = ci_config(None, agents={"max_attempts": 1}, metrics={"bootstrap": 200, "min_goals": 3})
    cfg["study"] = {**cfg["study"], "tasks": 4, "arms": ARMS, "reference_arm": "good", **over}
    return cfg


def snapshot(paths: list[Path]) -> dict[Path, tuple[int, str]]:
    return {p: (p.stat().st_mtime_ns, sha256(p)) for p in paths}


@pytest.fixture(scope="module")
def arms_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("arms")
    cf = write_config(work / "arms.yaml", arms_config())
    res = snakemake(work, "--cores", "1", "all", configfile=cf)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return {"work": work, "config": cf, "log": res.stdout + res.stderr}


def test_arms_layout_provenance_and_manifest(arms_run: dict[str, Any]) -> None:
    r = arms_run["work"] / "results"
    hashes = {a: json.loads((r / "arms" / a / "provenance" / "hashes.json").read_text()) for a in ARMS}
    assert hashes["good"]["config_hash"] != hashes["bad"]["config_hash"]  # each arm its own config
    assert hashes["good"]["hw_hash"] == hashes["bad"]["hw_hash"]
    base = json.loads((r / "baseline" / "idle.json").read_text())
    for a in ARMS:
        for f in FAMILIES:
            meta = json.loads((r / "arms" / a / "runs" / f / "rep0" / "run.json").read_text())
            assert meta["hashes"]["config_hash"] == hashes[a]["config_hash"]
            assert meta["baseline"]["baseline_id"] == base["baseline_id"]  # one shared baseline
        for name in ("goals.csv", "epg.csv", "ooi.csv"):
            assert (r / "arms" / a / "tables" / name).is_file()
        assert (r / "arms" / a / "figures" / "fig1_epg.png").read_bytes()[:4] == b"\x89PNG"
        assert (r / "arms" / a / "manifest.json").is_file()
    assert not (r / "runs").exists() and not (r / "tables").exists()  # nothing outside the arms
    for stem in ("cmp1_epg_by_arm", "cmp2_ooi_forest_arms", "cmp3_success_vs_energy_arms"):
        assert (r / "compare" / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (r / "compare" / "figures" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    listed = {e["path"]: e for e in json.loads((r / "manifest.json").read_text())["files"]}
    for path in (
        "baseline/idle.json",
        "compare/ratios.csv",
        "compare/figures/cmp3_success_vs_energy_arms.png",
        "arms/bad/runs/tg_single_calc/rep0/goals.csv",
        "arms/good/tables/epg.csv",
        "arms/good/manifest.json",
    ):
        assert listed[path]["sha256"] == sha256(r / path), path


def test_arms_are_measured_interleaved(arms_run: dict[str, Any]) -> None:
    """Family by family, the arms rotated by one per family: with arms (a, b) in the config's
    order, a then b for the first family, b then a for the second."""
    a, b = yaml.safe_load(arms_run["config"].read_text())["study"]["arms"]  # the file's order
    jobs, rule = [], None
    for line in arms_run["log"].splitlines():
        if line.strip().endswith("rule arm_run_family:"):
            rule = "arm_run_family"
        elif rule and line.strip().startswith("wildcards:"):
            w = dict(kv.split("=") for kv in line.split(":", 1)[1].replace(" ", "").split(","))
            jobs.append((w["arm"], w["family"]))
            rule = None
    assert jobs == [(a, FAMILIES[0]), (b, FAMILIES[0]), (b, FAMILIES[1]), (a, FAMILIES[1])]


def test_two_arms_success_diff_has_the_right_sign(arms_run: dict[str, Any]) -> None:
    from alems.metrics.compare import RATIO_COLUMNS

    r = arms_run["work"] / "results"
    ratios = pd.read_csv(r / "compare" / "ratios.csv", keep_default_na=False, na_values=[""])
    assert list(ratios.columns[: len(RATIO_COLUMNS)]) == list(RATIO_COLUMNS)
    assert set(ratios["arm"]) == {"bad"} and set(ratios["reference_arm"]) == {"good"}
    assert list(ratios["scope"][:5]) == [*FAMILIES, "reasoning", "tool", "overall"][:5]
    overall = ratios[ratios["scope"] == "overall"].set_index("mode")
    # the bad arm fails far more often: its success rate is lower in both modes
    assert (overall["success_diff"] < 0).all(), overall
    assert (overall["success_diff_ci_low"] <= overall["success_diff"]).all()
    assert (overall["success_diff"] <= overall["success_diff_ci_high"]).all()
    # the ratio rows agree with each arm's own epg.csv (every goal is paired)
    epg = {a: pd.read_csv(r / "arms" / a / "tables" / "epg.csv").set_index(["family", "mode"]) for a in ARMS}
    for _, row in ratios.iterrows():
        key = (row["scope"], row["mode"])
        for col, arm in (("success_rate_arm", "bad"), ("success_rate_reference", "good")):
            assert row[col] == pytest.approx(epg[arm].loc[key, "success_rate"]), (key, col)
        assert row["success_diff"] == pytest.approx(row["success_rate_arm"] - row["success_rate_reference"])
        assert row["epg_reference_j"] == pytest.approx(epg["good"].loc[key, "epg_j"])
        if pd.notna(row["epg_ratio"]):
            assert row["epg_ratio"] == pytest.approx(row["epg_arm_j"] / row["epg_reference_j"])
        else:  # undefined only where an arm has no success, and then flagged, never 0 or inf
            assert "zero_successes" in row["flags"]
    stacked = pd.read_csv(r / "compare" / "epg.csv")
    assert list(stacked.columns[:2]) == ["arm", "family"] and set(stacked["arm"]) == set(ARMS)
    ooi = pd.read_csv(r / "compare" / "ooi.csv")
    assert list(ooi.columns[:2]) == ["arm", "scope"]


def test_one_arm_reruns_leave_the_other_arm_alone(arms_run: dict[str, Any]) -> None:
    work, cf = arms_run["work"], arms_run["config"]
    r = work / "results"
    good = sorted(p for p in (r / "arms" / "good").rglob("*") if p.is_file())
    bad_calc = sorted((r / "arms" / "bad" / "runs" / "tg_single_calc").rglob("*.*"))
    shared = [r / "baseline" / "idle.json", *sorted((r / "provenance").glob("*.json"))]
    before = snapshot(good + bad_calc + shared)
    redo = r / "arms" / "bad" / "runs" / "gsm8k_basic_local" / "rep0" / "goals.csv"
    redo_m = redo.stat().st_mtime_ns
    # one arm x one family (the command the README documents)
    res = snakemake(work, "--cores", "1", "all", "--forcerun", str(redo.relative_to(work)), configfile=cf)
    assert res.returncode == 0, res.stderr[-3000:]
    assert redo.stat().st_mtime_ns > redo_m
    assert snapshot(good + bad_calc + shared) == before
    # one whole arm: its provenance, and so everything of that arm downstream of it
    res = snakemake(
        work, "--cores", "1", "all", "--forcerun", "results/arms/bad/provenance/hashes.json", configfile=cf
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "arm=good" not in res.stdout + res.stderr
    assert snapshot(good + shared) == {p: before[p] for p in good + shared}
    assert bad_calc[0].stat().st_mtime_ns > before[bad_calc[0]][0]
    dry = snakemake(work, "-n", "--cores", "1", "all", configfile=cf)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_same_runs_give_byte_identical_tables_with_and_without_arms(
    arms_run: dict[str, Any], tmp_path: Path
) -> None:
    """A study without arms whose config is arm ``good``'s has arm good's config_hash, and on arm
    good's runs its (unchanged) tables rule writes byte for byte the tables the arm's wrote."""
    src = arms_run["work"] / "results"
    cfg = arms_config()
    cfg["study"] = {k: v for k, v in cfg["study"].items() if k not in ("arms", "reference_arm")}
    cfg["llm"]["oracle"] = {**cfg["llm"]["oracle"], **ARMS["good"]["llm"]["oracle"]}
    cf = write_config(tmp_path / "plain.yaml", cfg)
    r = tmp_path / "results"
    shutil.copytree(src / "baseline", r / "baseline")
    for part in ("provenance", "runs"):
        shutil.copytree(src / "arms" / "good" / part, r / part)
    res = snakemake(
        tmp_path, "--cores", "1", "results/tables/epg.csv", "--allowed-rules", "tables", configfile=cf
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    from alems.contracts import TABLE_FILES

    for name in TABLE_FILES:
        assert sha256(r / "tables" / name) == sha256(src / "arms" / "good" / "tables" / name), name


def test_an_arm_that_changes_the_goals_is_refused(tmp_path: Path) -> None:
    for key, value, shown in (
        ("study", {"tasks": 2}, "study.tasks"),
        ("study", {"families": ["gsm8k_basic"]}, "study.families"),
        ("user_families", {"mine": {"path": "x.jsonl"}}, "user_families.mine.path"),
        ("metrics", {"bootstrap": 10}, "metrics.bootstrap"),
    ):
        cfg = arms_config()
        cfg["study"]["arms"] = {**ARMS, "odd": {key: value}}
        res = snakemake(tmp_path, "-n", "--cores", "1", configfile=write_config(tmp_path / "odd.yaml", cfg))
        out = res.stdout + res.stderr
        assert res.returncode != 0
        assert f"arm 'odd' overrides '{shown}'" in out, out[-2000:]
    assert not (tmp_path / "results").exists()


def test_alems_compare_rebuilds_the_tables_and_checks_the_hosts(
    arms_run: dict[str, Any], tmp_path: Path
) -> None:
    """``alems compare`` on the arms' directories writes the workflow's own three tables, byte
    for byte; a study from other hardware is refused unless --allow-mixed-hosts, then flagged."""
    import subprocess
    import sys

    r = arms_run["work"] / "results"
    arm_dirs = [str(r / "arms" / a) for a in ("good", "bad")]

    def compare(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "alems", "compare", *args, "--no-figures"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    res = compare(*arm_dirs, "--reference", "good", "--out-dir", str(tmp_path / "cli"))
    assert res.returncode == 0, res.stderr
    for name in ("epg.csv", "ooi.csv", "ratios.csv"):
        assert sha256(tmp_path / "cli" / name) == sha256(r / "compare" / name), name
    other = tmp_path / "other"
    shutil.copytree(r / "arms" / "bad", other)
    hashes = json.loads((other / "provenance" / "hashes.json").read_text())
    (other / "provenance" / "hashes.json").write_text(json.dumps({**hashes, "hw_hash": "0" * 16}))
    res = compare(f"good={arm_dirs[0]}", f"other={other}", "--out-dir", str(tmp_path / "mixed"))
    assert res.returncode == 2 and "different hardware" in res.stderr and "--allow-mixed-hosts" in res.stderr
    assert not (tmp_path / "mixed" / "ratios.csv").exists()
    res = compare(
        f"good={arm_dirs[0]}", f"other={other}", "--out-dir", str(tmp_path / "mixed"), "--allow-mixed-hosts"
    )
    assert res.returncode == 0, res.stderr
    for name in ("epg.csv", "ooi.csv", "ratios.csv"):
        flags = pd.read_csv(tmp_path / "mixed" / name, keep_default_na=False)["flags"]
        assert flags.str.contains("mixed_hosts").all(), name


def test_editing_one_arm_reruns_that_arm_only(arms_run: dict[str, Any], tmp_path: Path) -> None:
    cfg = arms_config()
    cfg["study"]["arms"] = {**ARMS, "bad": {"llm": {"oracle": {"fail_rate": 0.6}}}}
    dry = snakemake(
        arms_run["work"], "-n", "--cores", "1", "all", configfile=write_config(tmp_path / "e.yaml", cfg)
    )
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-2000:]
    assert "arm=bad, family=gsm8k_basic_local" in out and "arm=bad, family=tg_single_calc" in out
    assert "arm=good" not in out and "rule baseline" not in out and "rule fingerprint:" not in out
