# The paper figures, drawn from the tables, the baseline and one run's samples and
# events only: `snakemake --cores 1 figures` never reruns a measurement.
rule figures:
    input:
        unpack(timeline_inputs),
        goals="results/tables/goals.csv",
        epg="results/tables/epg.csv",
        ooi="results/tables/ooi.csv",
        decomposition="results/tables/ooi_decomposition.csv",
        roles="results/tables/roles.csv",
        baseline="results/baseline/idle.json",
    output:
        **figure_outputs(),
    log:
        "logs/figures/figures.log",
    benchmark:
        "results/benchmarks/figures/figures.tsv"
    conda:
        "../../envs/alems.yaml"
    threads: 1
    resources:
        mem_mb=1024,
    params:
        timeline_family=timeline_family(),
    script:
        "../scripts/figures.py"
