# Two commands matter: `make run` and `make test`. Everything else is set-up they do by themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_WORKERS ?= 2

.PHONY: setup run test lint typecheck unit integration e2e browser bench demo clean d365-setup dataverse-setup

# The virtualenv is rebuilt only when a requirements file changes (a second run installs nothing).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Azurite and the panel's packages (MSAL.js, ACS Calling SDK, esbuild, axe-core), pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The web phone panel (panel/src -> panel/dist), served by the app under /api/panel/.
PANEL_SOURCES := $(shell find panel/src -type f 2>/dev/null) panel/build.mjs
panel/dist/index.html: node_modules/.installed $(PANEL_SOURCES)
	node panel/build.mjs

# The browser tests drive Debian's chromium (never a downloaded browser build).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

setup: $(VENV)/.installed node_modules/.installed panel/dist/index.html

run: setup
	$(PY) -m emulators.run

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q -n $(PYTEST_WORKERS)

e2e: setup
	$(PY) -m pytest tests/e2e -q -n $(PYTEST_WORKERS)

browser: setup $(CHROMIUM)
	$(PY) -m pytest tests/browser -q -p no:xdist

test: lint typecheck unit integration e2e browser

bench: setup
	$(PY) scripts/bench.py

# Prepare the D365 org (docs/dataverse-setup.md): the custom columns on phonecall, the CIF 1.0 and
# 2.0 channel providers of the panel, the "Phone User" role. A second run changes nothing.
# ARGS passes options, e.g. make d365-setup ARGS=--dry-run
d365-setup: setup
	$(PY) scripts/dataverse_setup.py $(ARGS)

dataverse-setup: d365-setup  # the name it had before it did more than columns

demo: setup
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) node_modules panel/dist tests/browser/artifacts .local .pytest_cache .mypy_cache .ruff_cache
