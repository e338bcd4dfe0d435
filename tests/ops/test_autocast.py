"""Mixed precision: a float16/bfloat16 x with float32 units (m, b, a) gives
x's dtype, with the units' gradients in float32 and x's in x's dtype, through
every op, both checkers, autograd of every order and mode, torch.func and
vmap; under torch.autocast a model with ReLUSum trains so. Any other mix of
dtypes is rejected naming both (test_bad_inputs.py holds the messages of the
common cases, this file those of every op)."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

import relu_ext
from helpers import assert_close_to_reference, reference_forward_and_grads, reference_step_sum

HALF = [torch.float16, torch.bfloat16]
ALGORITHMS = ["dense", "breakpoints"]
# bfloat16 keeps 8 bits: a derivative that passes through several rounded
# intermediates (S(x, m, b, w) in x's dtype, then a product) is within a few
# of its ulps.
RTOL = {torch.float16: 4e-3, torch.bfloat16: 3e-2}


def mixed_inputs(dtype, n=300, k=6, seed=0, out_weights=True):
    """x of `dtype`, units in float32."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, generator=g) * 2).to(dtype)
    m, b = torch.randn(k, generator=g), torch.randn(k, generator=g)
    a = torch.randn(k, generator=g) if out_weights else None
    return x, m, b, a


def assert_close(got, want, dtype):
    """got (a 16-bit computation) against want (float64) to dtype's rounding,
    relative to the largest expected value."""
    rtol = RTOL[dtype]
    scale = max(want.abs().max().item(), 1e-30)
    torch.testing.assert_close(got.double(), want.double(), rtol=rtol, atol=rtol * scale)


def double(*ts):
    return [None if t is None else t.detach().double() for t in ts]


# ------------------------------------------------------------- the rule, op by op


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_half_x_with_float32_units_forward_and_backward(algorithm, out_weights, dtype):
    x, m, b, a = mixed_inputs(dtype, out_weights=out_weights)
    grad = torch.randn(x.shape).to(dtype)
    ops = torch.ops.relu_ext
    forward, backward = ((ops.relu_sum, ops.relu_sum_backward) if algorithm == "dense" else
                         (ops.relu_sum_breakpoints, ops.relu_sum_breakpoints_backward))
    y = forward(x, m, b, a)
    grads = backward(grad, x, m, b, a, [True, True, True, out_weights])
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad)
    # The 16-bit tolerance for y and dx, as for same-dtype inputs; the units'
    # gradients are float32 sums of float32 products of 16-bit values.
    assert_close_to_reference(y, y_ref, dtype)
    assert_close_to_reference(grads[0], grads_ref[0], dtype)
    for got, want in zip(grads[1:], grads_ref[1:]):
        if want is None:
            assert got is None
            continue
        assert got.dtype == torch.float32
        error = (got.double() - want).abs()
        assert (error <= 1e-5 * want.magnitude + 1e-30).all(), error.max()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("where", ["x", "m", "b", "a", "grad"])
@pytest.mark.parametrize("special", [math.nan, math.inf, -math.inf, -0.0], ids=str)
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_non_finite_values_propagate_as_in_reference(dtype, special, where, algorithm):
    # DESIGN.md §2 with mixed dtypes: y and dx to x's dtype, the units' gradients to float32.
    x, m, b, a = mixed_inputs(dtype, n=40)
    grad = torch.randn(40).to(dtype)
    tensors = {"x": x, "m": m, "b": b, "a": a, "grad": grad}
    tensors[where][::3] = special
    leaves = [t.clone().requires_grad_() for t in (x, m, b, a)]
    y = relu_ext.relu_sum(*leaves, algorithm=algorithm)
    grads = torch.autograd.grad(y, leaves, grad)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad)
    assert_close_to_reference(y, y_ref, dtype)
    assert_close_to_reference(grads[0], grads_ref[0], dtype)
    for got, want in zip(grads[1:], grads_ref[1:]):
        assert_close_to_reference(got, want, torch.float32)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_step_sum_half_x_with_float32_weights(dtype):
    x, m, b, w = mixed_inputs(dtype)
    y = torch.ops.relu_ext.step_sum(x, m, b, w)
    assert y.dtype == dtype
    want = reference_step_sum(x, m, b, w)
    torch.testing.assert_close(y.double(), want, rtol=RTOL[dtype], atol=RTOL[dtype] * w.abs().sum().item())


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_fake_kernels_give_the_dtypes_of_the_real_ones(dtype):
    x, m, b, a = mixed_inputs(dtype)
    ops = torch.ops.relu_ext
    real = ops.relu_sum_backward(x, x, m, b, a, [True] * 4)
    with FakeTensorMode(allow_non_fake_inputs=True):
        fake = ops.relu_sum_backward(x, x, m, b, a, [True] * 4)
        assert ops.relu_sum(x, m, b, a).dtype == dtype
    assert [t.dtype for t in fake] == [t.dtype for t in real] == [dtype] + [torch.float32] * 3


