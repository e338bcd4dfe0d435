"""relu_sum and its four gradients against the float64 reference, over dtypes and shapes."""

import itertools

import pytest
import torch

import relu_ext
from helpers import assert_close_to_reference, make_inputs, reference_forward_and_grads

# Ragged and edge sizes: empty, one, odd, not a multiple of any tile (a forward
# tile is 8 vectors of 16 floats, a backward span 2048 floats, units go in
# blocks of 4), and several backward spans.
INPUT_SHAPES = [0, 1, 7, 129, 2048 + 77, (), (3, 5), (2, 0, 4), (2, 3, 31)]
UNIT_COUNTS = [0, 1, 5, 67]


def run_fused(x, m, b, a, grad_out):
    """y and the gradients of every input, through autograd."""
    inputs = [t.detach().clone().requires_grad_() for t in (x, m, b)]
    if a is not None:
        inputs.append(a.detach().clone().requires_grad_())
    y = relu_ext.relu_sum(*inputs[:3], inputs[3] if a is not None else None)
    grads = torch.autograd.grad(y, inputs, grad_out)
    return y, list(grads) + [None] * (4 - len(grads))


@pytest.mark.parametrize("shape", INPUT_SHAPES, ids=str)
@pytest.mark.parametrize("units", UNIT_COUNTS)
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
def test_matches_reference(shape, units, out_weights, dtype, device):
    x, m, b, a = make_inputs(shape, units, dtype=dtype, device=device, out_weights=out_weights)
    grad_out = make_inputs(shape, 0, dtype=dtype, device=device, seed=1)[0]
    y, grads = run_fused(x, m, b, a, grad_out)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad_out)
    assert y.device == x.device
    assert_close_to_reference(y, y_ref, dtype)
    for got, want in zip(grads, grads_ref):
        assert (got is None) == (want is None)
        if got is not None:
            assert_close_to_reference(got, want, dtype)


@pytest.mark.parametrize("make_strided", [
    lambda t: t.t(),                      # transposed
    lambda t: t[:, ::3],                  # step in the last dimension
    lambda t: t.expand(4, *t.shape[1:]),  # zero stride (broadcast view)
], ids=["transposed", "stepped", "expanded"])
def test_non_contiguous_inputs(make_strided, dtype):
    base, m, b, a = make_inputs((1, 300), 9, dtype=dtype)
    x = make_strided(base.repeat(5, 1) if make_strided(base).shape[0] == 300 else base)
    m_strided = torch.stack([m, m], 1)[:, 0]  # stride 2
    assert not x.is_contiguous() and not m_strided.is_contiguous()
    grad_out = make_inputs(x.shape, 0, dtype=dtype, seed=1)[0]
    y, grads = run_fused(x, m_strided, b, a, grad_out)
    y_ref, grads_ref = reference_forward_and_grads(x.contiguous(), m, b, a, grad_out)
    assert y.shape == x.shape
    assert_close_to_reference(y, y_ref, dtype)
    for got, want in zip(grads, grads_ref):
        assert_close_to_reference(got, want, dtype)


def test_empty_units_give_zeros_and_empty_gradients():
    x = torch.randn(10, requires_grad=True)
    m = torch.empty(0, requires_grad=True)
    b = torch.empty(0, requires_grad=True)
    a = torch.empty(0, requires_grad=True)
    y = relu_ext.relu_sum(x, m, b, a)
    assert torch.equal(y, torch.zeros(10))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(10))
    assert m.grad.shape == b.grad.shape == a.grad.shape == (0,)


@pytest.mark.parametrize("mask", list(itertools.product([False, True], repeat=4)), ids=str)
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
def test_backward_op_computes_exactly_the_requested_gradients(mask, out_weights):
    x, m, b, a = make_inputs(333, 13, dtype=torch.float64, out_weights=out_weights)
    grad_out = torch.randn_like(x)
    got = torch.ops.relu_ext.relu_sum_backward(grad_out, x, m, b, a, list(mask))
    _, want = reference_forward_and_grads(x, m, b, a, grad_out)
    for requested, g, w in zip(mask, got, want):
        if requested and w is not None:
            assert_close_to_reference(g, w, torch.float64)
        else:
            assert g is None


class RecordBackwardMasks(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the output_mask of every relu_sum_backward call."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.relu_ext.relu_sum_backward.default:
            self.masks.append(list(args[5]))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("requires", list(itertools.product([False, True], repeat=4)), ids=str)
def test_autograd_asks_only_for_gradients_that_are_needed(requires):
    x, m, b, a = make_inputs(50, 6)
    for t, r in zip((x, m, b, a), requires):
        t.requires_grad_(r)
    y = relu_ext.relu_sum(x, m, b, a)
    if not any(requires):
        assert not y.requires_grad
        return
    with RecordBackwardMasks() as mode:
        y.sum().backward()
    assert mode.masks == [list(requires)]


def test_function_and_module_agree_with_op():
    x, m, b, a = make_inputs(100, 7, dtype=torch.float64)
    y_op = relu_ext.relu_sum(x, m, b, a)
    assert torch.equal(relu_ext.ReLUSumFunction.apply(x, m, b, a), y_op)
    assert torch.equal(relu_ext.ReLUSumFunction.apply(x, m, b, None), relu_ext.relu_sum(x, m, b))
    module = relu_ext.ReLUSum(7, dtype=torch.float64)
    with torch.no_grad():
        module.m.copy_(m), module.b.copy_(b), module.a.copy_(a)
    assert torch.equal(module(x), y_op)


def test_function_gradients_match_op():
    x, m, b, a = make_inputs(100, 7, dtype=torch.float64)
    leaves = [t.requires_grad_() for t in (x, m, b, a)]
    g_op = torch.autograd.grad(relu_ext.relu_sum(*leaves).sum(), leaves)
    g_fn = torch.autograd.grad(relu_ext.ReLUSumFunction.apply(*leaves).sum(), leaves)
    for p, q in zip(g_op, g_fn):
        assert torch.equal(p, q)


@pytest.mark.parametrize("isa", relu_ext.build_info()["cpu_isas"])
def test_every_instruction_set_matches_reference(isa):
    x, m, b, a = make_inputs(1000 + 13, 37)
    grad_out = torch.randn_like(x)
    previous = relu_ext._C.set_cpu_isa(isa)
    try:
        y, grads = run_fused(x, m, b, a, grad_out)
    finally:
        relu_ext._C.set_cpu_isa(previous)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad_out)
    assert_close_to_reference(y, y_ref, torch.float32)
    for got, want in zip(grads, grads_ref):
        assert_close_to_reference(got, want, torch.float32)


def test_unknown_instruction_set_is_refused():
    with pytest.raises(ValueError, match=r"set_cpu_isa\(\): expected one of .*baseline.* but got 'sse9'"):
        relu_ext._C.set_cpu_isa("sse9")
