# Reproduces Bing, Ninad, Wahl, Runge (CLeaR 2024): every figure, table and claim.
#   snakemake --cores N             everything (default target `all`)
#   snakemake --cores N claims      the reviewer's entry point: results/claims.json + report
#   snakemake --configfile config/smoke.yaml --cores 2     the fast smoke run (results/smoke/)
# Wiring only: the rules are in rules/, helpers (and the config check) in rules/common.smk,
# the work in src/mncrl.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"


shell.prefix(SHELL_PREFIX)


report: "rules/report/workflow.rst"


wildcard_constraints:
    experiment="[A-Za-z0-9][A-Za-z0-9_.-]*",
    cell="[A-Za-z0-9][A-Za-z0-9_.+-]*",


include: "rules/estimate.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/claims.smk"


rule all:
    default_target: True
    input:
        all_targets(),
