# Set-up and the two everyday commands. `make demo` runs the main job on the
# built-in data, `make test` runs the default test suite; both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-all bench

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch; a bare `torch` requirement would pull a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python pipeline.py

test: install
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m ""
