# One job per (family, rep): linear and agentic executions of each goal back to back,
# in alternating order, with the meter on for the whole job. energy_meter=1 keeps
# measurement jobs from overlapping on one host.
rule run_family:
    input:
        unpack(run_family_inputs),
    output:
        samples="results/runs/{family}/rep{rep}/samples.parquet",
        events="results/runs/{family}/rep{rep}/events.jsonl",
        goals="results/runs/{family}/rep{rep}/goals.csv",
        meta="results/runs/{family}/rep{rep}/run.json",
        calls="results/runs/{family}/rep{rep}/calls.csv",
    log:
        "logs/run_family/{family}_rep{rep}.log",
    benchmark:
        "results/benchmarks/run_family/{family}_rep{rep}.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: workflow.cores
    resources:
        energy_meter=1,
        mem_mb=2048,
    params:
        cfg=run_family_params,
    script:
        "../scripts/run_family.py"
