# mscsctl: `make demo` shows the tool end to end against the simulated vCenter lab;
# `make test` runs every test (unit, lab, Wine, PostgreSQL).
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_DIR := tests/lab
LAB_BIN := $(LAB_DIR)/bin/lab
PYTEST_ARGS ?=

.PHONY: help venv lab-build lab demo test test-unit lint docs bench clean

help:
	@echo "make demo   - install, start the simulated vCenter lab, run validate/plan/apply/plan/drift"
	@echo "              (EXAMPLE=examples/three-node.yaml: another example, against the lab it names)"
	@echo "make test   - run the whole test suite (unit + lab integration)"
	@echo "make lab    - start the default lab in the foreground and print VSPHERE_* exports"
	@echo "make bench  - plan/apply requests, bytes, time and memory for 1-200 clusters on the realistic lab"
	@echo "make lint   - ruff"
	@echo "make docs   - regenerate the JSON schema and the README rule table"

$(BIN)/mscsctl: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/mscsctl

$(LAB_BIN): $(wildcard $(LAB_DIR)/*.go) $(LAB_DIR)/go.mod $(LAB_DIR)/go.sum
	cd $(LAB_DIR) && go build -o bin/lab .

lab-build: $(LAB_BIN)

lab: venv lab-build
	$(BIN)/python tests/labctl.py run --lab $(LAB_DIR)/labs/default.yaml

EXAMPLE ?= examples/cluster-across-boxes.yaml

demo: venv lab-build
	$(BIN)/python tests/demo.py $(EXAMPLE)

test: venv lab-build
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; \
	exit $$rc

test-unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

docs: venv
	$(BIN)/python docs/gen.py

bench: venv lab-build
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(LAB_DIR)/bin .pytest_cache .ruff_cache .hypothesis
