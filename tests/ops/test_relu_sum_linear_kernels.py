"""The CPU kernels of relu_sum_linear, dense and breakpoints, against the float64
reference (relu_ext.ops.reference.relu_sum_linear and torch autograd of it): values,
the four gradients, NaN/Inf, ties, empty shapes, dtypes, determinism, output_mask."""

import pytest
import torch

import relu_ext
from relu_ext.ops.reference import relu_sum_linear as reference_op

from helpers import DTYPES, TOLERANCE

OPS = {
    "dense": (torch.ops.relu_ext.relu_sum_linear, torch.ops.relu_ext.relu_sum_linear_backward),
    "breakpoints": (
        torch.ops.relu_ext.relu_sum_linear_breakpoints,
        torch.ops.relu_ext.relu_sum_linear_breakpoints_backward,
    ),
}
ALGORITHMS = list(OPS)
ALL = [True, True, True, True]


def make(n, i, k, o, *, dtype=torch.float32, param_dtype=None, bias=True, seed=0):
    param_dtype = param_dtype or dtype
    g = torch.Generator().manual_seed(seed)

    def rand(*s, dt):
        return (torch.randn(s, generator=g, dtype=torch.float64) * 2).to(dt)

    x = rand(n, i, dt=dtype)
    m, b, a = rand(i, k, dt=param_dtype), rand(i, k, dt=param_dtype), rand(o, i, k, dt=param_dtype)
    bias_t = rand(o, dt=param_dtype) if bias else None
    grad = rand(n, o, dt=dtype)
    return x, m, b, a, bias_t, grad


def reference(x, m, b, a, bias, grad):
    """The float64 reference and its autograd gradients, each with .magnitude: the sum
    of the absolute terms it is made of (as helpers.reference_forward_and_grads),
    without cancellation between m·x and b, which the breakpoint tables' lines have."""
    leaves = [t.detach().double().requires_grad_() for t in (x, m, b, a)]
    y = reference_op(*leaves, None if bias is None else bias.double())
    grads = torch.autograd.grad(y, leaves, grad.double())
    xd, md, bd, ad = (t.detach() for t in leaves)
    gd = grad.double().abs()
    with torch.no_grad():
        active = ~(xd[..., None] * md + bd <= 0)
        unc = torch.where(active, (xd[..., None] * md).abs() + bd.abs(), 0.0)
        y = y.detach()
        y.magnitude = torch.einsum("nik,oik->no", unc, ad.abs()) + (
            0 if bias is None else bias.double().abs()
        )
        ga = torch.einsum("no,oik->nik", gd, ad.abs()) * active
        mags = [
            (ga * md.abs()).sum(-1),
            (ga * xd.abs()[..., None]).sum(0),
            ga.sum(0),
            torch.einsum("no,nik->oik", gd, unc),
        ]
        # A product's rounding in the 16-bit types: a fraction of the value's own size.
        mags[1] = mags[1] + (ga * (md.abs() * xd.abs()[..., None] + bd.abs())).sum(0)
        for t, mag in zip(grads, mags):
            t.magnitude = mag
    return y, grads


def assert_close(actual, expected, dtype, tol_dtype):
    assert actual.dtype == dtype, (actual.dtype, dtype)
    assert actual.shape == expected.shape
    got = actual.double()
    assert torch.equal(got.isnan(), expected.isnan()), "NaN in different places"
    inf = expected.isinf()
    assert torch.equal(got[inf], expected[inf]), "different infinities"
    fin = expected.isfinite()
    err = (got - expected)[fin].abs()
    bound = 4 * TOLERANCE[tol_dtype] * expected.magnitude[fin] + torch.finfo(dtype).tiny
    # A finite value made of terms with an infinite magnitude (0 of them weighted by a
    # non-finite parameter): only its pattern is checked.
    bound = torch.nan_to_num(bound, nan=float("inf"))
    assert (err <= bound).all(), f"max error {err.max().item():.3g} ({(err > bound).sum().item()} off)"


def run(algorithm, x, m, b, a, bias, grad, mask=ALL):
    fwd, bwd = OPS[algorithm]
    return fwd(x, m, b, a, bias), bwd(grad, x, m, b, a, mask)


def check(algorithm, x, m, b, a, bias, grad):
    y, grads = run(algorithm, x, m, b, a, bias, grad)
    y_ref, grads_ref = reference(x, m, b, a, bias, grad)
    tol = x.dtype
    assert_close(y, y_ref, x.dtype, tol)
    for got, want, dt in zip(grads, grads_ref, [x.dtype] + [m.dtype] * 3):
        assert_close(got, want, dt, tol)


