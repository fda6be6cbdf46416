# Identifiability maps (issue #5; ours, not in the paper): intervention coverage (K environments)
# x sparsity (k targets per environment), see docs/coverage.md. One job per (d, K) cell (large
# cells split by design seed) runs all its random designs, seeds and estimators in one process
# (shared noise draws, vmapped fits), plus one job per d for the structured designs. The
# aggregation appends, per d, the rates the claims check (level = summary) to the experiment's
# metrics table and writes the phase and design tables. Active for every experiment of
# config["experiments"] with a `coverage` block; helpers live in mncrl.coverage.

from mncrl import coverage as cov

COVERAGE = "|".join(cov.coverage_experiments(config)) or "^$"


ruleorder: coverage_cell > estimate
ruleorder: coverage_aggregate > aggregate


rule coverage_cell:
    output:
        table=f"{RESULTS}/{{experiment}}/cells/{{cell}}.csv",
        info=f"{RESULTS}/{{experiment}}/cells/{{cell}}.json",
    wildcard_constraints:
        experiment=COVERAGE,
    params:
        spec=lambda w: cov.spec_json(cov.cell_spec(config, w.experiment, w.cell)),
    log:
        f"{RESULTS}/logs/coverage/{{experiment}}/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/coverage/{{experiment}}/{{cell}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda w: cov.cell_resources(config, w.experiment, w.cell)[0],
        runtime=lambda w: cov.cell_resources(config, w.experiment, w.cell)[1],
    conda:
        "../envs/mncrl.yaml"
    shell:
        "python -m mncrl.coverage run --spec {params.spec:q} "
        "--out {output.table} --info {output.info} > {log} 2>&1"


rule coverage_aggregate:
    input:
        lambda w: cov.cell_tables(config, w.experiment, RESULTS),
    output:
        metrics=f"{RESULTS}/{{experiment}}/metrics.csv",
        summary=f"{RESULTS}/{{experiment}}/summary.csv",
        phase=f"{RESULTS}/{{experiment}}/phase.csv",
        designs=f"{RESULTS}/{{experiment}}/designs.csv",
    wildcard_constraints:
        experiment=COVERAGE,
    params:
        spec=lambda w: cov.spec_json(cov.aggregate_spec(config, w.experiment)),
    log:
        f"{RESULTS}/logs/coverage/{{experiment}}/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/coverage/{{experiment}}/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../envs/mncrl.yaml"
    shell:
        "python -m mncrl.coverage aggregate {input} --spec {params.spec:q} "
        "--out {output.metrics} --summary {output.summary} --phase {output.phase} "
        "--designs {output.designs} > {log} 2>&1"


rule coverage:
    input:
        [f"{RESULTS}/{name}/{table}.csv" for name in cov.coverage_experiments(config)
         for table in ("metrics", "phase", "designs")],
        [f"{FIGURES}/{name}.png" for name in cov.coverage_figures(config)],
