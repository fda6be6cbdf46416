# Two entry points for a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
STAMP := $(VENV)/.installed-stamp

.PHONY: setup reproduce claims test lint format test-slurm clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,cluster]"
	touch $(STAMP)

setup: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

claims: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) claims

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks figures
	$(BIN)/ruff format --check src tests benchmarks figures
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks figures
	$(BIN)/snakefmt Snakefile rules

test: lint
	$(BIN)/python -m pytest

test-slurm: $(STAMP)
	bash tests/slurm/run.sh

clean:
	rm -rf results .snakemake report.html
