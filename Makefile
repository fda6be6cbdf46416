# Two entry points for a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
EXPERIMENTS ?=
STAMP := $(VENV)/.installed-stamp

.PHONY: setup reproduce claims archive verify test lint format test-slurm clean

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

# The full run, archived in paper/results/ (+ the README's generated claims summary).
archive: $(STAMP)
	@start=$$(date +%s); started=$$(date -u +%FT%TZ); \
	$(BIN)/snakemake --cores $(CORES) && \
	$(BIN)/python -m mncrl.archive write --wall-seconds $$(( $$(date +%s) - start )) \
		--started $$started --finished $$(date -u +%FT%TZ) --cores $$( [ "$(CORES)" = all ] && nproc || echo $(CORES) ) && \
	$(BIN)/python -m mncrl.archive readme

# Rerun everything into results/verify/ and compare with the archive, number by number
# (EXPERIMENTS="fig2a table1": only those experiments' tables, claims inputs and claims).
VERIFY := --config config/config.yaml --config config/verify.yaml
verify: $(STAMP)
	$(BIN)/snakemake \
		$(if $(EXPERIMENTS),$$($(BIN)/python -m mncrl.archive targets $(VERIFY) --experiments $(EXPERIMENTS))) \
		--cores $(CORES) --configfile config/verify.yaml
	$(BIN)/python -m mncrl.archive compare $(VERIFY) $(if $(EXPERIMENTS),--experiments $(EXPERIMENTS))

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
