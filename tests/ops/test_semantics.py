"""The edges of DESIGN.md §2: NaN and ±Inf as in the reference, relu'(0) = 0,
and bitwise-reproducible results whatever the thread count."""

import math

import pytest
import torch

import relu_ext
from helpers import assert_close_to_reference, make_inputs, reference_forward_and_grads

SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0]


def fused_forward_and_grads(x, m, b, a, grad_out):
    leaves = [t.detach().clone().requires_grad_() for t in (x, m, b, a)]
    y = relu_ext.relu_sum(*leaves)
    return y, torch.autograd.grad(y, leaves, grad_out)


@pytest.mark.parametrize("where", ["x", "m", "b", "a", "grad"])
@pytest.mark.parametrize("special", SPECIALS, ids=str)
def test_non_finite_values_propagate_as_in_reference(where, special, dtype):
    x, m, b, a = make_inputs(40, 6, dtype=dtype)
    grad_out = torch.randn(40, dtype=torch.float64).to(dtype)
    tensors = {"x": x, "m": m, "b": b, "a": a, "grad": grad_out}
    tensors[where][::3] = special  # several positions, among them 0
    y, grads = fused_forward_and_grads(x, m, b, a, grad_out)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad_out)
    assert_close_to_reference(y, y_ref, dtype)
    for got, want in zip(grads, grads_ref):
        assert_close_to_reference(got, want, dtype)


def test_nan_pre_activation_passes_gradient_and_nan():
    # m·x + b = NaN: relu keeps the NaN and its gradient passes (threshold_backward).
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    m = torch.tensor([math.nan], requires_grad=True)
    b = torch.tensor([0.0], requires_grad=True)
    y = relu_ext.relu_sum(x, m, b)
    assert y.isnan().all()
    y.sum().backward()
    assert b.grad.item() == 2.0  # both inputs' gradient of 1 reach b


def test_relu_has_zero_gradient_at_the_kink():
    # m·x + b == 0 exactly for x = 1.5: relu'(0) = 0, as torch.relu's backward.
    x = torch.tensor([1.5, 2.5, 0.5], dtype=torch.float64, requires_grad=True)
    m = torch.tensor([2.0, -2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-3.0, 3.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([1.0, 10.0], dtype=torch.float64, requires_grad=True)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, torch.ones(3, dtype=torch.float64))
    y = relu_ext.relu_sum(x, m, b, a)
    y.sum().backward()
    assert torch.equal(y, y_ref)
    assert x.grad.tolist() == [0.0, 2.0, -20.0]
    for got, want in zip((x.grad, m.grad, b.grad, a.grad), grads_ref):
        assert torch.equal(got, want)


def bitwise_results(n, units, threads, seed=0):
    x, m, b, a = make_inputs(n, units, seed=seed)
    grad_out = torch.randn(n, generator=torch.Generator().manual_seed(seed + 1))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y, grads = fused_forward_and_grads(x, m, b, a, grad_out)
    finally:
        torch.set_num_threads(old)
    return [y, *grads]


# 2048·3 + 5 inputs: several backward chunks; 600,011: past 256 chunks of one
# span, where chunks grow to several spans; 70,000 units: fewer chunks allowed
# (the partial sums are capped at 2^22 values), so they grow sooner.
@pytest.mark.parametrize("n,units", [(2048 * 3 + 5, 37), (600_011, 3), (40_003, 70_000)])
def test_bitwise_reproducible_across_runs_and_thread_counts(n, units):
    first = bitwise_results(n, units, threads=1)
    for threads in (1, 2, 3):
        for got, want in zip(bitwise_results(n, units, threads), first):
            assert torch.equal(got, want), f"differs with {threads} threads"


def test_sums_over_inputs_add_up_across_chunk_layouts():
    # dm, db, da are sums over inputs: the whole equals its two halves, each
    # of which the kernels cut into different chunks (70,000 units: chunks of
    # several spans for 40,003 inputs, of one span for each half).
    x, m, b, a = make_inputs(40_003, 70_000, dtype=torch.float64)
    g = torch.randn(40_003, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    mask = [False, True, True, True]
    whole = torch.ops.relu_ext.relu_sum_backward(g, x, m, b, a, mask)[1:]
    half = 20_000
    first = torch.ops.relu_ext.relu_sum_backward(g[:half], x[:half], m, b, a, mask)[1:]
    second = torch.ops.relu_ext.relu_sum_backward(g[half:], x[half:], m, b, a, mask)[1:]
    for w, p, q in zip(whole, first, second):
        torch.testing.assert_close(w, p + q, rtol=1e-12, atol=1e-9)
