"""step_sum(x, m, b, w) = Σ_k w_k·H(m_k·x + b_k): the mask sum that relu_sum's
forward-mode and higher derivatives are made of (csrc/autograd/derivatives.cpp).
Against its float64 definition, on every dtype and instruction set, with the
kink and NaN semantics of relu's backward, and as an operator (opcheck,
derivatives, bad arguments)."""

import re

import pytest
import torch
import torch.autograd.forward_ad as fwAD

import relu_ext
from helpers import DTYPES, TOLERANCE, make_inputs, reference_step_sum

step_sum = torch.ops.relu_ext.step_sum


@pytest.fixture(params=relu_ext.build_info()["cpu_isas"])
def isa(request):
    previous = relu_ext._C.set_cpu_isa(request.param)
    yield request.param
    relu_ext._C.set_cpu_isa(previous)


@pytest.mark.parametrize("units", [0, 1, 5, 37])
@pytest.mark.parametrize("shape", [0, 1, 31, (3, 70), ()], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_definition(shape, units, dtype, isa):
    x, m, b, w = make_inputs(shape, units, dtype=dtype)
    y = step_sum(x, m, b, w)
    assert y.dtype == dtype and y.shape == x.shape
    expected = reference_step_sum(x, m, b, w)
    scale = w.double().abs().sum() if units else torch.tensor(1.0)
    torch.testing.assert_close(y.double(), expected, rtol=0, atol=TOLERANCE[dtype] * scale.item() + 1e-30)


def test_kink_and_nan_follow_relu_backward():
    # H(0) = 0 (relu'(0) = 0 in torch), H(NaN) = 1 (the gradient passes NaN).
    x = torch.tensor([0.0, 1.0, float("nan"), float("inf"), -float("inf")])
    m, b, w = torch.tensor([1.0, 2.0]), torch.tensor([0.0, -2.0]), torch.tensor([1.0, 10.0])
    assert torch.equal(step_sum(x, m, b, w), reference_step_sum(x, m, b, w).float())
    assert step_sum(x, m, b, w).tolist() == [0.0, 1.0, 11.0, 11.0, 0.0]


def test_bitwise_deterministic_across_thread_counts():
    x, m, b, w = make_inputs(100_003, 67)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(step_sum(x, m, b, w))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(results[0], r) for r in results[1:])


def test_strided_input():
    x, m, b, w = make_inputs((40, 6), 9)
    xt = x.t()
    torch.testing.assert_close(step_sum(xt, m, b, w), step_sum(xt.contiguous(), m, b, w), rtol=0, atol=0)


@pytest.mark.parametrize("units", [0, 6])
def test_opcheck(units):
    x, m, b, w = make_inputs((5, 7), units)
    for t in (x, m, b, w):
        t.requires_grad_()
    torch.library.opcheck(step_sum.default, (x, m, b, w))


def test_derivatives():
    # Linear in w (its gradient is the mask's sum over inputs), piecewise
    # constant in x, m and b.
    x, m, b, w = (t.requires_grad_() for t in make_inputs(23, 5, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda w: step_sum(x, m, b, w), (w,))
    assert torch.autograd.gradgradcheck(lambda w: step_sum(x, m, b, w), (w,))
    gx, gm, gb = torch.autograd.grad(step_sum(x, m, b, w).sum(), (x, m, b), allow_unused=True,
                                     materialize_grads=True)
    assert not (gx.any() or gm.any() or gb.any())
    # Zeros, not absent: x, m and b count as used, as in torch.sign.
    gx, gm, gb = torch.autograd.grad(step_sum(x, m, b, w).sum(), (x, m, b))
    assert gx.shape == x.shape and gm.shape == m.shape and gb.shape == b.shape
    assert not (gx.any() or gm.any() or gb.any())
    w_t = torch.randn_like(w)
    _, y_t = torch.func.jvp(lambda w: step_sum(x, m, b, w), (w.detach(),), (w_t,))
    torch.testing.assert_close(y_t, step_sum(x, m, b, w_t).detach())


def test_tangent_along_x_m_b_is_zeros():
    # A tangent in x, m or b alone gives the output a zero tangent, as
    # torch.sign does, rather than none: relu_sum's second derivatives under
    # forward mode are made of step_sum, and the reference's are zeros there.
    x, m, b, w = make_inputs(23, 5, dtype=torch.float64)
    for i in range(3):
        primals = [x, m, b, w]
        with fwAD.dual_level():
            primals[i] = fwAD.make_dual(primals[i], torch.randn_like(primals[i]))
            y_t = fwAD.unpack_dual(step_sum(*primals)).tangent
        assert y_t is not None and y_t.shape == x.shape and not y_t.any()


@pytest.mark.parametrize("fake", [False, True], ids=["op", "fake"])
def test_bad_weights_are_named_w(fake):
    x, m, b, _ = make_inputs(6, 4)
    cases = [
        (torch.randn(5), ValueError, "step_sum(): w must have the shape of m ([4]), but got [5]"),
        (torch.randn(4, dtype=torch.float64), TypeError,
         "step_sum(): w must have the dtype of x (torch.float32), but got torch.float64"),
    ]
    for w, error, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            if fake:
                with torch._subclasses.fake_tensor.FakeTensorMode(allow_non_fake_inputs=True):
                    step_sum(x, m, b, w)
            else:
                step_sum(x, m, b, w)
