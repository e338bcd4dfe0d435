"""The CUDA build, checked without a GPU: ptxas's resource report of every
kernel (no spills, no local memory), and what build_info() says was built."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

import relu_ext
from relu_ext.ops import _build_meta

CSRC = Path(__file__).resolve().parents[2] / "csrc"
# Every kernel the launcher instantiates: per_input_kernel for 4 dtypes × with
# or without a × (forward, dx), and with weights for step_sum, each for the
# three walks (one channel, by channel, by columns); param_grad_kernel for 4
# dtypes × the 7 sets of (dm, db, da) with a and the 3 without, by channel and
# by columns; reduce_blocks_kernel for float and double.
KERNELS_PER_ARCH = 3 * (4 * 2 * 2 + 4) + 2 * 4 * (7 + 3) + 2
# relu_sum_linear_cuda.cu: linear_forward_kernel and linear_grad_a_kernel for 4
# dtypes, linear_grad_t_kernel for 4 dtypes × the 7 sets of (dx, dm, db), and
# reduce_blocks_kernel for float and double.
LINEAR_KERNELS_PER_ARCH = 4 + 4 + 4 * 7 + 2
SOURCES = {"relu_sum_cuda.cu": KERNELS_PER_ARCH, "relu_sum_linear_cuda.cu": LINEAR_KERNELS_PER_ARCH}
PTXAS_ARCHS = ("80", "90")

ENTRY = re.compile(r"Compiling entry function '(\w+)' for 'sm_(\d+)'")
FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers")
SMEM = re.compile(r"(\d+) bytes smem")


def ptxas_report(output):
    """{(kernel, arch): (registers, stack, spill stores, spill loads, smem)}."""
    report, current, frame = {}, None, None
    for line in output.splitlines():
        if m := ENTRY.search(line):
            current, frame = (m.group(1), m.group(2)), None
        elif (m := FRAME.search(line)) and current:
            frame = tuple(int(v) for v in m.groups())
        elif (m := USED.search(line)) and current and frame:
            smem = SMEM.search(line)
            report[current] = (int(m.group(1)), *frame, int(smem.group(1)) if smem else 0)
            current = None
    return report


@pytest.mark.nvcc
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
# A CPU build of torch ships no c10/cuda headers to compile the kernels with.
@pytest.mark.skipif(torch.version.cuda is None, reason="torch is a CPU build, without CUDA headers")
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_ptxas_reports_no_spills_and_no_local_memory(tmp_path, source):
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in PTXAS_ARCHS]
    includes = [f"-I{p}" for p in [str(CSRC), *cpp_extension.include_paths()]]
    command = [
        "nvcc", "-c", str(CSRC / "cuda" / source), "-o", str(tmp_path / "k.o"),
        "-O3", "-std=c++20", "-Xcompiler", "-fPIC", "-Xptxas=-v",
        *cpp_extension.COMMON_NVCC_FLAGS, *gencode, *includes,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-5000:]
    report = ptxas_report(done.stderr + done.stdout)
    for arch in PTXAS_ARCHS:
        kernels = [k for k, a in report if a == arch]
        assert len(kernels) == SOURCES[source], f"sm_{arch}: {len(kernels)} kernels reported"
    bad = {k: v for k, v in report.items() if v[1:4] != (0, 0, 0)}
    assert not bad, f"stack frame / spills (registers, stack, stores, loads, smem): {bad}"
    assert "lmem" not in done.stderr and "Local memory" not in done.stderr


@pytest.mark.skipif(not _build_meta.WITH_CUDA, reason="this build has no CUDA kernels")
def test_build_info_lists_the_compiled_cuda_archs():
    info = relu_ext.build_info()
    assert "cuda" in info["backends"]
    assert info["cuda_archs"], "a CUDA build must list its archs"
    assert all(re.fullmatch(r"\d+\.\d+(\+PTX)?", a) for a in info["cuda_archs"]), info["cuda_archs"]
    wanted = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if wanted:  # built in this environment (make test): the archs asked for
        assert info["cuda_archs"] == re.split(r"[;,\s]+", wanted.strip())


@pytest.mark.skipif(os.environ.get("RELU_EXT_CUDA") != "1", reason="CUDA not required here")
def test_cuda_was_built_where_required():
    # CI sets RELU_EXT_CUDA=1: its build must have compiled the kernels with nvcc.
    assert _build_meta.WITH_CUDA and "cuda" in relu_ext.build_info()["backends"]


@pytest.mark.skipif(_build_meta.WITH_CUDA, reason="this build has CUDA kernels")
def test_cpu_only_build_lists_no_cuda_archs():
    info = relu_ext.build_info()
    assert "cuda" not in info["backends"] and info["cuda_archs"] == []
    assert torch.ops.relu_ext.relu_sum.default.has_kernel_for_dispatch_key("CUDA")
