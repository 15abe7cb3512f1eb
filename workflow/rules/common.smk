# Helpers and input functions for every rule. The config is validated here, once,
# against workflow/schemas/config.schema.yaml; defaults come from the schema.
import os
import sys
from pathlib import Path

# This workflow's own library, src/ of the checkout. It goes first on sys.path here
# and on PYTHONPATH for every job, so the DAG and the jobs (also under --use-conda,
# whose environment holds only third-party packages) run the same A-LEMS code.
ALEMS_SRC = str(Path(str(workflow.current_basedir)).parents[1] / "src")
if ALEMS_SRC not in sys.path:
    sys.path.insert(0, ALEMS_SRC)
_user_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [ALEMS_SRC] + [p for p in _user_path if p and p != ALEMS_SRC]
    )
)

from alems import contracts
from alems.config import model_file, needs_fetch, validate_config
from alems.tasks import benchmarks_dir
from alems.tasks.catalog import load_benchmarks


def _known_families():
    try:
        from alems.tasks import FAMILIES
    except ImportError:
        return None
    return FAMILIES


config.update(
    validate_config(
        config,
        Path(ALEMS_SRC).parent / "workflow" / "schemas" / "config.schema.yaml",
        known_families=_known_families(),
    )
)

MODELS_DIR = config["llm"]["models_dir"].rstrip("/")
BENCHMARKS_DIR = benchmarks_dir(config).rstrip("/")
FAMILIES = list(config["study"]["families"])
REPS = list(range(config["study"]["reps"]))
# File names come from alems.contracts, the one home the library shares.
RUN_FILES = list(contracts.RUN_FILES)
FIGURES = list(contracts.FIGURES)
PROVENANCE = [f"results/provenance/{name}" for name in contracts.PROVENANCE_FILES]
TABLES = [f"results/tables/{name}" for name in contracts.TABLE_FILES]


wildcard_constraints:
    family="[a-z][a-z0-9_]*",
    rep=r"\d+",
    model=r"[A-Za-z0-9_.\-]+",
    benchmark="[a-z][a-z0-9_]*",


def run_dir(family, rep):
    return f"results/runs/{family}/rep{rep}"


def run_files(name):
    return [f"{run_dir(f, r)}/{name}" for f in FAMILIES for r in REPS]


def hashed_config():
    """The config that provenance hashes: everything that changes a number
    (alems.contracts.UNHASHED_CONFIG_SECTIONS lists what only changes the drawing)."""
    return contracts.hashed_config(config)


def output_dir(wildcards, output):
    return os.path.dirname(output[0])


def model_inputs(wildcards):
    path = model_file(config)
    return [path] if path else []


def benchmark_files(families):
    """The data files (fetch_benchmark outputs) that ``families`` draw from; a generated
    benchmark (GSM-Symbolic) has none."""
    catalog = load_benchmarks()
    names = contracts.family_benchmarks(families, config)
    return [f"{BENCHMARKS_DIR}/{b}.jsonl" for b in names if catalog[b].member]


def study_benchmark_files(wildcards):
    return benchmark_files(FAMILIES)


def run_family_inputs(wildcards):
    inputs = {
        "hashes": "results/provenance/hashes.json",
        "baseline": "results/baseline/idle.json",
        "benchmarks": benchmark_files([wildcards.family]),
    }
    path = model_file(config)
    if path:
        inputs["model"] = path
    return inputs


def run_family_params(wildcards):
    """Only the sections a measurement job reads."""
    keys = ("study", "user_families", "llm", "agents", "energy", "accounting")
    return {k: config[k] for k in keys}


def all_run_goals(wildcards):
    return run_files("goals.csv")


def all_run_meta(wildcards):
    return run_files("run.json")


def family_groups():
    return {f: contracts.family_group(f, config) for f in FAMILIES}


def timeline_family():
    return config["figures"]["timeline_family"] or FAMILIES[0]


def timeline_inputs(wildcards):
    d = run_dir(timeline_family(), REPS[0])
    return {"samples": f"{d}/samples.parquet", "events": f"{d}/events.jsonl"}


def figure_files(wildcards):
    return [
        f"results/figures/{name}.{ext}"
        for name in FIGURES
        for ext in contracts.FIGURE_FORMATS
    ]


def manifest_inputs(wildcards):
    files = list(PROVENANCE) + ["results/baseline/idle.json"]
    for name in RUN_FILES:
        files += run_files(name)
    return files + list(TABLES) + figure_files(wildcards)


def figure_outputs():
    """The figures rule's outputs: fig1..fig6 (PNG, in the report) and pdf1..pdf6."""
    out = {}
    for i, name in enumerate(FIGURES, 1):
        out[f"fig{i}"] = report(
            f"results/figures/{name}.png",
            caption=f"../report/{name}.rst",
            category="Figures",
        )
    for i, name in enumerate(FIGURES, 1):
        out[f"pdf{i}"] = f"results/figures/{name}.pdf"
    return out
