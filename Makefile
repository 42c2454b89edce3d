# Two commands matter: `make dev` (run it locally) and `make test` (the whole suite).
# Both set themselves up from a fresh clone: virtualenv, Python packages, Azurite from npm.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: dev demo test test-newest setup tools bench beacon clean

setup: $(PY_STAMP) $(NODE_STAMP)

tools:
	@scripts/ensure-tools.sh

$(PY_STAMP): requirements.txt requirements-dev.txt | tools
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json | tools
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The beacon: readable source in beacon/, the minified build the app serves in dci/static/ (committed,
# so a deployment needs no Node.js; a test checks it matches the source).
beacon: $(NODE_STAMP)
	node beacon/build.mjs dci/static

local.settings.json:
	cp local.settings.sample.json $@

dev: setup local.settings.json
	scripts/dev.sh

# make dev with a month of demo history seeded first (scripts/dev.sh runs `python -m dci demo seed` once Azurite
# is up) and a local Dataverse: cases from the demo portal's form, notes, the agent's report in seconds.
demo: setup local.settings.json
	scripts/dev.sh --demo

test: setup
	$(VENV)/bin/ruff check .
	node --test beacon/tests/beacon.test.mjs
	$(PY) -m pytest
	scripts/newest-python.sh

# The suite on Python 3.13 alone (make test runs it after the 3.11 run).
test-newest: setup
	scripts/newest-python.sh

bench: setup
	$(PY) bench/collect_bench.py
	$(PY) bench/scrub_bench.py
	$(PY) bench/linker_bench.py
	$(PY) bench/cases_bench.py
	$(PY) bench/beacon_bench.py
	$(PY) bench/insights_bench.py
	$(PY) bench/search_bench.py
	$(PY) bench/telemetry_bench.py
	$(PY) bench/lake_bench.py
	$(PY) bench/footprint_bench.py
	$(PY) bench/visits_bench.py

clean:
	rm -rf $(VENV) .venv-3.13 node_modules .azurite .pytest_cache .hypothesis
