# The reviewer's entry point: `snakemake --cores N claims` evaluates every claim of
# paper/claims.yaml against the metrics tables -> results/claims.json + the markdown report.


rule claims:
    input:
        claims=config["claims"]["file"],
        tables=metrics_tables(),
    output:
        json=f"{RESULTS}/claims.json",
        report=config["claims"]["report"],
    log:
        f"{RESULTS}/logs/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims.tsv"
    conda:
        "../envs/mncrl.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config_hash=CONFIG_HASH,
    shell:
        "python -m mncrl.claims {input.tables} --claims {input.claims} "
        "--json {output.json} --report {output.report} --config-hash {params.config_hash} "
        "> {log} 2>&1"
