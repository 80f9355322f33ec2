# Quick start: `make run` (main job on the embedded default), `make test` (whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: run test lint report clean-venv

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

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest  # testpaths: tests and the package's doctests

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check .

report: $(STAMP)
	$(BIN)/snakemake --report report.html

clean-venv:
	rm -rf $(VENV)
