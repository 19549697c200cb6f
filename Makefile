# LiveProof: `make run` and `make test` work on a fresh machine with Python 3.11+ and Node/npm.
# Everything is installed into the checkout: .venv/ and node_modules/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8545
API_PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint install browser clean devnet-up devnet-down gas-report

# The installs are keyed on their manifests, so a second `make` skips them.
$(BIN)/liveproof: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(BIN)/liveproof node_modules/.package-lock.json

# Devnet, contracts, database, API (foreground; Ctrl-C stops it) and demo data.
run: install
	$(BIN)/liveproof up --devnet-port $(PORT) --port $(API_PORT)

# Debian's chromium (and a CJK font) for the browser tests; Playwright cannot fetch a browser.
browser:
	sh scripts/setup/install-chromium.sh

test: install browser
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/liveproof compile --check

devnet-up: install
	$(BIN)/liveproof devnet up --port $(PORT)

devnet-down: install
	$(BIN)/liveproof devnet down --port $(PORT)

gas-report: install
	$(BIN)/liveproof gas-report

clean:
	-$(BIN)/liveproof devnet down --port $(PORT)
	rm -rf $(VENV) node_modules .liveproof .pytest_cache .mypy_cache .ruff_cache
