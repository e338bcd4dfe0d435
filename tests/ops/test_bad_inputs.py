"""Every bad input of DESIGN.md §3 gets a Python exception naming the argument,
what was expected and what was given: from the public function, from the
compiled op called directly (csrc/checks.cpp), and from the fake kernel that
torch.compile runs (relu_ext/ops/_validation.py). The three must agree."""

import re

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import relu_ext


def good():
    return torch.randn(6), torch.randn(4), torch.randn(4), torch.randn(4)


def replace(i, value):
    args = list(good())
    args[i] = value
    return args


BAD_ARGS = {
    "integer x": (
        replace(0, torch.arange(6)), TypeError,
        "relu_sum(): x must be a floating-point tensor (torch.float16, torch.bfloat16, "
        "torch.float32 or torch.float64), but got torch.int64"),
    "complex x": (
        replace(0, torch.randn(6, dtype=torch.complex64)), TypeError,
        "x must be a floating-point tensor (torch.float16, torch.bfloat16, torch.float32 or "
        "torch.float64), but got torch.complex64"),
    "m of another dtype": (
        replace(1, torch.randn(4, dtype=torch.float64)), TypeError,
        "relu_sum(): m must have the dtype of x (torch.float32), but got torch.float64"),
    "b of another dtype": (
        replace(2, torch.randn(4, dtype=torch.float16)), TypeError,
        "relu_sum(): b must have the dtype of x (torch.float32), but got torch.float16"),
    "a of another dtype": (
        replace(3, torch.randn(4, dtype=torch.bfloat16)), TypeError,
        "relu_sum(): a must have the dtype of x (torch.float32), but got torch.bfloat16"),
    "float64 x with float32 units": (
        [torch.randn(6, dtype=torch.float64), torch.randn(4), torch.randn(4), None], TypeError,
        "relu_sum(): m must have the dtype of x (torch.float64), but got torch.float32"),
    "bfloat16 x with float16 units": (
        [torch.randn(6).bfloat16()] + [torch.randn(4).half()] * 3, TypeError,
        "relu_sum(): m must have the dtype of x (torch.bfloat16) or torch.float32, "
        "but got torch.float16"),
    "16-bit x with units of two dtypes": (
        [torch.randn(6).half(), torch.randn(4), torch.randn(4), torch.randn(4).half()], TypeError,
        "relu_sum(): a must have the dtype of m (torch.float32), but got torch.float16"),
    "3-D m": (
        [torch.randn(6), torch.randn(2, 2, 2), torch.randn(2, 2, 2), None], ValueError,
        "relu_sum(): m must be 1-D (K units, shared) or 2-D (C channels, K units), "
        "but got shape [2, 2, 2]"),
    "0-dim m": (
        [torch.randn(6), torch.tensor(1.0), torch.tensor(1.0), None], ValueError,
        "relu_sum(): m must be 1-D (K units, shared) or 2-D (C channels, K units), "
        "but got shape []"),
    "b shorter than m": (
        replace(2, torch.randn(3)), ValueError,
        "relu_sum(): b must have the shape of m ([4]), but got [3]"),
    "a longer than m": (
        replace(3, torch.randn(5)), ValueError,
        "relu_sum(): a must have the shape of m ([4]), but got [5]"),
    "m on the meta device": (
        replace(1, torch.randn(4, device="meta")), ValueError,
        "relu_sum(): m must be on the device of x (cpu), but got meta"),
}


def call_public(args):
    return relu_ext.relu_sum(*args)


def call_op(args):
    return torch.ops.relu_ext.relu_sum(*args)


def call_fake(args):
    # What torch.compile does while tracing: only the fake kernel runs.
    with FakeTensorMode(allow_non_fake_inputs=True):
        return torch.ops.relu_ext.relu_sum(*args)


CALLS = {"public": call_public, "op": call_op, "fake": call_fake}


@pytest.mark.parametrize("case, call", [
    (case, call) for case in BAD_ARGS for call in CALLS
    # Under FakeTensorMode every tensor is on the meta device: no device mismatch to see.
    if not (call == "fake" and case == "m on the meta device")
], ids=str)
def test_bad_relu_sum_arguments(case, call):
    args, error, message = BAD_ARGS[case]
    call = CALLS[call]
    with pytest.raises(error, match=re.escape(message)):
        call(args)


@pytest.mark.parametrize("position, name", [(0, "x"), (1, "m"), (2, "b"), (3, "a")])
def test_non_tensor_arguments_are_named(position, name):
    with pytest.raises(TypeError, match=rf"relu_sum\(\): {name} must be a torch.Tensor, but got list"):
        relu_ext.relu_sum(*replace(position, [1.0, 2.0]))


BAD_GRADS = {
    "grad of another shape": (
        torch.randn(5), ValueError,
        "relu_sum_backward(): grad must have the shape of x ([6]), but got [5]"),
    "grad of another dtype": (
        torch.randn(6, dtype=torch.float64), TypeError,
        "relu_sum_backward(): grad must have the dtype of x (torch.float32), but got torch.float64"),
}


@pytest.mark.parametrize("fake", [False, True], ids=["op", "fake"])
@pytest.mark.parametrize("case", BAD_GRADS, ids=str)
def test_bad_backward_arguments(case, fake):
    grad, error, message = BAD_GRADS[case]
    args = (grad, *good(), [True] * 4)
    with pytest.raises(error, match=re.escape(message)):
        if fake:
            with FakeTensorMode(allow_non_fake_inputs=True):
                torch.ops.relu_ext.relu_sum_backward(*args)
        else:
            torch.ops.relu_ext.relu_sum_backward(*args)


@pytest.mark.skipif("cuda" in relu_ext.build_info()["backends"], reason="this build has CUDA kernels")
@pytest.mark.parametrize("op", ["relu_sum", "relu_sum_backward"])
def test_cuda_tensor_on_a_build_without_cuda_says_how_to_rebuild(op):
    # No GPU here, so call the op's CUDA kernel the way the dispatcher would for a CUDA tensor.
    overload = getattr(torch.ops.relu_ext, op).default
    x, m, b, a = good()
    args = (x, m, b, a) if op == "relu_sum" else (x, x, m, b, a, [True] * 4)
    cuda = torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA)
    with pytest.raises(NotImplementedError,
                       match=rf"{op}\(\): got a CUDA tensor, but this build of relu_ext has no CUDA "
                             r"kernels\. Rebuild it .*RELU_EXT_CUDA=1 pip install"):
        overload.redispatch(cuda, *args)


@pytest.mark.parametrize("units", [-1, 2.5, True, "8"])
def test_module_rejects_bad_unit_counts(units):
    with pytest.raises(ValueError, match=rf"ReLUSum\(\): units must be a non-negative int, but got {re.escape(repr(units))}"):
        relu_ext.ReLUSum(units)


def test_module_rejects_empty_input_range():
    with pytest.raises(ValueError, match=r"input_range must be \(low, high\) with low < high, but got \(1, 1\)"):
        relu_ext.ReLUSum(3, input_range=(1, 1))
