# One-command entry points for a fresh machine (Python 3.10+ with venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup setup-test clean

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

# Lint the seed example (flagged) and its fix (clean), then torchvision's model zoo.
demo: setup
	-$(BIN)/gradlint fixtures/keras/seed_sigmoid_deep.py
	$(BIN)/gradlint fixtures/keras/seed_relu_batchnorm.py

test: setup-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .gradlint_cache
