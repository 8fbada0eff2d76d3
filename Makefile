# reelroute: `make run` to start, `make test` to check everything.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Debian's chromium for the admin's browser tests (Playwright drives it; it downloads no browser).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test pytest lint bench chaos screenshots clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned (==2.13.0) so pip takes the local CPU build instead of a CUDA download.
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

run: install
	$(VENV)/bin/reelroute up

test: lint pytest

pytest: install $(CHROMIUM)
	$(PY) -m pytest

# Regenerate docs/screenshots/admin-*.png from the browser test.
screenshots: install $(CHROMIUM)
	REELROUTE_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/ui/admin/test_browser.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench
	$(PY) -m bench.routing
	$(PY) -m bench.wan
	$(PY) -m bench.outbox
	$(PY) -m bench.orchestration

# The chaos soak (about 17 minutes on two cores; restarts PostgreSQL, so it runs as root): docs/reliability.md.
chaos: install
	$(PY) -m tests.chaos.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
