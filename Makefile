# One-command entry points for a fresh machine (Python 3.10+ with venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SARIF_SCHEMA := $(VENV)/share/sarif/sarif-2.1.0-rtm.5.json

.PHONY: demo lint test setup setup-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Static linting needs only libcst and click: a light install.
setup: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# Tests also need torch (the CPU build, pinned), keras, and real model code to lint for the
# precision tests (installed without dependencies: gradlint only reads their files).
setup-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps -r requirements/precision.txt
	# The official SARIF 2.1.0 schema, from Microsoft's npm package (read by tests, not committed).
	@test -f $(SARIF_SCHEMA) || (mkdir -p $(VENV)/share/sarif && cd $(VENV)/share/sarif && \
		npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null 2>&1 && \
		tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json && \
		mv package/lib/schemas/sarif-2.1.0-rtm.5.json . && rm -rf package *.tgz) || \
		echo "note: could not fetch the SARIF schema with npm; its validation test will be skipped"

# Lint the seed example (flagged: gradlint exits 1, which is expected here) and its fix (clean).
# `|| test $$? -eq 1` accepts exactly that exit 1; a usage or internal error (exit 2) still fails.
demo: setup
	@echo "== The seed example, 12 sigmoid Dense layers: gradlint flags it and exits 1 (expected)."
	$(BIN)/gradlint fixtures/keras/seed_sigmoid_deep.py || test $$? -eq 1
	@echo "== Its fix, ReLU + BatchNormalization: no findings, exit 0."
	$(BIN)/gradlint fixtures/keras/seed_relu_batchnorm.py

# gradlint's own code: ruff over the shipped packages and the tests, tools and benchmarks (test input
# data is excluded in pyproject.toml), mypy over the shipped packages (config and the per-file exceptions
# for areas being restructured are in pyproject.toml). Any finding fails `make test`, and so CI.
lint: setup-test
	$(BIN)/ruff check gradlint rules tests tools benchmarks
	$(BIN)/mypy gradlint rules

test: setup-test lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .gradlint_cache .ruff_cache .mypy_cache
