# Two commands do everything on a fresh machine:
#   make demo   create .venv if needed, install, run `pgen demo` on bundled data
#   make test   create .venv if needed, install, run the test suite
# torch is installed first and pinned: the local CPU build of 2.13.0. A bare torch
# requirement with no torch installed pulls several GB of CUDA wheels.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.pgen-installed
TORCH  := torch==2.13.0

.PHONY: install demo test lint bench bench-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[data,dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pgen demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check pgen tests bench examples

# NumPyro and jax for bench/nuts.py's comparison rows only; pgen and its tests never need them
bench-deps: $(STAMP)
	$(PY) -m pip install --quiet numpyro==0.22.0 jax==0.10.2 jaxlib==0.10.2

bench: $(STAMP)
	$(PY) bench/svi_overhead.py
	$(PY) bench/vae_quality.py
	$(PY) bench/nuts.py

clean:
	rm -rf $(VENV) build *.egg-info
