# Arms (study.arms): each arm is a study of its own under results/arms/{arm}/, with
# today's layout inside (provenance, runs, tables, figures, manifest.json), made by the
# same rules with the arm as a wildcard. The study's provenance (results/provenance/) and
# the idle baseline (results/baseline/idle.json) are shared by every arm on a host.
# Measurement jobs hold energy_meter=1 as ever, so no two overlap on one host; they are
# run family by family with the arms rotated (common.smk: arm_measurement_order): each
# arm_run_family job's priority is its place in that order, and every arm's fingerprint
# (which its measurements need) comes before all of them.
# Included by the Snakefile only when the config declares arms.


localrules:
    arm_tables,
    arm_figures,
    arm_manifest,
    compare_tables,
    compare_figures,


use rule fingerprint as arm_fingerprint with:
    output:
        hardware="results/arms/{arm}/provenance/hardware.json",
        environment="results/arms/{arm}/provenance/environment.json",
        config="results/arms/{arm}/provenance/config.json",
        hashes="results/arms/{arm}/provenance/hashes.json",
    log:
        "logs/arms/{arm}/fingerprint/fingerprint.log",
    benchmark:
        "results/arms/{arm}/benchmarks/fingerprint/fingerprint.tsv"
    priority: len(arm_measurement_order()) + 1
    params:
        config=arm_hashed_config,


use rule run_family as arm_run_family with:
    output:
        samples="results/arms/{arm}/runs/{family}/rep{rep}/samples.parquet",
        events="results/arms/{arm}/runs/{family}/rep{rep}/events.jsonl",
        goals="results/arms/{arm}/runs/{family}/rep{rep}/goals.csv",
        meta="results/arms/{arm}/runs/{family}/rep{rep}/run.json",
        calls="results/arms/{arm}/runs/{family}/rep{rep}/calls.csv",
    log:
        "logs/arms/{arm}/run_family/{family}_rep{rep}.log",
    benchmark:
        "results/arms/{arm}/benchmarks/run_family/{family}_rep{rep}.tsv"
    priority: measurement_priority


use rule tables as arm_tables with:
    input:
        goals=all_run_goals,
        meta=all_run_meta,
        calls=all_run_calls,
        hashes="results/arms/{arm}/provenance/hashes.json",
        baseline="results/baseline/idle.json",
    output:
        **table_outputs("results/arms/{arm}"),
    log:
        "logs/arms/{arm}/tables/tables.log",
    benchmark:
        "results/arms/{arm}/benchmarks/tables/tables.tsv"


use rule figures as arm_figures with:
    input:
        unpack(timeline_inputs),
        goals="results/arms/{arm}/tables/goals.csv",
        epg="results/arms/{arm}/tables/epg.csv",
        ooi="results/arms/{arm}/tables/ooi.csv",
        decomposition="results/arms/{arm}/tables/ooi_decomposition.csv",
        roles="results/arms/{arm}/tables/roles.csv",
        baseline="results/baseline/idle.json",
    output:
        **figure_outputs("results/arms/{arm}"),
    log:
        "logs/arms/{arm}/figures/figures.log",
    benchmark:
        "results/arms/{arm}/benchmarks/figures/figures.tsv"
    params:
        timeline_family=timeline_family,


use rule manifest as arm_manifest with:
    input:
        files=manifest_inputs,
        hashes="results/arms/{arm}/provenance/hashes.json",
    output:
        "results/arms/{arm}/manifest.json",
    log:
        "logs/arms/{arm}/manifest/manifest.log",
    benchmark:
        "results/arms/{arm}/benchmarks/manifest/manifest.tsv"


# The cross-arm tables: each arm's EpG and OOI side by side, and every other arm's EpG
# against the reference arm's with a paired goal-cluster bootstrap (alems.metrics.compare).
rule compare_tables:
    input:
        unpack(compare_inputs),
    output:
        epg="results/compare/epg.csv",
        ooi="results/compare/ooi.csv",
        ratios="results/compare/ratios.csv",
    log:
        "logs/compare/compare_tables.log",
    benchmark:
        "results/benchmarks/compare/compare_tables.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=1024,
    params:
        arms=ARMS,
        reference=REFERENCE_ARM,
        metrics=config["metrics"],
        groups=family_groups(),
        allow_mixed_hosts=config["allow_mixed_runs"],
    script:
        "../scripts/compare_tables.py"


rule compare_figures:
    input:
        epg="results/compare/epg.csv",
        ooi="results/compare/ooi.csv",
        ratios="results/compare/ratios.csv",
    output:
        **compare_figure_outputs(),
    log:
        "logs/compare/compare_figures.log",
    benchmark:
        "results/benchmarks/compare/compare_figures.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=1024,
    params:
        reference=REFERENCE_ARM,
        pooled_estimand=config["metrics"]["pooled_estimand"],
    script:
        "../scripts/compare_figures.py"
