# Two entry points the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-test promtool browser run test test-fast lint layers commits \
	typecheck security bandit audit bench bench-web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first, so sentence-transformers does not pull a CUDA one.
	$(BIN)/pip install --quiet torch==2.13.0

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python promtool browser
	$(BIN)/pip install --quiet -e '.[test]'

# promtool checks the Prometheus alert rules in deploy/prometheus (tests/deploy). It comes
# with Debian's `prometheus` package: installed here when missing and we may (root or
# passwordless sudo, apt-get). Under CI=true a promtool that cannot be had is a failure.
promtool:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  if command -v apt-get >/dev/null 2>&1 && { [ -z "$$SUDO" ] || sudo -n true 2>/dev/null; }; then \
	    echo "installing promtool (Debian package prometheus)"; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  fi; \
	fi
	@if ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$CI" = true ]; then echo "error: CI needs promtool (apt-get install prometheus)"; exit 1; fi; \
	  echo "warning: promtool not found: the alert-rule checks will be skipped (apt-get install prometheus)"; \
	fi

# The web page's tests drive Debian's Chromium (Playwright's own browser download does not
# work here); install it when missing. CI runs as root; elsewhere sudo is tried.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium \
	    || echo "could not install chromium: the browser tests will skip (and fail under CI=true)"; \
	fi

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

# Static security checks and the dependency audit (see .ci/dependency_audit.py for what
# happens when the vulnerability database cannot be reached).
security: bandit audit

bandit:
	$(BIN)/bandit -q -c pyproject.toml -r src -x src/ragd/store/postgres/search.py
	$(BIN)/bandit -q -c pyproject.toml -s B608 src/ragd/store/postgres/search.py

audit:
	$(BIN)/python .ci/dependency_audit.py

test: install-test lint typecheck security
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

bench-web: install-test
	$(BIN)/python benchmarks/web_page.py
