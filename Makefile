# reelroute: `make run` to start, `make test` to check everything.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Debian's chromium for the admin's browser tests (Playwright drives it; it downloads no browser).
CHROMIUM := /usr/bin/chromium
# Debian's prometheus for promtool (the alert rules' tests) and the real-Prometheus test.
PROMTOOL := /usr/bin/promtool
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test test-fast pytest lint bench chaos screenshots docs clean

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

$(PROMTOOL):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus

run: install
	$(VENV)/bin/reelroute up

test: lint pytest

pytest: install $(CHROMIUM) $(PROMTOOL)
	$(PY) -m pytest

# The fast tier while you work: SQLite only, no Prefect server, no chromium, no torch (the
# markers are in pyproject.toml; tests/conftest.py gives `postgres` to every PostgreSQL test).
test-fast: install
	REELROUTE_TEST_DATABASES=sqlite $(PY) -m pytest -q -p no:cacheprovider -n 2 \
		-m "not e2e and not browser and not torch and not postgres"

# The architecture picture and table, from the import graph (tests/test_architecture.py checks them).
DOT := /usr/bin/dot
$(DOT):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q graphviz

docs: install $(DOT)
	$(PY) -m tools.architecture
	$(DOT) -Tsvg docs/architecture.dot -o docs/architecture.svg

# Regenerate docs/screenshots/admin-*.png from the browser test.
screenshots: install $(CHROMIUM)
	REELROUTE_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/ui/admin/test_browser.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m tools.ownership

bench: install
	$(PY) -m bench
	$(PY) -m bench.routing
	$(PY) -m bench.wan
	$(PY) -m bench.outbox
	$(PY) -m bench.hostile
	$(PY) -m bench.metrics --sizes 1000,1000000,10000000
	$(PY) -m bench.orchestration

# The chaos soak (about 17 minutes on two cores; restarts PostgreSQL, so it runs as root): docs/reliability.md.
chaos: install
	$(PY) -m tests.chaos.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
