# Quick start: `make run` (main job on the embedded default), `make test` (whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
DEVICE ?= cuda

.PHONY: run test lint report gpu-check clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26"
	$(BIN)/pip install --quiet -e ".[zoo,workflow,test]"
	$(BIN)/python -m fourier_masks.template_guard  # Snakemake in this venv refuses config templates
	touch $(STAMP)

# `make run CONFIG=file.yaml` checks the file as plain data (no template runs) before Snakemake reads it.
CONFIG ?= config/config.yaml

run: $(STAMP)
	$(BIN)/python -m fourier_masks.config $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

# Test files are shared out to TEST_WORKERS processes (pytest-xdist), each file whole in one of
# them so that its module fixtures are built once: 1050 s against 1599 s in one process (2 cores).
TEST_WORKERS ?= 2

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile  # tests and doctests

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check .

# Proves a GPU machine in at most about 8 minutes (benchmarks/gpu_check.py); DEVICE=cpu: tiny sizes.
gpu-check: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks.gpu_check --device $(DEVICE)

report: $(STAMP)
	$(BIN)/snakemake --report report.html

clean-venv:
	rm -rf $(VENV)
