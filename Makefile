# Two commands on a fresh machine with Python 3.11+:
#   make lab    JupyterLab on your own copy of the labs (PORT=NNNN to pick the port)
#   make test   the whole test suite, notebooks included
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8888
WORK   ?= work
BIN     = $(VENV)/bin
PYTEST_ARGS ?= -n auto

.PHONY: lab test test-slow bench venv clean sysdeps

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "xenlab needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall when the dependency list changes.
$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[lab]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[lab,test]'
	touch $@

venv: $(VENV)/.test-installed

lab: $(VENV)/.lab-installed
	$(BIN)/python -m xenlab.tools.worklabs labs $(WORK)
	$(BIN)/python -m xenlab.tools.runlab $(WORK) $(PORT)

sysdeps:
	bash tools/sysdeps.sh

test: $(VENV)/.test-installed sysdeps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.test-installed sysdeps
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/xenlab bench all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
