rule baseline:
    input:
        hashes="results/provenance/hashes.json",
    output:
        "results/baseline/idle.json",
    log:
        "logs/baseline/baseline.log",
    benchmark:
        "results/benchmarks/baseline/baseline.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        energy_meter=1,
        mem_mb=512,
    params:
        baseline=config["baseline"],
        energy=config["energy"],
        llm=config["llm"],
    script:
        "../scripts/baseline.py"
