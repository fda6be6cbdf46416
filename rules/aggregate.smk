# One tidy table per experiment (experiment, cell, scenario/design columns, seed, estimator,
# metric, value, seconds, status), its summary (mean, SE, n per cell x estimator x metric), and
# the derived tables of its kind (coverage: the phase diagram and the design table).


rule aggregate:
    input:
        cell_tables,
    output:
        metrics=f"{RESULTS}/{{experiment}}/metrics.csv",
        summary=f"{RESULTS}/{{experiment}}/summary.csv",
    log:
        f"{RESULTS}/logs/aggregate/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate/{{experiment}}.tsv"
    conda:
        "../envs/mncrl.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        spec=experiment_spec,
    shell:
        "python -m mncrl.experiments aggregate {input} --spec {params.spec:q} "
        "--out {output.metrics} --summary {output.summary} > {log} 2>&1"


rule derived_table:
    input:
        f"{RESULTS}/{{experiment}}/metrics.csv",
    output:
        f"{RESULTS}/{{experiment}}/{{table}}.csv",
    log:
        f"{RESULTS}/logs/tables/{{experiment}}/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/{{experiment}}/{{table}}.tsv"
    wildcard_constraints:
        table=derived_table_names(),
    conda:
        "../envs/mncrl.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        spec=experiment_spec,
    shell:
        "python -m mncrl.experiments table {wildcards.table} {input} --spec {params.spec:q} "
        "--out {output} > {log} 2>&1"


rule metrics:
    input:
        metrics_tables(),


rule coverage:
    input:
        experiment_outputs(kind="coverage"),
        figure_files(kind="coverage"),
