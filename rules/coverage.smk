# Identifiability maps (issue #5; ours, not in the paper): intervention coverage (K environments)
# x sparsity (k targets per environment), see docs/coverage.md. One job per (d, K) cell runs all
# its random designs, seeds and estimators in one process (shared noise draws, vmapped fits),
# plus one job per d for the structured designs. The aggregation appends, per d, the rates the
# claims check (level = summary) to the experiment's metrics table and writes the phase table.
# Active when config["experiments"] has an experiment with a `coverage` block.

from mncrl import coverage as cov


def coverage_experiments():
    return [name for name, block in (config.get("experiments") or {}).items()
            if cov.is_coverage(block)]


def coverage_cell_tables(wildcards):
    return [f"{RESULTS}/{wildcards.experiment}/cells/{cell}.csv"
            for cell in cells(wildcards.experiment)]


def coverage_cell_spec(wildcards):
    spec = cov.cell_spec(config, wildcards.experiment, wildcards.cell)
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def coverage_aggregate_spec(wildcards):
    spec = cov.aggregate_spec(config, wildcards.experiment)
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def coverage_cell_resources(wildcards):
    """(mem_mb, runtime in minutes) of one cell: one batch of same-shape problems in memory."""
    spec = cov.cell_spec(config, wildcards.experiment, wildcards.cell)
    cell = cov.CoverageCell.from_dict(spec["coverage_cell"])
    s = spec["scenario"]
    n, d = s.get("n", 100000), cell.d
    K = cell.K or 2 * d
    batch = max(1, len(cell.ks))
    mem = 3 * batch * (K + 1) * n * ((s.get("m") or d) + d) * 4 / 2**20
    problems = len(cell.designs()) * len(spec["seeds"])
    work = problems * (K + 1) * n * d * d * len(spec["estimators"])
    return int(2000 + min(mem, spec["max_batch_mb"] * 3)), int(15 + work / 2e10)


ruleorder: coverage_cell > estimate
ruleorder: coverage_aggregate > aggregate


rule coverage_cell:
    output:
        table=f"{RESULTS}/{{experiment}}/cells/{{cell}}.csv",
        info=f"{RESULTS}/{{experiment}}/cells/{{cell}}.json",
    wildcard_constraints:
        experiment="|".join(coverage_experiments()) or "^$",
    params:
        spec=coverage_cell_spec,
    log:
        f"{RESULTS}/logs/coverage/{{experiment}}/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/coverage/{{experiment}}/{{cell}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards: coverage_cell_resources(wildcards)[0],
        runtime=lambda wildcards: coverage_cell_resources(wildcards)[1],
    conda:
        "../envs/mncrl.yaml"
    shell:
        "python -m mncrl.coverage run --spec {params.spec:q} "
        "--out {output.table} --info {output.info} > {log} 2>&1"


rule coverage_aggregate:
    input:
        coverage_cell_tables,
    output:
        metrics=f"{RESULTS}/{{experiment}}/metrics.csv",
        summary=f"{RESULTS}/{{experiment}}/summary.csv",
        phase=f"{RESULTS}/{{experiment}}/phase.csv",
        designs=f"{RESULTS}/{{experiment}}/designs.csv",
    wildcard_constraints:
        experiment="|".join(coverage_experiments()) or "^$",
    params:
        spec=coverage_aggregate_spec,
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
        [f"{RESULTS}/{name}/{table}.csv" for name in coverage_experiments()
         for table in ("metrics", "phase", "designs")],
        [f"{FIGURES}/{name}.png" for name in figure_names()
         if set((config["figures"][name] or {}).get("experiments") or [])
         & set(coverage_experiments())],
