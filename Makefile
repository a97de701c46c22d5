# The two commands the README promises: `make plan` and `make test`. Both create .venv when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: plan test lint bench schema clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/planner plan examples/workloads.yaml --stack dev
	$(BIN)/planner verify --stack dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.plan_bench
	$(BIN)/python -m bench.error_bench
	$(BIN)/python -m bench.preview_bench
	$(BIN)/python -m bench.optimize_bench --exact-up-to 1000
	$(BIN)/python -m bench.throughput_bench

schema: $(STAMP)
	$(BIN)/planner schema > schema/workloads.schema.json
	$(BIN)/planner schema --plan > schema/plan.schema.json

clean:
	rm -rf $(VENV) plans
