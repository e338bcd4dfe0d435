"""Builds the CUDA kernels for the CPU, against the emulator, as torch.ops.relu_ext_emu.

The build is a JIT extension (torch.utils.cpp_extension.load) of the real
csrc/cuda/relu_sum_cuda.cu and csrc/cuda/relu_sum_linear_cuda.cu plus the emulator's self-test kernels and the
allocator that records every CPU tensor's extent for the kernels' bounds
checks (installed when the library loads, for the rest of the process); it is cached
in a build folder (RELU_EXT_EMU_BUILD_DIR, default: build/cuda_emu in this
source tree, so that two checkouts never share one) and rebuilt only when a
source changes.

RELU_EXT_EMU_TSAN=1 builds it with ThreadSanitizer instead (`make test-tsan`
runs the tests so, with libtsan preloaded into the Python process).
"""

import functools
import os
import sys
from pathlib import Path

import torch
import torch.utils.cpp_extension

import relu_ext  # noqa: F401  (registers torch.ops.relu_ext, whose schemas are copied)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CSRC = REPO / "csrc"
OPS = ("relu_sum", "relu_sum_backward", "step_sum", "relu_sum_linear",
       "relu_sum_linear_backward", "relu_sum_linear_breakpoints",
       "relu_sum_linear_breakpoints_backward")


def tsan_requested():
    return os.environ.get("RELU_EXT_EMU_TSAN") == "1"


@functools.cache
def load():
    """torch.ops.relu_ext_emu, built on first use."""
    tsan = tsan_requested()
    name = "relu_ext_cuda_emu_tsan" if tsan else "relu_ext_cuda_emu"
    build_dir = Path(os.environ.get("RELU_EXT_EMU_BUILD_DIR", REPO / "build" / "cuda_emu")) / name
    build_dir.mkdir(parents=True, exist_ok=True)
    # As setup.py compiles the C++ sources: FP contraction makes m·x + b one FMA.
    cflags = ["-std=c++20", "-ffp-contract=fast", "-Wall", "-Wno-unused-parameter",
              "-Wno-unknown-pragmas"]  # nvcc's #pragma unroll
    ldflags = []
    if tsan:
        cflags += ["-O1", "-g", "-fsanitize=thread"]
        ldflags += ["-fsanitize=thread"]
    else:
        cflags += ["-O2"]
    # ninja may be installed only into this environment, which need not be on PATH.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # Under `make test-tsan` this process runs with libtsan preloaded; the
    # compiler must not (it would run instrumented, and fail).
    preload = os.environ.pop("LD_PRELOAD", None)
    try:
        _build_and_load(name, cflags, ldflags, build_dir)
    finally:
        if preload is not None:
            os.environ["LD_PRELOAD"] = preload
    _define_schemas()
    return torch.ops.relu_ext_emu


def _build_and_load(name, cflags, ldflags, build_dir):
    torch.utils.cpp_extension.load(
        name=name,
        sources=[
            str(HERE / "relu_sum_cuda_emulated.cpp"),
            str(HERE / "relu_sum_linear_cuda_emulated.cpp"),
            str(HERE / "emulator_selftest.cpp"),
            str(HERE / "recording_allocator.cpp"),
            str(CSRC / "checks.cpp"),
        ],
        extra_include_paths=[str(CSRC)],
        extra_cflags=cflags,
        extra_ldflags=ldflags,
        build_directory=str(build_dir),
        is_python_module=False,
        verbose=os.environ.get("RELU_EXT_EMU_VERBOSE") == "1",
    )


# The emulated launchers register kernels for relu_ext_emu::relu_sum,
# relu_sum_backward, step_sum and the relu_sum_linear ops; their schemas are relu_ext's own, copied rather than
# written twice. Kept alive for the process: a Library undefines on deletion.
_schemas = None


def _define_schemas():
    global _schemas
    _schemas = torch.library.Library("relu_ext_emu", "FRAGMENT")
    for op in OPS:
        schema = str(getattr(torch.ops.relu_ext, op).default._schema)
        _schemas.define(schema.split("::", 1)[1])
