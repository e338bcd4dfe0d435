# Every target sets itself up on a fresh machine: a virtual environment in
# $(VENV) with torch and the build tools, relu_ext built and installed into it
# (rebuilt when a source changes) with the packages it runs with, and, for the
# targets that need them, the optional ones.
PYTHON ?= python3
VENV ?= .venv
# A CUDA build of torch, so the same environment can also compile the CUDA
# kernels; override with TORCH_SPEC=torch==2.13.0 for the smaller CPU-only one.
TORCH_SPEC ?= torch==2.14.1
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SOURCES := $(shell find csrc relu_ext build_backend -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.py' \) ! -name _build_meta.py) setup.py pyproject.toml
# The extras of pyproject.toml that `make test` adds: the test tools, ONNX
# export, the examples, the notebook, the scikit-learn estimator.
TEST_EXTRAS := test,onnx,examples,notebook,sklearn

.PHONY: install test-deps test test-cuda-emu test-install test-tsan test-asan demo bench docs strip-notebook clean

# What the build needs (pyproject.toml's build-system requires, and torch).
$(VENV)/.deps:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$(TORCH_SPEC)" setuptools wheel ninja
	touch $@

# The build, and the packages relu_ext runs with (setup.py's dependencies:
# the torch just built against, matplotlib, numpy, tqdm): all `make demo` needs.
$(VENV)/.installed: $(VENV)/.deps $(SOURCES)
	MAX_JOBS=$${MAX_JOBS:-2} $(PIP) install --quiet --no-build-isolation .
	touch $@

# Optional dependencies, each list written once, as extras in pyproject.toml:
# pip reads them from the installed relu_ext's metadata (relu_ext itself is
# already installed, so nothing is built or fetched for it).
$(VENV)/.test-deps: $(VENV)/.installed
	$(PIP) install --quiet "relu_ext[$(TEST_EXTRAS)]"
	touch $@

install: $(VENV)/.installed

test-deps: $(VENV)/.test-deps

# The tests import the installed copy (pytest's rootdir is not on sys.path).
# Everything but the emulator, then the emulator's checks (test-cuda-emu).
test: test-deps
	$(VENV)/bin/pytest tests -m "not cuda_emu" $(PYTEST_ARGS)
	$(MAKE) test-cuda-emu

# The CUDA kernels and launchers at the GPU's launch shapes, run on the CPU by
# the emulator (tests/cuda/cuda_emu), with every global-memory access
# bounds-checked; and the emulator's own tests. docs/cuda.md says how long.
test-cuda-emu: test-deps
	$(VENV)/bin/pytest tests -m cuda_emu $(PYTEST_ARGS)

# Installing as a user does: plain `pip install .` (isolated build, no flags)
# into a fresh venv whose torch is not pip's newest, then the tests of the
# install and a smoke test (import, compute and backward against the
# reference). The build must compile against that torch (README: Install).
# RELU_EXT_CUDA unset: what plain install does with a CPU torch (CI sets it to 1).
INSTALL_VENV ?= .venv-install
INSTALL_TORCH_SPEC ?= torch==2.13.0
# It builds a copy of the sources (git's files, committed or not, less the
# ignored ones): a build writes build/ and relu_ext/ops/_build_meta.py where it
# runs, and this tree's must stay those of $(VENV)'s torch.
test-install:
	rm -rf $(INSTALL_VENV)
	$(PYTHON) -m venv $(INSTALL_VENV)
	$(INSTALL_VENV)/bin/pip install --quiet "$(INSTALL_TORCH_SPEC)" pytest
	mkdir $(INSTALL_VENV)/src
	git ls-files -z --cached --others --exclude-standard | tar -c --null -T - \
		| tar -x -C $(INSTALL_VENV)/src
	cd $(INSTALL_VENV)/src && env -u RELU_EXT_CUDA MAX_JOBS=$${MAX_JOBS:-2} ../bin/pip install --quiet .
	$(INSTALL_VENV)/bin/pytest tests/tooling/test_installed_package.py tests/tooling/test_build_backend.py $(PYTEST_ARGS)

# The lesson end to end: fit the noisy quadratic by SGD (relu-ext fit alone uses
# fit_curve), print the loss, write fit.png.
demo: install
	$(VENV)/bin/relu-ext fit --method sgd --out fit.png

# The emulated CUDA kernels again, built with ThreadSanitizer: a missing
# __syncthreads() is then a reported data race, not a lucky pass. Python is not
# instrumented, so libtsan is preloaded; one OpenMP thread keeps the CPU ops'
# uninstrumented libgomp out of the reports; --capture=sys lets a report reach
# the terminal before TSan ends the process. Instrumented, a 256-thread block
# costs several times more (docs/cuda.md, "How long it takes"), so this runs
# the float32 and float64 cases (the 16-bit ones run the same kernel code with
# other loads and stores) and not the emu_large grid-limit tests.
TSAN_LIB = $(shell $(CXX) -print-file-name=libtsan.so)
test-tsan: test-deps
	LD_PRELOAD=$(TSAN_LIB) TSAN_OPTIONS="halt_on_error=1 exitcode=66 report_signal_unsafe=0" \
	RELU_EXT_EMU_TSAN=1 OMP_NUM_THREADS=1 $(VENV)/bin/pytest tests -m "cuda_emu and not emu_large" \
		-k "not float16 and not bfloat16" --capture=sys $(PYTEST_ARGS)

# The CPU kernels built with AddressSanitizer and UndefinedBehaviorSanitizer,
# in their own environment ($(ASAN_VENV)) and build folder (build/sanitize),
# and a selection of the CPU tests run on them. Python is not instrumented, so
# libasan is preloaded; its leak checker is off (CPython's interned objects
# look leaked); any ASan or UBSan report ends the run with an error (printed:
# --capture=sys leaves the report on the terminal).
ASAN_VENV ?= .venv-asan
# libstdc++ is preloaded after libasan so that ASan's __cxa_throw interceptor
# finds the real one (python does not link libstdc++; without it, the first
# C++ exception thrown, e.g. in triton under torch.compile, is an ASan CHECK).
ASAN_LIB = $(shell $(CXX) -print-file-name=libasan.so) $(shell $(CXX) -print-file-name=libstdc++.so.6)
ASAN_TESTS ?= tests/ops/test_relu_sum.py tests/ops/test_step_sum.py tests/ops/test_breakpoints.py \
	tests/ops/test_bad_inputs.py tests/ops/test_semantics.py tests/curve/test_hinge_lstsq.py \
	tests/curve/test_fit_curve.py tests/ops/test_per_channel.py \
	tests/ops/test_relu_sum_linear_kernels.py tests/ops/test_relu_sum_linear.py
test-asan:
	RELU_EXT_CUDA=0 RELU_EXT_SANITIZE=address,undefined $(MAKE) test-deps VENV=$(ASAN_VENV)
	LD_PRELOAD="$(ASAN_LIB)" ASAN_OPTIONS="detect_leaks=0 abort_on_error=0 exitcode=67" \
	UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 exitcode=68" \
	$(ASAN_VENV)/bin/pytest $(ASAN_TESTS) -p no:cacheprovider --capture=sys $(PYTEST_ARGS)

# The documentation (docs/: Markdown pages, api.rst from the docstrings) as
# HTML in docs/_build/html, every Sphinx warning an error. The API reference
# imports the installed relu_ext, hence install; sphinx-build, not `python -m
# sphinx`, which would import the source tree (no compiled extension) instead.
# The docs' own dependencies are the extra `docs` in pyproject.toml; with the
# extra `sklearn` the API reference also documents relu_ext.sklearn.
$(VENV)/.docs-deps: $(VENV)/.installed
	$(PIP) install --quiet "relu_ext[docs,sklearn]"
	touch $@

docs: install $(VENV)/.docs-deps
	$(VENV)/bin/sphinx-build -W --keep-going -E -b html docs docs/_build/html

# The op benchmark on its default grid (minutes): prints the table and writes
# benchmarks/results/results.json and its plots. benchmarks/RESULTS.md is kept
# by hand (docs/benchmarks.md). BENCH_ARGS adds options, e.g. BENCH_ARGS=--quick.
bench: install
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# The notebooks are committed without outputs, execution counts or widget state
# (tests/frontends/test_notebook.py fails otherwise): run this after saving one from Jupyter.
NOTEBOOKS := examples/lesson4.ipynb
strip-notebook: $(VENV)/.test-deps
	$(PY) tests/frontends/strip_notebook.py $(NOTEBOOKS)

clean:
	rm -rf build dist *.egg-info relu_ext/ops/_build_meta.py $(INSTALL_VENV) docs/_build
