# One job per cell, whatever the experiment's kind (grid cell of a paper figure, (d, K) cell of
# the coverage maps, ...): simulate its problems, fit every estimator (seeds vmapped), evaluate
# on the test split. Data are regenerated from the seeds, never stored.


rule estimate:
    output:
        table=f"{RESULTS}/{{experiment}}/cells/{{cell}}.csv",
        info=f"{RESULTS}/{{experiment}}/cells/{{cell}}.json",
    log:
        f"{RESULTS}/logs/estimate/{{experiment}}/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/estimate/{{experiment}}/{{cell}}.tsv"
    conda:
        "../envs/mncrl.yaml"
    threads: 1
    resources:
        mem_mb=cell_mem_mb,
        runtime=cell_runtime,
    params:
        spec=cell_spec,
    shell:
        "python -m mncrl.experiments run --spec {params.spec:q} "
        "--out {output.table} --info {output.info} > {log} 2>&1"
