# esbgen: `make demo` shows the main job on the bundled sample ESB; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(wildcard plugins/esbgen-nginx)
STAMP := $(VENV)/.esbgen-installed

.PHONY: demo test bench system-packages clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

system-packages:
	bash scripts/ensure-system-packages.sh

demo: $(STAMP)
	bash scripts/demo.sh

# CI draws the same property-test examples every run (a fixed seed); elsewhere they vary.
test: $(STAMP) system-packages
	$(PY) -m pytest -q $(if $(CI),--hypothesis-seed=0)

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
