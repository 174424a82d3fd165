# flan_jax: `make test` and `make demo` create/refresh the virtualenv at .venv, install, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flan_jax-installed
PYTEST_ARGS ?=

.PHONY: install test test-all demo notebook lint clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test,hf]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow" tests $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 tests $(PYTEST_ARGS)
	$(PY) bench/fault_campaign.py

demo: $(STAMP)
	$(PY) -m flan_jax.demo

# Executes notebooks/flan_jax_tour.ipynb top to bottom (also part of `make test`).
notebook: $(STAMP)
	$(PY) -m pytest -q tests/test_notebook.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo_out
