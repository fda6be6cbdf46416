# Reproduces Bing, Ninad, Wahl, Runge (CLeaR 2024): every figure, table and claim.
#   snakemake --cores N             everything (default target `all`)
#   snakemake --cores N claims      the reviewer's entry point: results/claims.json + report
#   snakemake --configfile config/smoke.yaml --cores 2     the fast smoke run (results/smoke/)
# Wiring only: the rules are in rules/, helpers in rules/common.smk, the work in src/mncrl.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"


validate_config(config, "config/schema.yaml")


report: "rules/report/workflow.rst"


include: "rules/estimate.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/claims.smk"
include: "rules/coverage.smk"  # ours (issue #5): identifiability maps


rule all:
    default_target: True
    input:
        all_targets(),
