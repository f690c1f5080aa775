# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch/torchvision: pip takes the build already on this machine's disk when one is there.
TORCH  ?= 'torch>=2.1' 'torchvision>=0.16'

.PHONY: demo test venv bench bench-gpu clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[all]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.dev-installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/genaug demo --out outputs/demo

test: $(VENV)/.dev-installed
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/throughput.py

# CUDA numbers (throughput, B=8 latency, kornia eager and torch.compile, generative sampling) in
# about 5 minutes: writes benchmarks/RESULTS-cuda.md. On a GPU machine without make or this venv,
# run `python3 benchmarks/gpu_suite.py` from the repository root (genaug importable, e.g.
# PYTHONPATH=$$PWD); benchmarks/gpu_command.txt is the full command used on the lent GPU machine.
bench-gpu: $(VENV)/.dev-installed
	$(PY) benchmarks/gpu_suite.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis
