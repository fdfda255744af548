# Two entry points the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-test run test test-fast lint layers commits typecheck bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first, so sentence-transformers does not pull a CUDA one.
	$(BIN)/pip install --quiet torch==2.13.0

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

run: install
	$(BIN)/ragd serve

lint: layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The import-layer contracts in pyproject.toml (import-linter): transports -> services ->
# engines -> store, nothing upward, no cycles (CONTRIBUTING.md, "Layers").
layers:
	$(BIN)/lint-imports

# Every commit message on this branch since BASE: subject <= 72 characters, body saying why.
BASE ?= main
commits:
	$(BIN)/python scripts/check_commit_msg.py --range $(BASE)..HEAD

typecheck:
	$(BIN)/mypy

test: install-test lint typecheck
	$(BIN)/pytest

# The inner loop: pytest alone, stopping at the first failure; no reinstall, lint or mypy
# (pre-commit runs those on commit). Narrow it with ARGS: make test-fast ARGS='tests/store -k jobs'
ARGS ?=
test-fast: $(BIN)/pytest
	$(BIN)/pytest -x -q $(ARGS)

# Installs the test extra only when the virtualenv does not have it yet.
$(BIN)/pytest:
	$(MAKE) install-test

bench: install-test
	$(BIN)/python benchmarks/ingest_search.py