def _all_ops(x, m, b, a, grad):
    ops = torch.ops.relu_ext
    return {
        "relu_sum": lambda: ops.relu_sum(x, m, b, a),
        "relu_sum_breakpoints": lambda: ops.relu_sum_breakpoints(x, m, b, a),
        "step_sum": lambda: ops.step_sum(x, m, b, a),
        "relu_sum_backward": lambda: ops.relu_sum_backward(grad, x, m, b, a, [True] * 4),
        "relu_sum_breakpoints_backward":
            lambda: ops.relu_sum_breakpoints_backward(grad, x, m, b, a, [True] * 4),
    }


REJECTED = {
    # (x dtype, units dtype): the message's "must have the dtype of x (...)" part
    "float64 x, float32 units": (torch.float64, torch.float32,
                                 "m must have the dtype of x (torch.float64), but got torch.float32"),
    "float32 x, bfloat16 units": (torch.float32, torch.bfloat16,
                                  "m must have the dtype of x (torch.float32), but got torch.bfloat16"),
    "bfloat16 x, float16 units": (torch.bfloat16, torch.float16,
                                  "m must have the dtype of x (torch.bfloat16) or torch.float32, "
                                  "but got torch.float16"),
    "float16 x, float64 units": (torch.float16, torch.float64,
                                 "m must have the dtype of x (torch.float16) or torch.float32, "
                                 "but got torch.float64"),
}
OPS = list(_all_ops(*[None] * 5))


