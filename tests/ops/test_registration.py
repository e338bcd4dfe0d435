"""The ops as PyTorch sees them: opcheck (schema, fake kernels, autograd
registration), gradcheck in float64, torch.compile(fullgraph=True)."""

import pytest
import torch

import relu_ext
from helpers import DEVICES, OPCHECK_CASES, make_inputs

@pytest.mark.parametrize("case", OPCHECK_CASES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_opcheck_relu_sum(case, dtype, device):
    x, m, b, a = make_inputs(**OPCHECK_CASES[case], dtype=dtype, device=device)
    for t in (x, m, b, a):
        if t is not None:
            t.requires_grad_()
    torch.library.opcheck(torch.ops.relu_ext.relu_sum.default, (x, m, b, a))


# relu_sum's "auto": a composite that calls the dense or the breakpoint op.
@pytest.mark.parametrize("shape, units", [((5, 7), 6), (3000, 4096)],
                         ids=["dense_sized", "breakpoints_sized"])
def test_opcheck_relu_sum_auto(shape, units, device):
    x, m, b, a = (t.requires_grad_() for t in make_inputs(shape, units, device=device))
    torch.library.opcheck(torch.ops.relu_ext.relu_sum_auto.default, (x, m, b, a))


def test_compile_dynamic_guards_the_automatic_choice():
    # With symbolic sizes the C++ choice becomes a guard: a size on the
    # other side of it recompiles instead of running the wrong op's graph.
    torch._dynamo.reset()
    _, m, b, a = make_inputs(1, 4096)
    compiled = torch.compile(lambda x: relu_ext.relu_sum(x, m, b, a), fullgraph=True,
                             dynamic=True)
    ops = torch.ops.relu_ext
    for n in (64, 5000, 80, 6000):
        x = make_inputs(n, 1, seed=n)[0]
        expected = ops.relu_sum_breakpoints if n >= 5000 else ops.relu_sum
        assert torch.equal(compiled(x), expected(x, m, b, a))
    # (the two ops differ in the last bits here, so the test tells them apart)
    assert not torch.equal(ops.relu_sum(x, m, b, a), ops.relu_sum_breakpoints(x, m, b, a))


@pytest.mark.parametrize("mask", [[True] * 4, [True, False, False, False], [False, True, True, False],
                                  [False, False, False, True]], ids=str)
@pytest.mark.parametrize("case", OPCHECK_CASES, ids=str)
def test_opcheck_relu_sum_backward(case, mask, device):
    x, m, b, a = make_inputs(**OPCHECK_CASES[case], device=device)
    grad_out = torch.randn_like(x)
    torch.library.opcheck(torch.ops.relu_ext.relu_sum_backward.default,
                          (grad_out, x, m, b, a, mask))


@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("shape", [(17,), (3, 4), ()], ids=str)
def test_gradcheck(out_weights, shape, device):
    x, m, b, a = make_inputs(shape, 5, dtype=torch.float64, device=device, out_weights=out_weights)
    leaves = tuple(t.requires_grad_() for t in (x, m, b, a) if t is not None)
    fn = (lambda *t: relu_ext.relu_sum(*t)) if out_weights else (lambda *t: relu_ext.relu_sum(*t, None))
    assert torch.autograd.gradcheck(fn, leaves)


# The breakpoint algorithm has CPU kernels only.
@pytest.mark.parametrize("device, algorithm", [
    (device, algorithm) for device in DEVICES for algorithm in ("dense", "breakpoints")
    if algorithm == "dense" or device == "cpu"
])
def test_compile_fullgraph_forward_and_backward(device, algorithm):
    torch._dynamo.reset()
    module = relu_ext.ReLUSum(9, algorithm=algorithm, device=device)
    x = torch.randn(2, 50, device=device, requires_grad=True)

    def loss_fn(x):
        return (module(x * 2) - x).abs().mean()

    compiled = torch.compile(loss_fn, fullgraph=True)
    loss = compiled(x)
    grads = torch.autograd.grad(loss, [x, *module.parameters()])
    loss_eager = loss_fn(x)
    grads_eager = torch.autograd.grad(loss_eager, [x, *module.parameters()])
    torch.testing.assert_close(loss, loss_eager)
    for got, want in zip(grads, grads_eager):
        torch.testing.assert_close(got, want)


def test_compile_with_dynamic_shapes(device):
    torch._dynamo.reset()
    x, m, b, a = make_inputs(30, 4, device=device)
    compiled = torch.compile(relu_ext.relu_sum, fullgraph=True, dynamic=True)
    for n in (30, 45, 61):
        x = torch.randn(n, device=device)
        torch.testing.assert_close(compiled(x, m, b, a), relu_ext.relu_sum(x, m, b, a))
