# One tidy table per experiment (experiment, cell, scenario parameters, seed, estimator,
# metric, value, seconds, status) and its summary (mean, SE, n per cell x estimator x metric).


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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/mncrl.yaml"
    shell:
        "python -m mncrl.experiment aggregate {input} "
        "--out {output.metrics} --summary {output.summary} > {log} 2>&1"


rule metrics:
    input:
        metrics_tables(),
