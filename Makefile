# flan_jax: `make test` and `make demo` create/refresh the virtualenv at .venv, install, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flan_jax-installed
PYTEST_ARGS ?=
# seqio's caching job (flan-jax cache-tasks) needs apache-beam, and beam needs protobuf<7 while the
# main venv has protobuf 7 (and sentencepiece 0.2.3, which needs it). .venv-cache is a layered venv:
# the `cache` extra (beam, protobuf 6, sentencepiece 0.2.0) in front of .venv's packages.
# tests/test_cache.py caches a task with it and reads the cache back with .venv.
CACHE_VENV := .venv-cache
CACHE_PY := $(CACHE_VENV)/bin/python
CACHE_STAMP := $(CACHE_VENV)/.flan_jax-cache-installed

.PHONY: install cache-venv test test-all demo demo-experiment demo-ablations notebook lint clean

# promptsource: Flan 2022's T0-SF templates, installed apart (setup.py's flan2022 extra says why).
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools<81' wheel  # promptsource imports pkg_resources (gone in 81)
	$(PY) -m pip install -q -e '.[test,hf,flan2022]'
	$(PY) -m pip install -q --no-deps --ignore-requires-python promptsource==0.2.3
	touch $(STAMP)

install: $(STAMP)

$(CACHE_STAMP): $(STAMP)
	test -x $(CACHE_PY) || $(PY) -m venv $(CACHE_VENV)
	base=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  own=$$($(CACHE_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  echo "import site; site.addsitedir('$$base')" > "$$own/zz_flan_jax_venv.pth"
	$(CACHE_PY) -m pip install -q -e '.[cache]'
	touch $(CACHE_STAMP)

cache-venv: $(CACHE_STAMP)

test: $(STAMP) $(CACHE_STAMP)
	FLAN_JAX_CACHE_PYTHON=$(abspath $(CACHE_PY)) $(PY) -m pytest -q -n 2 -m "not slow" tests $(PYTEST_ARGS)

test-all: $(STAMP) $(CACHE_STAMP)
	FLAN_JAX_CACHE_PYTHON=$(abspath $(CACHE_PY)) $(PY) -m pytest -q -n 2 tests $(PYTEST_ARGS)
	$(PY) bench/fault_campaign.py

demo: $(STAMP)
	$(PY) -m flan_jax.demo

# The 3-seed experiment (tuned vs untuned on the same prompts, bootstrap 95 % intervals).
demo-experiment: $(STAMP)
	$(PY) -m flan_jax.demo_experiment --output_dir demo_out/experiment

# The demo's experiment plus the number-of-clusters and instruction-format ablations (longer).
demo-ablations: $(STAMP)
	$(PY) -m flan_jax.demo_experiment --ablations --output_dir demo_out/experiment

# Executes notebooks/flan_jax_tour.ipynb top to bottom (also part of `make test`).
notebook: $(STAMP)
	$(PY) -m pytest -q tests/test_notebook.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(CACHE_VENV) build *.egg-info .pytest_cache demo_out
