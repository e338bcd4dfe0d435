# Every target sets itself up on a fresh machine: a virtual environment in
# $(VENV) with torch, the build tools and the test dependencies, and relu_ext
# built and installed into it (rebuilt when a source changes).
PYTHON ?= python3
VENV ?= .venv
# A CUDA build of torch, so the same environment can also compile the CUDA
# kernels; override with TORCH_SPEC=torch==2.13.0 for the smaller CPU-only one.
TORCH_SPEC ?= torch==2.14.1
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SOURCES := $(shell find csrc relu_ext -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.py' \) ! -name _build_meta.py) setup.py pyproject.toml

.PHONY: install test demo clean

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$(TORCH_SPEC)" setuptools wheel ninja pytest hypothesis numpy \
		matplotlib tqdm
	touch $@

$(VENV)/.installed: $(VENV)/.deps $(SOURCES)
	MAX_JOBS=$${MAX_JOBS:-2} $(PIP) install --quiet --no-build-isolation --no-deps .
	touch $@

install: $(VENV)/.installed

# The tests import the installed copy (pytest's rootdir is not on sys.path).
test: install
	$(VENV)/bin/pytest tests $(PYTEST_ARGS)

# The lesson end to end: fit the noisy quadratic by SGD, print the loss, write fit.png.
demo: install
	$(VENV)/bin/relu-ext fit --out fit.png

clean:
	rm -rf build dist *.egg-info relu_ext/_build_meta.py
