# esbgen: `make demo` shows the main job on two bundled sample ESBs; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(wildcard plugins/esbgen-nginx)
STAMP := $(VENV)/.esbgen-installed
# `make demo` needs esbgen and the nginx plugin only; `make test` adds the test extras to the same .venv
DEMO_STAMP := $(VENV)/.esbgen-demo-installed
# The ESBs' Djangos on their own interpreters, for the tests of plugins/esbgen-django: the legacy ESB's
# 1.8.19 on Python 2.7, the later ESB's 1.11.29 on Python 3.6 (pyenv's, unless given).
PYTHON27 ?= $(HOME)/.pyenv/versions/2.7.18/bin/python2.7
PYTHON36 ?= $(HOME)/.pyenv/versions/3.6.15/bin/python3.6
DJANGO18 ?= .venv-django18
DJANGO111 ?= .venv-django111
DJANGO18_STAMP := $(DJANGO18)/.esbgen-ready
DJANGO111_STAMP := $(DJANGO111)/.esbgen-ready
# apigw-manager (and the Django it brings) in a virtualenv of its own: tests read export-apigw's output with it
APIGW_VENV ?= .venv-apigw
APIGW_MANAGER ?= apigw-manager[django]==5.0.3
APIGW_STAMP := $(APIGW_VENV)/.apigw-manager-installed

.PHONY: demo test bench system-packages clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e . $(foreach p,$(PLUGINS),-e $(p))
	touch $(DEMO_STAMP)

$(DJANGO18_STAMP): scripts/django-venv.sh $(STAMP)
	VIRTUALENV=$(VENV)/bin/virtualenv bash scripts/django-venv.sh $(DJANGO18) $(PYTHON27) 1.8.19

$(DJANGO111_STAMP): scripts/django-venv.sh $(STAMP)
	VIRTUALENV=$(VENV)/bin/virtualenv bash scripts/django-venv.sh $(DJANGO111) $(PYTHON36) 1.11.29

$(APIGW_STAMP): Makefile
	test -x $(APIGW_VENV)/bin/python || $(PYTHON) -m venv $(APIGW_VENV)
	$(APIGW_VENV)/bin/python -m pip install -q '$(APIGW_MANAGER)'
	touch $(APIGW_STAMP)

system-packages:
	bash scripts/ensure-system-packages.sh

demo: $(DEMO_STAMP)
	bash scripts/demo.sh

# CI draws the same property-test examples every run (a fixed seed); elsewhere they vary.
# scripts/test.sh runs the fleet's tests beside the rest, in a second pytest.
test: $(STAMP) $(DJANGO18_STAMP) $(DJANGO111_STAMP) $(APIGW_STAMP) system-packages
	ESBGEN_APIGW_PYTHON=$(APIGW_VENV)/bin/python bash scripts/test.sh $(PY) $(if $(CI),--hypothesis-seed=0)

# make bench BENCH_ARGS="--dir /dev/shm": measure on a RAM disk (any benchmarks/run.py option).
# What is timed is what operators install: esbgen's wheels in a virtualenv of their own (an editable
# install's finder is imported by every start of its Python, `python -c pass` included).
BENCH_VENV ?= .venv-bench
BENCH_WHEELS := build/bench-wheels
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	# setuptools packs what an earlier build left in build/lib: a module since moved would ride along
	rm -rf $(BENCH_WHEELS) build/lib $(foreach p,$(PLUGINS),$(p)/build)
	$(PY) -m pip wheel -q --no-deps -w $(BENCH_WHEELS) . $(PLUGINS)
	$(BENCH_VENV)/bin/python -m pip install -q $(BENCH_WHEELS)/*.whl
	$(BENCH_VENV)/bin/python -m pip install -q --force-reinstall --no-deps $(BENCH_WHEELS)/*.whl
	$(PY) benchmarks/run.py --venv $(BENCH_VENV) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DJANGO18) $(DJANGO111) $(APIGW_VENV) $(BENCH_VENV) build *.egg-info .pytest_cache
