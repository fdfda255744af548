# Two entry points the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-test browser run test lint typecheck bench bench-web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first, so sentence-transformers does not pull a CUDA one.
	$(BIN)/pip install --quiet torch==2.13.0

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python browser
	$(BIN)/pip install --quiet -e '.[test]'

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

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

test: install-test lint typecheck
	$(BIN)/pytest

bench: install-test
	$(BIN)/python benchmarks/ingest_search.py

bench-web: install-test
	$(BIN)/python benchmarks/web_page.py
