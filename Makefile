# reelroute: `make run` to start, `make test` to check everything.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run test pytest lint bench clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned (==2.13.0) so pip takes the local CPU build instead of a CUDA download.
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(VENV)/bin/reelroute up

test: lint pytest

pytest: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench
	$(PY) -m bench.orchestration

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
