# Helpers only: paths, config validation, input functions, resources. No rules here.
# The library (src/mncrl) does the work; these functions only translate config -> file names.

import json
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from mncrl import experiment as mx
from mncrl.errors import MncrlError


def validate_config(config, schema):
    """Schema check (snakemake.utils.validate) + library checks; one clear message on failure."""
    try:
        validate(config, schema)
    except WorkflowError as exc:
        error = exc.__context__
        message = mx.format_schema_error(error) if hasattr(error, "validator") else str(exc)
        raise WorkflowError(message) from None
    try:
        mx.check_config(config)
    except MncrlError as exc:
        raise WorkflowError(f"config: {exc}") from None


RESULTS = config.get("results_dir", "results")
FIGURES = config.get("figures_dir", "figures")
SRC = f"{workflow.basedir}/src"

# Jobs run `python` from the environment running Snakemake (e.g. .venv/bin, whether or not the
# venv is activated), or the job's own environment under --software-deployment-method.
BIN = "" if workflow.deployment_settings.deployment_method else os.path.dirname(sys.executable)

# Every job sees the workflow's own library first (needed inside a conda environment; the same
# code as the editable install otherwise). BLAS thread variables follow each job's `threads`
# (Snakemake sets them); `python -m mncrl.experiment` limits XLA to them as well. Compiled XLA
# programs are cached on disk and shared by the jobs (same program -> same results, without
# recompiling the estimators in every cell); set JAX_COMPILATION_CACHE_DIR to move the cache.
JAX_CACHE = os.path.abspath(".snakemake/jax-cache")
JOB_PATH = f"export PATH={BIN}:$PATH; " if BIN else ""
shell.prefix(
    "set -euo pipefail; "
    f"{JOB_PATH}"
    f"export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    f"export JAX_COMPILATION_CACHE_DIR=${{{{JAX_COMPILATION_CACHE_DIR:-{JAX_CACHE}}}}}; "
    "export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0; "
)


def experiments():
    return list(config["experiments"])


def cells(experiment):
    return [c.id for c in mx.experiment_cells(config, experiment)]


def cell_tables(wildcards):
    return [f"{RESULTS}/{wildcards.experiment}/cells/{cell}.csv"
            for cell in cells(wildcards.experiment)]


def cell_spec(wildcards):
    """The cell's full spec as JSON (a params value: a changed config reruns only its cells)."""
    spec = mx.cell_spec(config, wildcards.experiment, wildcards.cell)
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def cell_mem_mb(wildcards):
    from mncrl.simulation import Scenario

    spec = mx.cell_spec(config, wildcards.experiment, wildcards.cell)
    scenario = Scenario.from_dict(spec["scenario"])
    chunk = mx.seeds_per_chunk(scenario, len(spec["seeds"]), spec["max_batch_mb"])
    per_seed = 3 * (scenario.d + 1) * scenario.n * (scenario.m_obs + scenario.d) * 4 / 2**20
    return int(1500 + 1.5 * chunk * per_seed)


def cell_runtime(wildcards):
    """Minutes; generous (a cluster kills jobs that exceed it)."""
    spec = mx.cell_spec(config, wildcards.experiment, wildcards.cell)
    s = spec["scenario"]
    work = s.get("d", 6) ** 2 * s.get("n", 100000) * len(spec["seeds"])
    return int(10 + work / 2e7)


def metrics_tables(names=None):
    names = experiments() if names is None else names
    return [f"{RESULTS}/{name}/metrics.csv" for name in names]


def figure_names():
    return list(config.get("figures") or {})


def figure_notebook(wildcards):
    entry = config["figures"][wildcards.figure]
    return entry.get("notebook", f"figures/{wildcards.figure}.py")


def figure_inputs(wildcards):
    entry = config["figures"][wildcards.figure]
    return {
        "notebook": figure_notebook(wildcards),
        "claims": config["claims"]["file"],
        "tables": metrics_tables(entry.get("experiments") or []),
    }


def figure_parameters(wildcards, output):
    """The notebook's papermill parameters (JSON, read by papermill as YAML)."""
    entry = config["figures"][wildcards.figure]
    exps = entry.get("experiments") or []
    params = {
        "figure": wildcards.figure,
        "metrics": {name: f"{RESULTS}/{name}/metrics.csv" for name in exps},
        "claims_file": config["claims"]["file"],
        "out_stem": f"{FIGURES}/{wildcards.figure}",
        "headline_metric": config.get("headline_metric", "mcc_paper"),
        "estimators": {label: entry_.get("display", label)
                       for label, entry_ in config["estimators"].items()},
        "roles": {label: entry_.get("role", "ours")
                  for label, entry_ in config["estimators"].items()},
    }
    return json.dumps(params)  # keys in config order: the legend order of the figures


def all_targets():
    return (
        metrics_tables()
        + [f"{FIGURES}/{name}.png" for name in figure_names()]
        + [f"{RESULTS}/claims.json", config["claims"]["report"]]
    )
