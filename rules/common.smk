# Helpers only: paths, config validation, input functions, resources. No rules here.
# The library (src/mncrl) does the work; these functions only translate config -> file names.

import json
import os
import sys

from snakemake.exceptions import WorkflowError

from mncrl import config as config_mod
from mncrl import experiments as ex
from mncrl import provenance
from mncrl.errors import MncrlError
from mncrl.experiments.tables import spec_json


def validate_config(config, schema):
    """Schema check with defaults filled in + library checks; one clear message on failure."""
    try:
        config_mod.validate(config, schema)
    except MncrlError as exc:
        raise WorkflowError(str(exc)) from None


# Jobs run `python` from the environment running Snakemake (e.g. .venv/bin, whether or not the
# venv is activated), or the job's own environment under --software-deployment-method.
BIN = "" if workflow.deployment_settings.deployment_method else os.path.dirname(sys.executable)
SRC = f"{workflow.basedir}/src"
# Every job sees the workflow's own library first (needed inside a conda environment; the same
# code as the editable install otherwise). BLAS thread variables follow each job's `threads`
# (Snakemake sets them); `python -m mncrl.experiments` limits XLA to them as well. Compiled XLA
# programs are cached on disk and shared by the jobs (same program -> same results, without
# recompiling the estimators in every cell); set JAX_COMPILATION_CACHE_DIR to move the cache.
JAX_CACHE = os.path.abspath(".snakemake/jax-cache")
JOB_PATH = f"export PATH={BIN}:$PATH; " if BIN else ""
SHELL_PREFIX = (
    "set -euo pipefail; "
    f"{JOB_PATH}"
    f"export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    f"export JAX_COMPILATION_CACHE_DIR=${{{{JAX_COMPILATION_CACHE_DIR:-{JAX_CACHE}}}}}; "
    "export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0; "
)


validate_config(config, f"{workflow.basedir}/config/schema.yaml")
RESULTS = config["results_dir"]
FIGURES = config["figures_dir"]
CONFIG_HASH = provenance.config_hash(config)  # stamped into the claims report


# ---- experiments: cells, tables, specs --------------------------------------------------------


def experiments():
    return ex.names(config)


def cell_tables(wildcards):
    return [
        f"{RESULTS}/{wildcards.experiment}/cells/{cell.id}.csv"
        for cell in ex.cells(config, wildcards.experiment)
    ]


def cell_spec(wildcards):
    """The cell's full spec as JSON (a params value: a changed config reruns only its cells)."""
    return spec_json(ex.cell_spec(config, wildcards.experiment, wildcards.cell))


def experiment_spec(wildcards):
    return spec_json(ex.experiment_spec(config, wildcards.experiment))


def derived_tables(name):
    return [f"{RESULTS}/{name}/{table}.csv" for table in ex.derived_tables(config, name)]


def derived_table_names():
    """Regex of every derived table name (the `table` wildcard of rule derived_table)."""
    names = sorted({t for name in experiments() for t in ex.derived_tables(config, name)})
    return "|".join(names) or "^$"


def metrics_tables(names=None):
    names = experiments() if names is None else names
    return [f"{RESULTS}/{name}/metrics.csv" for name in names]


def experiment_outputs(kind=None):
    """Metrics and derived tables of every experiment (of one kind when given)."""
    names = [
        n for n in experiments() if kind is None or ex.kind_of(config["experiments"][n]) == kind
    ]
    return [path for n in names for path in metrics_tables([n]) + derived_tables(n)]


# ---- resources: each kind estimates its cells' memory and runtime -------------------------------


def _cost(wildcards):
    return ex.job_cost(ex.cell_spec(config, wildcards.experiment, wildcards.cell))


def cell_mem_mb(wildcards):
    return _cost(wildcards)[0]


def cell_runtime(wildcards):
    """Minutes; generous (a cluster kills jobs that exceed it)."""
    return _cost(wildcards)[1]


# ---- figures ---------------------------------------------------------------------------------------


def figure_names():
    return list(config["figures"])


def figure_notebook(wildcards):
    return config["figures"][wildcards.figure].get("notebook", f"figures/{wildcards.figure}.py")


def figure_inputs(wildcards):
    exps = config["figures"][wildcards.figure]["experiments"]
    return {
        "notebook": figure_notebook(wildcards),
        "claims": config["claims"]["file"],
        "tables": metrics_tables(exps) + [p for name in exps for p in derived_tables(name)],
    }


def figure_parameters(wildcards, output):
    """The notebook's papermill parameters (JSON, read by papermill as YAML)."""
    exps = config["figures"][wildcards.figure]["experiments"]
    params = {
        "figure": wildcards.figure,
        "metrics": {name: f"{RESULTS}/{name}/metrics.csv" for name in exps},
        "tables": {
            name: {t: f"{RESULTS}/{name}/{t}.csv" for t in ex.derived_tables(config, name)}
            for name in exps
            if ex.derived_tables(config, name)
        },
        "claims_file": config["claims"]["file"],
        "out_stem": f"{FIGURES}/{wildcards.figure}",
        "headline_metric": config["headline_metric"],
        "estimators": {
            label: entry.get("display", label) for label, entry in config["estimators"].items()
        },
        **config["figures"][wildcards.figure].get("parameters", {}),
    }
    return json.dumps(params)  # keys in config order: the legend order of the figures


def figure_files(kind=None):
    """The figures (PNG) that read an experiment (of one kind when given)."""
    names = {
        n for n in experiments() if kind is None or ex.kind_of(config["experiments"][n]) == kind
    }
    return [
        f"{FIGURES}/{fig}.png"
        for fig in figure_names()
        if kind is None or names & set(config["figures"][fig]["experiments"])
    ]


def all_targets():
    return (
        experiment_outputs()
        + figure_files()
        + [f"{RESULTS}/claims.json", config["claims"]["report"]]
    )
