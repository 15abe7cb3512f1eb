"""The Snakemake pipeline end to end, through the CLI.

* ``snakemake -n``, ``snakemake --lint`` and ``snakefmt --check`` are clean;
* a smoke study runs end to end through the **simulated RAPL** (the real RAPL code path,
  a fake powercap tree written by a child process, a small wrap range) with the scripted
  oracle backend, and every output and the manifest is checked against its contract;
* ``snakemake figures`` redraws figures without touching measurements, a one-family
  rerun leaves the other family's results alone, and ``--report`` is self-contained.

Each run uses its own working directory (``--directory``), so nothing touches the
repository's ``results/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
FAMILIES = ["gsm8k_basic_local", "tg_single_calc"]
P_IDLE_W, P_MAX_W = 3.0, 15.0
RANGE_UJ = (
    10_000_000  # 10 J: the package counter wraps every second or two (safe poll 0.33 s at the declared 30 W)
)


def snakemake(
    workdir: Path, *args: str, configfile: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=workdir)


def ci_config(powercap_root: Path | None, **over: Any) -> dict[str, Any]:
    """A seconds-long study: 2 families, 3 goals, scripted oracle, tiny baseline."""
    energy: dict[str, Any] = {
        "meter": "model",
        "calibrate": False,
        "model": {"p_idle_w": P_IDLE_W, "p_max_w": P_MAX_W},
    }
    if powercap_root is not None:
        energy.update(meter="rapl", powercap_root=str(powercap_root))
    cfg: dict[str, Any] = {
        "study": {"families": FAMILIES, "tasks": 3, "reps": 1, "seed": 0},
        "llm": {"backend": "scripted", "oracle": {"fail_rate": 0.3, "seed": 1, "cost_s_per_token": 0.0004}},
        "agents": {"backoff_s": 0.01, "max_attempts": 3},
        "energy": energy,
        # the test machine is busy running the tests: the host-load check is unit-tested instead
        "baseline": {"settle_s": 0, "windows": 3, "window_s": 0.3, "max_host_util": 1.0},
        "metrics": {"bootstrap": 300},
    }
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- static checks
def test_dry_run_lint_and_format_are_clean(tmp_path: Path) -> None:
    cf = REPO / "config" / "config.yaml"
    dry = snakemake(tmp_path, "-n", "--cores", "1", configfile=cf)
    assert dry.returncode == 0, dry.stderr + dry.stdout
    out = dry.stdout + dry.stderr
    for rule in ("fingerprint", "baseline", "run_family", "tables", "figures", "manifest", "all"):
        assert rule in out
    assert out.count("rule run_family:") == 7  # one job per (family, rep)
    # a clean clone fetches the benchmark data the config names (gsm8k_basic: ASDiv), sha256-checked
    assert out.count("rule fetch_benchmark:") == 1 and "resources/benchmarks/asdiv.jsonl" in out
    lint = snakemake(tmp_path, "--lint", configfile=cf)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations, your workflow is in a good condition!" in lint.stdout + lint.stderr
    fmt = subprocess.run(
        [str(Path(sys.executable).parent / "snakefmt"), "--check", "Snakefile", "workflow/rules"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_openai_backend_needs_no_model_fetch(tmp_path: Path) -> None:
    cf = write_config(
        tmp_path / "c.yaml", {"llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}}
    )
    dry = snakemake(tmp_path, "-n", "--cores", "1", configfile=cf)
    assert dry.returncode == 0, dry.stderr
    assert "fetch_model" not in dry.stdout + dry.stderr
    cf = write_config(
        tmp_path / "d.yaml",
        {"llm": {"backend": "llamacpp", "model": "smollm2-135m", "models_dir": "nowhere"}},
    )
    dry = snakemake(tmp_path, "-n", "--cores", "1", configfile=cf)
    assert "rule fetch_model:" in dry.stdout and "nowhere/smollm2-135m.gguf" in dry.stdout


# --------------------------------------------------------------------------- the smoke run
@contextmanager
def simulated_study(work: Path, **over: Any) -> Iterator[tuple[Path, Path, Any]]:
    """The smoke config in ``work`` (``over``: as :func:`ci_config`) and, running while inside,
    the simulated RAPL it reads: (config, root, sim)."""
    from alems.energy.simulated import SimulatedRapl

    root = work / "powercap"
    cf = write_config(work / "ci.yaml", ci_config(root, **over))
    sim = SimulatedRapl(
        root, "intel-1s", profile="model", p_idle_w=P_IDLE_W, p_max_w=P_MAX_W, range_uj=RANGE_UJ, tick_ms=1
    )
    sim.start()
    try:
        yield cf, root, sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("pipeline")
    with simulated_study(work) as (cf, root, sim):
        res = snakemake(work, "--cores", "1", "all", configfile=cf)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        yield {"work": work, "config": cf, "root": root, "sim": sim, "log": res.stdout + res.stderr}


def test_smoke_run_outputs_and_schemas(smoke_run: dict[str, Any]) -> None:
    from alems.contracts import EVENT_KINDS, GOALS_COLUMNS
    from alems.energy.sampler import read_samples
    from alems.metrics import EPG_COLUMNS, OOI_COLUMNS

    r = smoke_run["work"] / "results"
    # provenance
    hashes = json.loads((r / "provenance" / "hashes.json").read_text())
    for k in ("hw_hash", "env_hash", "config_hash", "run_id"):
        assert len(hashes[k]) == 16
    for name in ("hardware", "environment", "config"):
        assert json.loads((r / "provenance" / f"{name}.json").read_text())
    # baseline through the simulated RAPL: measured, package-0 near P_idle + the idle load
    base = json.loads((r / "baseline" / "idle.json").read_text())
    assert base["source"]["package-0"] == "measured" and base["meter"] == "rapl"
    # the simulated package follows the model on the host's /proc/stat, so the baseline must read
    # P_idle + (P_max - P_idle) x the host load it saw itself (its host_util), not just any power
    assert base["host_util"] is not None and 0.0 <= base["host_util"] <= 1.0
    expected_w = P_IDLE_W + (P_MAX_W - P_IDLE_W) * base["host_util"]
    assert base["power_w"]["package-0"] == pytest.approx(expected_w, abs=0.05 * (P_MAX_W - P_IDLE_W))
    for fam in FAMILIES:
        d = r / "runs" / fam / "rep0"
        df, domains = read_samples(str(d / "samples.parquet"))
        assert [x.key for x in domains] == ["package-0", "core-0", "uncore-0"]
        assert {x.source for x in domains} == {"measured"}
        assert list(df.columns) == [
            "t",
            "package-0",
            "core-0",
            "uncore-0",
            "proc_cpu_s",
            "sys_cpu_s",
            "boundary",
        ]
        assert df["t"].is_monotonic_increasing and df["package-0"].is_monotonic_increasing
        assert df["boundary"].any() and (~df["boundary"]).any()
        # the job's package energy spans at least one wrap of the 10 J counter: wrap tracking works
        assert df["package-0"].iloc[-1] - df["package-0"].iloc[0] > RANGE_UJ / 1e6
        events = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
        assert {e["kind"] for e in events} <= set(EVENT_KINDS)
        assert {"goal_start", "attempt_start", "llm_start", "tool_start", "attempt_end", "goal_end"} <= {
            e["kind"] for e in events
        }
        goals = pd.read_csv(d / "goals.csv")
        assert list(goals.columns[: len(GOALS_COLUMNS)]) == list(GOALS_COLUMNS)
        assert set(goals["mode"]) == {"linear", "agentic"} and (goals["family"] == fam).all()
        assert (goals["energy_source"] == "measured").all()
        assert (goals["run_id"] == hashes["run_id"]).all()
        assert (goals["coverage"] >= 0.8).all()
        sums = goals["llm_j"] + goals["tool_j"] + goals["orchestration_j"]
        assert (sums - goals["energy_j"]).abs().max() < 1e-6
        meta = json.loads((d / "run.json").read_text())
        assert meta["hashes"] == {k: hashes[k] for k in ("hw_hash", "env_hash", "config_hash", "run_id")}
        assert 0.5 < meta["in_window_share"] <= 1.0 and meta["executions"] == 6
        assert not meta["modeled"] and meta["meter"] == "rapl"
    # the oracle designs failures: both outcomes and retries occur
    allg = pd.read_csv(r / "tables" / "goals.csv")
    finals = allg[allg["final_attempt"]]
    assert finals["success"].any() and not finals["success"].all()
    assert (allg["attempt"] > 1).any()
    assert len(allg) == sum(len(pd.read_csv(r / "runs" / f / "rep0" / "goals.csv")) for f in FAMILIES)
    epg = pd.read_csv(r / "tables" / "epg.csv")
    assert list(epg.columns[: len(EPG_COLUMNS)]) == list(EPG_COLUMNS)
    assert {(f, m) for f in FAMILIES for m in ("linear", "agentic")} <= set(
        zip(epg["family"], epg["mode"], strict=True)
    )
    ooi = pd.read_csv(r / "tables" / "ooi.csv")
    assert list(ooi.columns[: len(OOI_COLUMNS)]) == list(OOI_COLUMNS)
    pooled = ["ratio_of_means", "geomean_ooi", "pooled_ratio"]  # metrics.pooled_estimand first
    assert list(ooi["scope"]) == [*FAMILIES, *[g for g in ("reasoning", "tool", "overall") for _ in pooled]]
    assert list(ooi["estimand"]) == ["family"] * len(FAMILIES) + pooled * 3
    # figures, PNG and PDF
    for stem in (
        "fig1_epg",
        "fig2_ooi_forest",
        "fig3_phases",
        "fig4_power_timeline",
        "fig5_success_vs_energy",
        "fig6_idle_baseline",
    ):
        assert (r / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (r / "figures" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    # logs and benchmarks for every job
    work = smoke_run["work"]
    for rule in ("fingerprint", "baseline", "run_family", "tables", "figures", "manifest"):
        assert list((work / "logs" / rule).glob("*.log")), rule
        assert list((r / "benchmarks" / rule).glob("*.tsv")), rule


def test_smoke_run_manifest(smoke_run: dict[str, Any]) -> None:
    r = smoke_run["work"] / "results"
    man = json.loads((r / "manifest.json").read_text())
    hashes = json.loads((r / "provenance" / "hashes.json").read_text())
    for k in ("hw_hash", "env_hash", "config_hash", "run_id"):
        assert man[k] == hashes[k]
    listed = {e["path"]: e for e in man["files"]}
    expected = {
        "provenance/hashes.json",
        "baseline/idle.json",
        "tables/epg.csv",
        "tables/ooi.csv",
        "tables/goals.csv",
        "figures/fig1_epg.png",
        "figures/fig6_idle_baseline.pdf",
    }
    for fam in FAMILIES:
        expected |= {
            f"runs/{fam}/rep0/{n}" for n in ("samples.parquet", "events.jsonl", "goals.csv", "run.json")
        }
    assert expected <= set(listed)
    assert "manifest.json" not in listed
    for path, entry in listed.items():
        f = r / path
        assert entry["sha256"] == sha256(f) and entry["size"] == f.stat().st_size, path
    verify = subprocess.run(
        [sys.executable, "-m", "alems", "verify", "--manifest", str(r / "manifest.json"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_figures_alone_rerun_no_measurement(smoke_run: dict[str, Any]) -> None:
    work, cf = smoke_run["work"], smoke_run["config"]
    runs = sorted((work / "results" / "runs").rglob("*.*"))
    before = {p: p.stat().st_mtime_ns for p in runs}
    fig = work / "results" / "figures" / "fig1_epg.png"
    fig_before = fig.stat().st_mtime_ns
    # the README's command: redraw every figure, never measure
    res = snakemake(
        work, "--cores", "1", "figures", "--forcerun", "figures", "--rerun-triggers", "mtime", configfile=cf
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rule run_family" not in res.stdout + res.stderr
    assert fig.stat().st_mtime_ns > fig_before
    assert {p: p.stat().st_mtime_ns for p in runs} == before


def test_one_family_rerun_leaves_the_others(smoke_run: dict[str, Any]) -> None:
    work, cf = smoke_run["work"], smoke_run["config"]
    r = work / "results"
    keep = r / "runs" / "tg_single_calc" / "rep0" / "goals.csv"
    redo = r / "runs" / "gsm8k_basic_local" / "rep0" / "goals.csv"
    keep_m, redo_m, table_m = (
        keep.stat().st_mtime_ns,
        redo.stat().st_mtime_ns,
        (r / "tables" / "epg.csv").stat().st_mtime_ns,
    )
    # the command the README documents
    res = snakemake(
        work,
        "--cores",
        "1",
        "all",
        "--forcerun",
        "results/runs/gsm8k_basic_local/rep0/goals.csv",
        configfile=cf,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert keep.stat().st_mtime_ns == keep_m
    assert redo.stat().st_mtime_ns > redo_m
    assert (r / "tables" / "epg.csv").stat().st_mtime_ns > table_m
    assert (r / "manifest.json").is_file()
    # nothing left to do afterwards
    dry = snakemake(work, "-n", "--cores", "1", "all", configfile=cf)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_report_is_self_contained(smoke_run: dict[str, Any]) -> None:
    work, cf = smoke_run["work"], smoke_run["config"]
    res = snakemake(work, "--report", "report.html", configfile=cf)
    assert res.returncode == 0, res.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for stem in ("fig1_epg", "fig2_ooi_forest", "fig4_power_timeline"):
        assert stem in html
    assert "Orchestration overhead index" in html or "orchestration overhead index" in html.lower()


def test_tables_refuse_mixed_provenance(smoke_run: dict[str, Any], tmp_path: Path) -> None:
    from alems.errors import ProvenanceError
    from alems.jobs.tables import aggregate
    from alems.metrics import MetricsConfig

    r = smoke_run["work"] / "results"
    metas = []
    for fam in FAMILIES:
        meta = json.loads((r / "runs" / fam / "rep0" / "run.json").read_text())
        if fam == "tg_single_calc":
            meta["hashes"]["config_hash"] = "0" * 16
        p = tmp_path / fam / "run.json"
        p.parent.mkdir()
        p.write_text(json.dumps(meta))
        metas.append(p)
    goals = [r / "runs" / f / "rep0" / "goals.csv" for f in FAMILIES]
    with pytest.raises(ProvenanceError) as ei:
        aggregate(goals, metas, metrics=MetricsConfig(bootstrap=0), groups={})
    assert "config_hash differs" in str(ei.value)
    mixed = aggregate(goals, metas, metrics=MetricsConfig(bootstrap=0), groups={}, allow_mixed=True)
    assert mixed.label == "mixed" and mixed.run_id.startswith("mixed-")
    assert (mixed.goals["run_id"] == mixed.run_id).all()


def test_tables_flag_runs_measured_against_an_unstable_baseline(
    smoke_run: dict[str, Any], tmp_path: Path
) -> None:
    from alems.jobs.tables import aggregate
    from alems.metrics import MetricsConfig

    r = smoke_run["work"] / "results"
    # the smoke run's own tables: every row flagged exactly when its baseline was unstable
    # (3 windows of 0.3 s on a machine busy with the tests can exceed the CV threshold)
    status = json.loads((r / "baseline" / "idle.json").read_text())["status"]
    for name in ("epg", "ooi"):
        flags = pd.read_csv(r / "tables" / f"{name}.csv", keep_default_na=False)["flags"]
        assert (flags.str.contains("baseline_unstable") == (status == "unstable")).all(), (name, status)
        assert not flags.str.contains("baseline_unknown").any()
    metas = []
    for fam in FAMILIES:
        meta = json.loads((r / "runs" / fam / "rep0" / "run.json").read_text())
        assert meta["baseline"]["status"] == status
        meta["baseline"]["status"] = "unstable" if fam == "gsm8k_basic_local" else "stable"
        p = tmp_path / fam / "run.json"
        p.parent.mkdir()
        p.write_text(json.dumps(meta))
        metas.append(p)
    goals = [r / "runs" / f / "rep0" / "goals.csv" for f in FAMILIES]
    t = aggregate(goals, metas, metrics=MetricsConfig(bootstrap=0), groups={})
    for df, col in ((t.epg, "family"), (t.ooi, "scope")):
        hit = df["flags"].fillna("").str.contains("baseline_unstable")
        assert set(df.loc[hit, col]) == {"gsm8k_basic_local", "reasoning", "overall"}


def test_runs_use_their_own_hosts_baseline_and_tables_check_it(
    smoke_run: dict[str, Any], tmp_path: Path
) -> None:
    """On one machine every run uses the reference baseline (no extra measurement) and records its host;
    the tables refuse a run whose baseline came from another host and flag one that records none."""
    from alems.errors import ProvenanceError
    from alems.jobs.tables import aggregate
    from alems.metrics import MetricsConfig

    r = smoke_run["work"] / "results"
    host = socket.gethostname()
    ref = json.loads((r / "baseline" / "idle.json").read_text())
    assert ref["host"] == host
    metas = []
    for fam in FAMILIES:
        meta = json.loads((r / "runs" / fam / "rep0" / "run.json").read_text())
        assert meta["host"] == host and meta["baseline"]["host"] == host
        assert (
            meta["baseline"]["origin"] == "reference"
            and meta["baseline"]["baseline_id"] == ref["baseline_id"]
        )
        if fam == "gsm8k_basic_local":
            meta["baseline"]["host"] = "elsewhere"
        p = tmp_path / fam / "run.json"
        p.parent.mkdir()
        p.write_text(json.dumps(meta))
        metas.append(p)
    goals = [r / "runs" / f / "rep0" / "goals.csv" for f in FAMILIES]
    with pytest.raises(
        ProvenanceError, match=f"gsm8k_basic_local ran on {host} with the idle baseline of elsewhere"
    ):
        aggregate(goals, metas, metrics=MetricsConfig(bootstrap=0), groups={})
    t = aggregate(goals, metas, metrics=MetricsConfig(bootstrap=0), groups={}, allow_mixed=True)
    hit = t.epg["flags"].fillna("").str.contains("baseline_foreign_host")
    assert set(t.epg.loc[hit, "family"]) & set(FAMILIES) == {"gsm8k_basic_local"}
    meta = json.loads(metas[0].read_text())
    del meta["host"]
    metas[0].write_text(json.dumps(meta))
    t = aggregate(goals, metas, metrics=MetricsConfig(bootstrap=0), groups={})
    hit = t.ooi["flags"].fillna("").str.contains("baseline_host_unknown")
    assert set(t.ooi.loc[hit, "scope"]) == {"gsm8k_basic_local", "reasoning", "overall"}
    for name in ("epg", "ooi"):  # the smoke run's own tables carry no host flag
        flags = pd.read_csv(r / "tables" / f"{name}.csv", keep_default_na=False)["flags"]
        assert not flags.str.contains("host").any()


# --------------------------------------------------------------------------- preflight
def test_a_crashing_llm_runtime_stops_the_study_before_any_measurement(tmp_path: Path) -> None:
    """A llama.cpp build that dies on this CPU (a stand-in that kills itself with SIGSEGV)
    fails the first measurement job (the baseline) at its preflight, with the diagnosis in
    its log; nothing is measured."""
    model = tmp_path / "wrong-cpu.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    cfg = ci_config(None, llm={"backend": "llamacpp", "model_path": str(model), "threads": 1})
    cfg["llm"].pop("oracle")
    cf = write_config(tmp_path / "crash.yaml", cfg)
    env_path = os.pathsep.join(
        [str(REPO / "tests" / "fakes" / "crashing_llama"), os.environ.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(SNAKEFILE),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(cf),
            "--cores",
            "1",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": env_path.rstrip(os.pathsep), "ALEMS_FAKE_LLAMA": "segv"},
    )
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "baseline" / "baseline.log").read_text()
    assert "killed by SIGSEGV" in log and "make llama" in log and "LLMRuntimeError" in log
    assert "non-zero exit status -11" not in log
    assert "Error in rule baseline" in proc.stdout + proc.stderr
    assert not (tmp_path / "results" / "baseline" / "idle.json").exists()
    assert not list((tmp_path / "results").glob("runs/*/*/goals.csv"))


def test_an_unreachable_llm_server_stops_the_study_before_any_measurement(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    cfg = ci_config(None, llm={"backend": "openai", "base_url": url, "model": "m", "connect_timeout_s": 2})
    cfg["llm"].pop("oracle")
    proc = snakemake(tmp_path, "--cores", "1", "all", configfile=write_config(tmp_path / "down.yaml", cfg))
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "baseline" / "baseline.log").read_text()
    assert url in log and f"GET {url}/models" in log and "chat/completions" in log
    assert not (tmp_path / "results" / "baseline" / "idle.json").exists()