@pytest.mark.parametrize("fake", [False, True], ids=["op", "fake"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", REJECTED)
def test_other_mixes_are_rejected_by_every_op_and_checker(case, op, fake):
    x_dtype, unit_dtype, message = REJECTED[case]
    x = torch.randn(5, dtype=x_dtype)
    m, b, a = (torch.randn(3, dtype=unit_dtype) for _ in range(3))
    call = _all_ops(x, m, b, a, torch.randn(5, dtype=x_dtype))[op]
    with pytest.raises(TypeError, match=re.escape(f"{op}(): {message}")):
        if fake:
            with FakeTensorMode(allow_non_fake_inputs=True):
                call()
        else:
            call()


@pytest.mark.parametrize("fake", [False, True], ids=["op", "fake"])
@pytest.mark.parametrize("op", OPS)
def test_units_of_two_dtypes_and_a_float32_grad_are_rejected(op, fake):
    x = torch.randn(5).bfloat16()
    m, b = torch.randn(3), torch.randn(3).bfloat16()
    a_name = "w" if op == "step_sum" else "a"
    cases = [
        ((x, m, b, torch.randn(3), x),
         "b must have the dtype of m (torch.float32), but got torch.bfloat16"),
        ((x, m, m, torch.randn(3).bfloat16(), x),
         f"{a_name} must have the dtype of m (torch.float32), but got torch.bfloat16"),
    ]
    if op.endswith("backward"):  # the incoming gradient is y's: x's dtype, never the units'
        cases.append(((x, m, m, m, torch.randn(5)),
                      "grad must have the dtype of x (torch.bfloat16), but got torch.float32"))
    for args, message in cases:
        with pytest.raises(TypeError, match=re.escape(f"{op}(): {message}")):
            if fake:
                with FakeTensorMode(allow_non_fake_inputs=True):
                    _all_ops(*args)[op]()
            else:
                _all_ops(*args)[op]()


# ------------------------------------------------- autograd, torch.func, vmap


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_grad_dtypes_and_values(dtype, algorithm):
    x, m, b, a = mixed_inputs(dtype)

    def loss(x, m, b, a, op):
        return op(x, m, b, a).float().square().sum()

    got = torch.func.grad(lambda *p: loss(*p, lambda *q: relu_ext.relu_sum(*q, algorithm=algorithm)),
                          argnums=(0, 1, 2, 3))(x, m, b, a)
    want = torch.func.grad(lambda *p: loss(*p, relu_ext.reference.relu_sum),
                           argnums=(0, 1, 2, 3))(*double(x, m, b, a))
    assert [g.dtype for g in got] == [dtype] + [torch.float32] * 3
    for g, w in zip(got, want):
        assert_close(g, w, dtype)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_jvp_in_x_and_units(dtype):
    x, m, b, a = mixed_inputs(dtype)
    gen = torch.Generator().manual_seed(5)
    tangents = tuple(torch.randn(t.shape, generator=gen).to(t.dtype) for t in (x, m, b, a))
    y, y_t = torch.func.jvp(relu_ext.relu_sum, (x, m, b, a), tangents)
    _, want = torch.func.jvp(relu_ext.reference.relu_sum, tuple(double(x, m, b, a)),
                             tuple(double(*tangents)))
    assert y.dtype == y_t.dtype == dtype
    assert_close(y_t, want, dtype)
    # The same through torch.autograd.forward_ad.
    import torch.autograd.forward_ad as fwAD
    with fwAD.dual_level():
        duals = [fwAD.make_dual(p, t) for p, t in zip((x, m, b, a), tangents)]
        assert torch.equal(fwAD.unpack_dual(relu_ext.relu_sum(*duals)).tangent, y_t)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_gradient_penalty_double_backward(dtype):
    x, m, b, a = mixed_inputs(dtype)

    def penalty(x, m, b, a, op, reduce_dtype):
        x = x.detach().requires_grad_()
        params = [p.detach().requires_grad_() for p in (m, b, a)]
        y = op(x, *params)
        (dx,) = torch.autograd.grad(y.to(reduce_dtype).sum(), x, create_graph=True)
        dx.to(reduce_dtype).square().sum().backward()
        return [p.grad for p in params]

    got = penalty(x, m, b, a, relu_ext.relu_sum, torch.float32)
    want = penalty(*double(x, m, b, a), relu_ext.reference.relu_sum, torch.float64)
    # dx = g·Σ_k a_k·m_k·H(m_k·x + b_k) does not depend on b (almost everywhere):
    # b's gradient is zeros, in the units' dtype, as the reference's.
    assert not want[1].any()
    for g, w in zip(got, want):
        assert g.dtype == torch.float32
        assert_close(g, w, dtype)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_vmap_over_inputs_and_over_an_ensemble_of_units(dtype):
    x, m, b, a = mixed_inputs(dtype, n=40)
    xs = x.reshape(4, 10)
    ys = torch.vmap(lambda x: relu_ext.relu_sum(x, m, b, a))(xs)
    assert ys.dtype == dtype
    assert torch.equal(ys, relu_ext.relu_sum(xs, m, b, a))
    # An ensemble of three float32 unit sets over one 16-bit x, with per-member gradients.
    ms, bs, as_ = (torch.stack([p, p * 0.5, -p]) for p in (m, b, a))
    grads = torch.vmap(torch.func.grad(lambda m, b, a: relu_ext.relu_sum(x, m, b, a).float().sum(),
                                       argnums=(0, 1, 2)))(ms, bs, as_)
    for i in range(3):
        want = torch.func.grad(lambda m, b, a: relu_ext.reference.relu_sum(x.double(), m, b, a).sum(),
                               argnums=(0, 1, 2))(*double(ms[i], bs[i], as_[i]))
        for g, w in zip(grads, want):
            assert g.dtype == torch.float32
            assert_close(g[i], w, dtype)


@pytest.mark.parametrize("op", ["relu_sum", "relu_sum_breakpoints", "step_sum",
                                "relu_sum_backward", "relu_sum_breakpoints_backward"])
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_opcheck_on_mixed_inputs(dtype, op):
    # Schema, fake kernel against the real one (dtypes included), autograd registration.
    x, m, b, a = mixed_inputs(dtype, n=37, k=5)
    overload = getattr(torch.ops.relu_ext, op).default
    if op.endswith("backward"):
        args = (torch.randn(37).to(dtype), x, m, b, a, [True] * 4)
    else:
        args = tuple(t.requires_grad_() for t in (x, m, b, a))
    torch.library.opcheck(overload, args)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_relu_sum_function_and_compile_with_mixed_dtypes(dtype):
    x, m, b, a = mixed_inputs(dtype, n=64)
    leaves = [t.clone().requires_grad_() for t in (x, m, b, a)]
    y = relu_ext.ReLUSumFunction.apply(*leaves)
    y.float().sum().backward()
    assert y.dtype == dtype
    assert [t.grad.dtype for t in leaves] == [dtype] + [torch.float32] * 3
    assert torch.equal(y, relu_ext.relu_sum(x, m, b, a))
    compiled = torch.compile(relu_ext.relu_sum, fullgraph=True)
    assert torch.equal(compiled(x, m, b, a), relu_ext.relu_sum(x, m, b, a))


# ----------------------------------------------------------------- autocast


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cpu_autocast_bfloat16_trains_with_float32_parameter_gradients(algorithm):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), relu_ext.ReLUSum(8, algorithm=algorithm),
                                torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(256, 2)
    y = (x[:, :1] ** 2 - x[:, 1:]).abs()
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden = model[0](x)
            assert hidden.dtype == torch.bfloat16
            activation = model[1](hidden)
            assert activation.dtype == torch.bfloat16
            out = model[2](activation)
        loss = F.mse_loss(out.float(), y)
        loss.backward()
        for p in model[1].parameters():
            assert p.dtype == torch.float32 and p.grad.dtype == torch.float32
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_autocast_gradients_match_the_float32_reference_to_bfloat16_rounding():
    torch.manual_seed(1)
    unit = relu_ext.ReLUSum(6)
    x = torch.randn(300).bfloat16()
    params = [p.detach().clone().requires_grad_() for p in unit.parameters()]
    relu_ext.relu_sum(x, *params).float().square().sum().backward()
    ref_params = [p.detach().clone().requires_grad_() for p in unit.parameters()]
    relu_ext.reference.relu_sum(x.float(), *ref_params).square().sum().backward()
    for got, want in zip(params, ref_params):
        assert got.grad.dtype == torch.float32
        torch.testing.assert_close(got.grad, want.grad, rtol=3e-2, atol=3e-2 * want.grad.abs().max().item())


# ------------------------------------------- the CUDA kernels, under the emulator


@pytest.mark.cuda_emu
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_cuda_kernels_take_half_x_with_float32_units(dtype):
    from cuda_emu import emulated_ops

    emu = emulated_ops.load()
    # Ragged against the emulated launch shapes (tests/cuda/test_cuda_emulator.py).
    x, m, b, a = mixed_inputs(dtype, n=300, k=19)
    grad = torch.randn(x.shape).to(dtype)
    y = emu.relu_sum(x, m, b, a)
    grads = emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad)
    assert_close_to_reference(y, y_ref, dtype)
    assert_close_to_reference(grads[0], grads_ref[0], dtype)
    for got, want in zip(grads[1:], grads_ref[1:]):
        assert got.dtype == torch.float32
        error = (got.double() - want).abs()
        assert (error <= 1e-5 * want.magnitude + 1e-30).all(), error.max()
    assert emu.step_sum(x, m, b, a).dtype == dtype
    with pytest.raises(TypeError, match=re.escape(
            "relu_sum(): m must have the dtype of x (torch.float64), but got torch.float32")):
        emu.relu_sum(x.double(), m, b, a)
