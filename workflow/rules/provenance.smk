rule fingerprint:
    input:
        model=model_inputs,
        benchmarks=study_benchmark_files,
    output:
        hardware="results/provenance/hardware.json",
        environment="results/provenance/environment.json",
        config="results/provenance/config.json",
        hashes="results/provenance/hashes.json",
    log:
        "logs/fingerprint/fingerprint.log",
    benchmark:
        "results/benchmarks/fingerprint/fingerprint.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=512,
    params:
        config=hashed_config(),
    script:
        "../scripts/fingerprint.py"
