"""A-LEMS: energy per successful goal (EpG) and the orchestration overhead index (OOI).

    snakemake --cores 1 all                      # the whole study (config/config.yaml)
    snakemake --cores 1 figures                  # figures again from existing tables
    snakemake --cores 1 all --configfile config/smoke.yaml

Measurement jobs hold the resource energy_meter=1 (set by profiles/default), so two
never overlap on one host, even with --cores N.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/manifest.smk"


if ARMS:

    include: "workflow/rules/arms.smk"


localrules:
    all,
    fetch_model,
    fetch_benchmark,
    tables,
    figures,
    manifest,


rule all:
    default_target: True
    input:
        "results/manifest.json",
        figure_files,
