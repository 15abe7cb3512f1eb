rule tables:
    input:
        goals=all_run_goals,
        meta=all_run_meta,
        calls=all_run_calls,
        hashes="results/provenance/hashes.json",
        baseline="results/baseline/idle.json",
    output:
        **table_outputs(),
    log:
        "logs/tables/tables.log",
    benchmark:
        "results/benchmarks/tables/tables.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=1024,
    params:
        metrics=config["metrics"],
        groups=family_groups(),
        allow_mixed=config["allow_mixed_runs"],
    script:
        "../scripts/tables.py"
