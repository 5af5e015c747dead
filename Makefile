# herexp — the README's two set-up commands are `make install` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest

.PHONY: install test test-slow test-push test-all bench train lint clean

install:  ## create .venv/ and install herexp with every dependency (CPU torch here, CUDA torch on GPU hosts)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -e ".[dev]"

test:  ## fast tests: units, config composition, tiny end-to-end runs (no GPU, no network)
	$(PYTEST) -m "not slow and not bench" -p no:cacheprovider

test-slow:  ## learning checks (minutes): quickstart reaches >= 90 % on Reach, fast path = stock
	$(PYTEST) -m "slow and not push" -p no:cacheprovider

test-push:  ## Push preset check (~30-45 min, one core): experiment=push_fast >= 90 % within 500 k steps
	$(PYTEST) -m push -p no:cacheprovider -s

test-all: test test-slow

bench:  ## speed: herexp vs stock SB3, same training config, A/B alternating (writes outputs/bench/bench.json); ARGS='presets=push8 repeats=5'
	$(BIN)/python -m herexp.bench $(ARGS)

train:  ## the quickstart: FetchReach + HER, >= 90 % eval success in about a minute on a CPU
	$(BIN)/python -m herexp.train experiment=reach_quickstart

lint:
	$(BIN)/ruff check herexp tests hydra_plugins

clean:
	rm -rf .pytest_cache .ruff_cache
