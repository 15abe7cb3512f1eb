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
from alems.config import (
    arm_configs,
    arm_names,
    model_file,
    needs_fetch,
    reference_arm,
    validate_config,
    without_arms,
)
from alems.tasks import benchmarks_dir
from alems.tasks.catalog import load_benchmarks


def _known_families():
    try:
        from alems.tasks import FAMILIES
    except ImportError:
        return None
    return FAMILIES


SCHEMA = Path(ALEMS_SRC).parent / "workflow" / "schemas" / "config.schema.yaml"
config.update(validate_config(config, SCHEMA, known_families=_known_families()))

# Arms (study.arms): each arm's merged, validated config; none for a study without arms.
ARMS = arm_names(config)
REFERENCE_ARM = reference_arm(config)
ARM_CONFIGS = (
    arm_configs(config, SCHEMA, known_families=_known_families()) if ARMS else {}
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
    arm=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
    benchmark="[a-z][a-z0-9_]*",


def arm_of(wildcards):
    """The arm a job belongs to (its ``arm`` wildcard), None for a job of a study without arms."""
    return wildcards.get("arm") if wildcards is not None else None


def study_root(arm=None):
    """Where a study's runs, tables and figures go: results/, or results/arms/{arm}/."""
    return f"results/{contracts.ARMS_DIR}/{arm}" if arm else "results"


def study_config(wildcards=None):
    """The config of the job's arm (its merged config), else the study's."""
    arm = arm_of(wildcards)
    return ARM_CONFIGS[arm] if arm else config


def run_dir(family, rep, arm=None):
    return f"{study_root(arm)}/runs/{family}/rep{rep}"


def run_files(name, arm=None):
    return [f"{run_dir(f, r, arm)}/{name}" for f in FAMILIES for r in REPS]


def hashed_config():
    """The config that provenance hashes: everything that changes a number
    (alems.contracts.UNHASHED_CONFIG_SECTIONS lists what only changes the drawing). With
    arms, the shared part only (no study.arms): editing one arm leaves the shared
    baseline, and so the other arms, as they are."""
    return contracts.hashed_config(without_arms(config))


def arm_hashed_config(wildcards):
    """The hashed config of one arm (its own config_hash)."""
    return contracts.hashed_config(ARM_CONFIGS[wildcards.arm])


def output_dir(wildcards, output):
    return os.path.dirname(output[0])


def model_inputs(wildcards):
    path = model_file(study_config(wildcards))
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
        "hashes": f"{study_root(arm_of(wildcards))}/provenance/hashes.json",
        "baseline": "results/baseline/idle.json",  # shared by every arm
        "benchmarks": benchmark_files([wildcards.family]),
    }
    path = model_file(study_config(wildcards))
    if path:
        inputs["model"] = path
    return inputs


def run_family_params(wildcards):
    """Only the sections a measurement job reads (``baseline``: a node other than the
    reference host judges its baseline cache by the current protocol and max_age_s)."""
    keys = (
        "study",
        "user_families",
        "llm",
        "agents",
        "energy",
        "accounting",
        "baseline",
    )
    cfg = study_config(wildcards)
    return {k: cfg[k] for k in keys}


def all_run_goals(wildcards):
    return run_files("goals.csv", arm_of(wildcards))


def all_run_calls(wildcards):
    return run_files("calls.csv", arm_of(wildcards))


def all_run_meta(wildcards):
    return run_files("run.json", arm_of(wildcards))


def family_groups():
    return {f: contracts.family_group(f, config) for f in FAMILIES}


def timeline_family(wildcards=None):
    return study_config(wildcards)["figures"]["timeline_family"] or FAMILIES[0]


def timeline_inputs(wildcards):
    d = run_dir(timeline_family(wildcards), REPS[0], arm_of(wildcards))
    return {"samples": f"{d}/samples.parquet", "events": f"{d}/events.jsonl"}


def study_figures(arm=None):
    return [
        f"{study_root(arm)}/figures/{name}.{ext}"
        for name in FIGURES
        for ext in contracts.FIGURE_FORMATS
    ]