SHAPES = [(37, 5, 1, 3), (64, 16, 8, 16), (130, 7, 33, 20), (9, 3, 300, 70), (5, 2, 4, 1), (70, 3, 5, 300)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_reference(algorithm, shape, bias):
    check(algorithm, *make(*shape, bias=bias))


# Every x dtype with the parameters of its dtype, and the 16-bit ones also with float32.
DTYPE_PAIRS = [(d, d) for d in DTYPES] + [(d, torch.float32) for d in DTYPES if d.itemsize == 2]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype,param_dtype", DTYPE_PAIRS, ids=str)
def test_dtypes(algorithm, dtype, param_dtype):
    check(algorithm, *make(50, 6, 7, 18, dtype=dtype, param_dtype=param_dtype))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("isa", relu_ext.build_info()["cpu_isas"])
def test_every_instruction_set(algorithm, isa):
    previous = relu_ext._C.set_cpu_isa(isa)
    try:
        for dtype in (torch.float32, torch.float64):
            check(algorithm, *make(41, 5, 9, 37, dtype=dtype))
    finally:
        relu_ext._C.set_cpu_isa(previous)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ties_duplicates_flat_units_and_exact_breakpoints(algorithm):
    x, m, b, a, bias, grad = make(40, 3, 8, 5, dtype=torch.float64)
    # Duplicated breakpoints (same m and b, and same -b/m with other m), flat units
    # (m = 0 with b > 0, b = 0, b < 0), and samples exactly at breakpoints: m·x + b = 0.
    m[0] = torch.tensor([1.0, 1.0, 2.0, -1.0, 0.0, 0.0, 0.0, -4.0], dtype=m.dtype)
    b[0] = torch.tensor([-0.5, -0.5, -1.0, 0.5, 1.5, 0.0, -2.0, 2.0], dtype=b.dtype)
    m[1, :4] = 0.0
    x[:10, 0] = 0.5
    x[10:15, 0] = torch.tensor([0.0, 1.0, -0.5, 0.25, 2.0])
    x[:, 2] = x[:, 2].round()
    m[2] = (m[2] * 8).round() / 8  # m·x exact, so both roundings of m·x + b give 0
    b[2] = -m[2] * torch.tensor([0.0, 1.0, -1.0, 2.0, 0.0, 1.0, -2.0, 3.0])
    for dt in (torch.float64, torch.float32):
        check(algorithm, *(t.to(dt) if t is not None else None for t in (x, m, b, a, bias, grad)))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (4, 0, 4, 5), (4, 3, 0, 5), (4, 3, 4, 0), (0, 0, 0, 0)])
def test_empty(algorithm, shape):
    x, m, b, a, bias, grad = make(*shape)
    y, grads = run(algorithm, x, m, b, a, bias, grad)
    y_ref, grads_ref = reference(x, m, b, a, bias, grad)
    assert y.shape == y_ref.shape
    assert torch.allclose(y.double(), y_ref, atol=1e-5)
    for got, want in zip(grads, grads_ref):
        assert got.shape == want.shape
        assert torch.allclose(got.double(), want, atol=1e-5)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("where", ["x", "m", "b", "a"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite(algorithm, where, value):
    x, m, b, a, bias, grad = make(30, 4, 6, 140)  # outputs in two slices of the forward
    if where == "x":
        x[3, 1] = value
        x[7, 2] = value
        x[20, :] = value
    elif where == "a":
        a[2, 1, 3] = value
    else:
        {"m": m, "b": b}[where][2, 4] = value
    check(algorithm, x, m, b, a, bias, grad)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_non_contiguous_x(algorithm):
    x, m, b, a, bias, grad = make(33, 6, 5, 9)
    xt = x.t().contiguous().t()
    assert not xt.is_contiguous()
    check(algorithm, xt, m, b, a, bias, grad)
    x2 = torch.cat([x, x], 1)[:, ::2]
    check(algorithm, x2, m, b, a, bias, grad)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shape", [(300, 40, 6, 19), (257, 9, 70, 33), (130, 5, 4, 270)])
def test_deterministic_across_threads(algorithm, shape):
    args = make(*shape)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(algorithm, *args)
        torch.set_num_threads(2)
        two = run(algorithm, *args)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one[0], two[0])
    for p, q in zip(one[1], two[1]):
        assert torch.equal(p, q)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("mask", [[True, False, False, False], [False, True, False, True],
                                  [False, False, True, False], [False] * 4, [False, True, True, False]])
def test_output_mask(algorithm, mask):
    x, m, b, a, bias, grad = make(20, 4, 5, 6)
    _, full = run(algorithm, x, m, b, a, bias, grad)
    _, some = run(algorithm, x, m, b, a, bias, grad, mask)
    for asked, f, s in zip(mask, full, some):
        if asked:
            assert torch.equal(f, s)
        else:
            assert s is None


def test_algorithms_agree_on_a_non_finite_sample_among_finite_ones():
    x, m, b, a, bias, grad = make(70, 5, 12, 21)
    x[5, 3] = float("nan")
    dense = run("dense", x, m, b, a, bias, grad)
    bp = run("breakpoints", x, m, b, a, bias, grad)
    assert torch.equal(dense[0].isnan(), bp[0].isnan())
    for p, q in zip(dense[1], bp[1]):
        assert torch.equal(p.isnan(), q.isnan())
