rule manifest:
    input:
        files=manifest_inputs,
        hashes="results/provenance/hashes.json",
    output:
        "results/manifest.json",
    log:
        "logs/manifest/manifest.log",
    benchmark:
        "results/benchmarks/manifest/manifest.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=512,
    script:
        "../scripts/manifest.py"