def study_files(arm=None):
    """One study's (or one arm's) provenance, runs, tables and figures."""
    root = study_root(arm)
    files = [f"{root}/provenance/{name}" for name in contracts.PROVENANCE_FILES]
    for name in RUN_FILES:
        files += run_files(name, arm)
    files += [f"{root}/tables/{name}" for name in contracts.TABLE_FILES]
    return files + study_figures(arm)


def figure_files(wildcards):
    """Every figure of the study: with arms, each arm's and the comparison's."""
    if not ARMS:
        return study_figures()
    return [f for arm in ARMS for f in study_figures(arm)] + compare_figure_files()


def manifest_inputs(wildcards):
    """What a manifest lists: the study's files; one arm's (and the shared baseline) for an
    arm's manifest; with arms, results/manifest.json lists every arm's and the comparison.
    """
    arm = arm_of(wildcards)
    if arm or not ARMS:
        return study_files(arm) + ["results/baseline/idle.json"]
    files = list(PROVENANCE) + ["results/baseline/idle.json"]
    files += [f"{d}/{name}" for d in arm_measurement_order() for name in RUN_FILES]
    for a in ARMS:
        files += study_files(a) + [f"{study_root(a)}/manifest.json"]
    files += compare_table_files() + compare_figure_files()
    return list(dict.fromkeys(files))  # each once, measurement order first


def figure_outputs(root="results"):
    """The figures rule's outputs: fig1..fig8 (PNG, in the report) and pdf1..pdf8."""
    out = {}
    for i, name in enumerate(FIGURES, 1):
        out[f"fig{i}"] = report(
            f"{root}/figures/{name}.png",
            caption=f"../report/{name}.rst",
            category="Figures",
        )
    for i, name in enumerate(FIGURES, 1):
        out[f"pdf{i}"] = f"{root}/figures/{name}.pdf"
    return out


def table_outputs(root="results"):
    """The tables rule's outputs, named by their stem (goals, epg, ooi, ...)."""
    return {
        name.rsplit(".", 1)[0]: f"{root}/tables/{name}"
        for name in contracts.TABLE_FILES
    }


# --------------------------------------------------------------------------- arms
COMPARE_DIR = f"results/{contracts.COMPARE_DIR}"


def compare_table_files():
    return [f"{COMPARE_DIR}/{name}" for name in contracts.COMPARE_TABLE_FILES]


def compare_figure_files():
    return [
        f"{COMPARE_DIR}/figures/{name}.{ext}"
        for name in contracts.COMPARE_FIGURES
        for ext in contracts.FIGURE_FORMATS
    ]


def arm_measurement_order():
    """The (family, rep, arm) run directories in the order they are requested (and so, with
    one measurement at a time, measured): family by family, rep by rep, the arms within
    each in an order rotated by one per (family, rep), so no arm is always measured first
    or last and slow drift of the host does not line up with an arm."""
    order, k = [], 0
    for f in FAMILIES:
        for r in REPS:
            for j in range(len(ARMS)):
                order.append(run_dir(f, r, ARMS[(j + k) % len(ARMS)]))
            k += 1
    return order


def measurement_priority(wildcards):
    """A measurement job's priority: the earlier in arm_measurement_order, the higher, so
    that Snakemake (which runs the ready job of highest priority first) measures in that order.
    """
    order = arm_measurement_order()
    return len(order) - order.index(
        run_dir(wildcards.family, wildcards.rep, wildcards.arm)
    )


def compare_inputs(wildcards):
    """Every arm's tables and hashes, and (first, in measurement order) every arm's runs."""
    runs = [f"{d}/goals.csv" for d in arm_measurement_order()]
    return {
        "runs": runs,
        "goals": [f"{study_root(a)}/tables/goals.csv" for a in ARMS],
        "epg": [f"{study_root(a)}/tables/epg.csv" for a in ARMS],
        "ooi": [f"{study_root(a)}/tables/ooi.csv" for a in ARMS],
        "hashes": [f"{study_root(a)}/provenance/hashes.json" for a in ARMS],
    }


def compare_figure_outputs():
    """The compare_figures rule's outputs: png1..png3 and pdf1..pdf3."""
    out = {}
    for ext in contracts.FIGURE_FORMATS:
        for i, name in enumerate(contracts.COMPARE_FIGURES, 1):
            out[f"{ext}{i}"] = f"{COMPARE_DIR}/figures/{name}.{ext}"
    return out
