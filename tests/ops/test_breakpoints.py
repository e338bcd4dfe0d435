"""The breakpoint algorithm (relu_sum(..., algorithm="breakpoints")): against the
float64 reference, the dense op, on breakpoint edge cases, non-finite fallback,
registration (opcheck, torch.compile) and the "auto" choice.

The side rule at a breakpoint t = -b/m: unit k is active where m·x + b > 0,
exactly as in the dense op. For float16, bfloat16 and float32 inputs the
breakpoint algorithm decides every side exactly (its events are t rounded
*down* to the compute dtype, which makes "x > event" and "x > t" the same
test); for float64 inputs, an x within half an ulp of -b/m (which is itself
rounded) may land on either side. The tests with inputs exactly on a
breakpoint use values where -b/m is exact, so both algorithms must agree.
"""

import itertools
import re

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import relu_ext
from helpers import DTYPES, OPCHECK_CASES, assert_close_to_reference, make_inputs, reference_forward_and_grads
from relu_ext.ops import choose_algorithm

ops = torch.ops.relu_ext


def run(x, m, b, a, grad_out, algorithm="breakpoints"):
    """y and the gradients of every input, through autograd."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, m, b)]
    if a is not None:
        leaves.append(a.detach().clone().requires_grad_())
    y = relu_ext.relu_sum(*leaves[:3], leaves[3] if a is not None else None, algorithm=algorithm)
    grads = torch.autograd.grad(y, leaves, grad_out)
    return y, list(grads) + [None] * (4 - len(grads))


def assert_matches_reference(x, m, b, a, dtype, grad_out=None):
    if grad_out is None:
        grad_out = make_inputs(x.shape, 0, dtype=dtype, seed=1)[0]
    y, grads = run(x, m, b, a, grad_out)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad_out)
    assert_close_to_reference(y, y_ref, dtype)
    for got, want in zip(grads, grads_ref):
        assert (got is None) == (want is None)
        if got is not None:
            assert_close_to_reference(got, want, dtype)


SHAPES_AND_UNITS = list(itertools.product([0, 1, 7, 2048 + 77, (), (3, 5), (2, 0, 4)],
                                          [0, 1, 5, 67])) + [
    (3000, 1500), ((30, 50), 1500),  # Cauchy breakpoints (-b/m for Gaussian m, b)
]


@pytest.mark.parametrize("shape, units", SHAPES_AND_UNITS, ids=str)
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
def test_matches_reference(shape, units, out_weights, dtype):
    x, m, b, a = make_inputs(shape, units, dtype=dtype, out_weights=out_weights)
    assert_matches_reference(x, m, b, a, dtype)


# float32 and float64 only: among 40,000 float16 gradients some are subnormal,
# where the relative tolerance of helpers.py does not hold for the dense op either.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("units", [1, 9, 100])
def test_several_chunks_of_interval_sums(units, dtype):
    x, m, b, a = make_inputs(40_000, units, dtype=dtype)
    assert_matches_reference(x, m, b, a, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_heavy_tailed_breakpoints(dtype):
    # Breakpoints whose range is thousands of times their interquartile range
    # (beyond float16's range): the search cuts them into quantile pieces
    # (IntervalIndex::heavy_tailed).
    g = torch.Generator().manual_seed(5)
    breakpoints = torch.exp(4 * torch.randn(2000, generator=g, dtype=torch.float64))
    breakpoints *= torch.randint(0, 2, (2000,), generator=g) * 2 - 1
    q = breakpoints.quantile(torch.tensor([0.25, 0.75], dtype=torch.float64))
    assert breakpoints.max() - breakpoints.min() > 2048 * (q[1] - q[0])
    m = (torch.randint(0, 2, (2000,), generator=g) * 2 - 1).double()
    x = torch.cat([breakpoints[:200], torch.randn(800, generator=g, dtype=torch.float64) * 50])
    assert_matches_reference(x.to(dtype), m.to(dtype), (-m * breakpoints).to(dtype),
                             torch.randn(2000, generator=g).to(dtype), dtype)


def test_many_units_spread_like_relusum_initialises_them(dtype):
    torch.manual_seed(0)
    module = relu_ext.ReLUSum(5000, dtype=dtype)
    x = (torch.randn(3000, dtype=torch.float64) * 2).to(dtype)
    assert_matches_reference(x, module.m.detach(), module.b.detach(), module.a.detach(), dtype)


def test_non_contiguous_inputs(dtype):
    base, m, b, a = make_inputs((40, 30), 9, dtype=dtype)
    x = base.t()[:, ::2]
    assert not x.is_contiguous()
    assert_matches_reference(x, torch.stack([m, m], 1)[:, 0], b, a, dtype)


def exact_units(dtype, *, with_flat=True):
    """Units whose breakpoints -b/m are exact in every dtype, duplicated, rising
    and falling, and (with_flat) flat units with b > 0, b < 0 and b = 0."""
    breakpoints = torch.tensor([-1.5, -0.25, 0.0, 0.0, 0.5, 0.5, 0.5, 2.0, 2.0, 3.75])
    slopes = torch.tensor([1.0, -2.0, 0.5, -1.0, 1.0, -0.5, 2.0, 1.0, -1.0, 4.0])
    m, b = slopes, -slopes * breakpoints
    if with_flat:
        m = torch.cat([m, torch.zeros(3)])
        b = torch.cat([b, torch.tensor([1.25, -0.75, 0.0])])
    a = torch.linspace(-1.0, 1.5, m.numel())
    return breakpoints, m.to(dtype), b.to(dtype), a.to(dtype)


def test_inputs_exactly_on_breakpoints(dtype):
    # At a breakpoint m·x + b is exactly 0: the unit is inactive and its
    # gradient blocked (relu'(0) = 0), from either side, whatever the dtype.
    breakpoints, m, b, a = exact_units(dtype)
    x = torch.cat([breakpoints, breakpoints + 0.125, breakpoints - 0.125]).to(dtype)
    assert_matches_reference(x, m, b, a, dtype)
    grad_out = torch.linspace(-2, 2, x.numel(), dtype=dtype)
    for got, want in zip(run(x, m, b, a, grad_out)[1], run(x, m, b, a, grad_out, "dense")[1]):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("arrangement", ["sorted", "reversed", "constant", "on_one_breakpoint",
                                         "below_all", "above_all"])
def test_input_arrangements(arrangement, dtype):
    breakpoints, m, b, a = exact_units(dtype)
    x = torch.linspace(-4, 5, 1001, dtype=torch.float64)
    x = {
        "sorted": x,
        "reversed": x.flip(0),
        "constant": torch.full((500,), 1.3, dtype=torch.float64),
        "on_one_breakpoint": torch.full((500,), 0.5, dtype=torch.float64),
        "below_all": x - 100,
        "above_all": x + 100,
    }[arrangement].to(dtype)
    assert_matches_reference(x, m, b, a, dtype)


@pytest.mark.parametrize("side", ["all_rising", "all_falling", "all_flat"])
def test_units_all_of_one_kind(side, dtype):
    x, m, b, a = make_inputs(513, 40, dtype=dtype)
    m = {"all_rising": m.abs(), "all_falling": -m.abs(), "all_flat": torch.zeros_like(m)}[side]
    assert_matches_reference(x, m, b, a, dtype)


def test_all_units_on_one_breakpoint(dtype):
    x, m, b, a = make_inputs(700, 33, dtype=dtype)
    b = (-m * 0.75).to(dtype)  # t = 0.75 for every unit, to within rounding
    assert_matches_reference(x, m, b, a, dtype)


MASKS = [list(mask) for mask in itertools.product([False, True], repeat=4)]


@pytest.mark.parametrize("mask", MASKS, ids=str)
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
def test_gradient_masks_agree_with_dense(mask, out_weights):
    x, m, b, a = make_inputs((33, 40), 12, out_weights=out_weights)
    grad_out = torch.randn_like(x)
    got = ops.relu_sum_breakpoints_backward(grad_out, x, m, b, a, mask)
    want = ops.relu_sum_backward(grad_out, x, m, b, a, mask)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("units", [3, 300, 3000])
def test_agrees_with_dense(units, dtype):
    x, m, b, a = make_inputs((64, 50), units, dtype=dtype)
    grad_out = make_inputs(x.shape, 0, dtype=dtype, seed=2)[0]
    y, grads = run(x, m, b, a, grad_out)
    y_dense, grads_dense = run(x, m, b, a, grad_out, "dense")
    # Each is within the reference's tolerance of the exact value, so they are
    # within twice that of each other.
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad_out)
    for got, dense, ref in zip([y, *grads], [y_dense, *grads_dense], [y_ref, *grads_ref]):
        expected = dense.double()
        expected.magnitude = 2 * ref.magnitude
        assert_close_to_reference(got, expected, dtype)


NON_FINITE = {
    "x_nan": lambda x, m, b, a, g: x.index_fill_(0, torch.tensor([3]), float("nan")),
    "x_inf": lambda x, m, b, a, g: x.index_fill_(0, torch.tensor([5]), float("inf")),
    "x_minus_inf": lambda x, m, b, a, g: x.index_fill_(0, torch.tensor([40]), -float("inf")),
    "m_inf": lambda x, m, b, a, g: m.index_fill_(0, torch.tensor([1]), float("inf")),
    "b_nan": lambda x, m, b, a, g: b.index_fill_(0, torch.tensor([2]), float("nan")),
    "a_inf": lambda x, m, b, a, g: a.index_fill_(0, torch.tensor([0]), -float("inf")),
    "grad_inf": lambda x, m, b, a, g: g.index_fill_(0, torch.tensor([7]), float("inf")),
}


@pytest.mark.parametrize("case", NON_FINITE, ids=str)
def test_non_finite_values_behave_exactly_as_in_dense(case, dtype):
    x, m, b, a = make_inputs(50_000, 6, dtype=dtype)
    grad_out = make_inputs(x.shape, 0, dtype=dtype, seed=1)[0]
    NON_FINITE[case](x, m, b, a, grad_out)
    y, grads = run(x, m, b, a, grad_out)
    y_dense, grads_dense = run(x, m, b, a, grad_out, "dense")
    if case != "grad_inf":  # (a finite forward is the breakpoint one)
        torch.testing.assert_close(y, y_dense, rtol=0, atol=0, equal_nan=True)
    for got, want in zip(grads, grads_dense):
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


def test_deterministic_whatever_the_thread_count():
    x, m, b, a = make_inputs(100_000, 700)
    grad_out = torch.randn_like(x)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append((ops.relu_sum_breakpoints(x, m, b, a),
                            ops.relu_sum_breakpoints_backward(grad_out, x, m, b, a, [True] * 4)))
    finally:
        torch.set_num_threads(threads)
    for y, grads in results[1:]:
        assert torch.equal(y, results[0][0])
        assert all(torch.equal(g, w) for g, w in zip(grads, results[0][1]))


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=150, deadline=None)
@given(
    x=st.lists(finite, min_size=1, max_size=60),
    units=st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=12),
    flat=st.sets(st.integers(0, 11)),
    out_weights=st.booleans(),
)
def test_random_inputs_match_reference(x, units, flat, out_weights):
    m, b, a = (torch.tensor(column, dtype=torch.float32) for column in zip(*units))
    m[[i for i in flat if i < m.numel()]] = 0.0
    a = a if out_weights else None
    x = torch.tensor(x, dtype=torch.float32)
    grad_out = torch.linspace(-1, 1, x.numel())
    y, grads = run(x, m, b, a, grad_out)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad_out)
    # The documented accuracy: the float32 tolerance of the terms' magnitude,
    # plus float64 rounding of the slope and intercept sums, which y and da
    # take as sum(a m)·x + sum(a b) and so can cancel where m·x + b does.
    ad = a.double().abs() if a is not None else torch.ones(m.numel(), dtype=torch.float64)
    md, bd, xd = m.double().abs(), b.double().abs(), x.double().abs()
    cancelling = {
        0: (ad * (md * xd[:, None] + bd)).sum(-1),
        4: (grad_out.double().abs()[:, None] * (md * xd[:, None] + bd)).sum(0),
    }
    for i, (got, want) in enumerate(zip([y, *grads], [y_ref, *grads_ref])):
        if got is None:
            continue
        want.magnitude = want.magnitude + 1e-9 * cancelling.get(i, 0.0)
        assert_close_to_reference(got, want, torch.float32)


@pytest.mark.parametrize("case", OPCHECK_CASES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_opcheck_relu_sum_breakpoints(case, dtype):
    x, m, b, a = make_inputs(**OPCHECK_CASES[case], dtype=dtype)
    for t in (x, m, b, a):
        if t is not None:
            t.requires_grad_()
    torch.library.opcheck(ops.relu_sum_breakpoints.default, (x, m, b, a))


@pytest.mark.parametrize("mask", [[True] * 4, [True, False, False, False], [False, True, True, False],
                                  [False, False, False, True]], ids=str)
@pytest.mark.parametrize("case", OPCHECK_CASES, ids=str)
def test_opcheck_relu_sum_breakpoints_backward(case, mask):
    x, m, b, a = make_inputs(**OPCHECK_CASES[case])
    torch.library.opcheck(ops.relu_sum_breakpoints_backward.default,
                          (torch.randn_like(x), x, m, b, a, mask))


def test_gradcheck():
    x, m, b, a = make_inputs(23, 5, dtype=torch.float64)
    leaves = tuple(t.requires_grad_() for t in (x, m, b, a))
    assert torch.autograd.gradcheck(
        lambda *t: relu_ext.relu_sum(*t, algorithm="breakpoints"), leaves)


def test_compile_auto_follows_the_sizes():
    torch._dynamo.reset()
    m, b, a = make_inputs(1, 2000)[1:]
    compiled = torch.compile(relu_ext.relu_sum, fullgraph=True, dynamic=True)
    for n in (10, 200_000):
        x = torch.randn(n)
        assert torch.equal(compiled(x, m, b, a), relu_ext.relu_sum(x, m, b, a))


@pytest.mark.parametrize("n, units, expected", [
    (20, 8, "dense"),             # the lesson's size
    (262_144, 8, "dense"),
    (262_144, 4096, "breakpoints"),
    (262_144, 65_536, "breakpoints"),
    (100, 65_536, "dense"),       # too few inputs to pay for sorting the units
])
def test_auto_picks_by_size(n, units, expected):
    x, m = torch.empty(n), torch.empty(units)
    assert choose_algorithm("auto", x, m) == expected


def test_auto_runs_the_breakpoint_op_for_large_k():
    x, m, b, a = make_inputs(50_000, 4096)
    assert torch.equal(relu_ext.relu_sum(x, m, b, a), ops.relu_sum_breakpoints(x, m, b, a))
    assert torch.equal(relu_ext.relu_sum(x[:30], m[:4], b[:4], a[:4]),
                       ops.relu_sum(x[:30], m[:4], b[:4], a[:4]))


def test_a_trace_chooses_the_algorithm_per_call():
    # The choice is made in C++ by relu_ext::relu_sum_auto, which the trace
    # records: traced at 30 inputs (dense), run at 50,000 (breakpoints).
    x, m, b, a = make_inputs(50_000, 4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace is deprecated
        traced = torch.jit.trace(lambda x: relu_ext.relu_sum(x, m, b, a), x[:30])
    assert "relu_ext::relu_sum_auto" in str(traced.graph)
    assert torch.equal(traced(x), ops.relu_sum_breakpoints(x, m, b, a))
    assert torch.equal(traced(x[:30]), ops.relu_sum(x[:30], m, b, a))


@pytest.mark.parametrize("algorithm", ["fast", "", None, "Dense"])
def test_bad_algorithm_is_named(algorithm):
    x, m, b, a = make_inputs(4, 2)
    message = r"algorithm must be one of 'auto', 'dense', 'breakpoints', but got"
    with pytest.raises(ValueError, match=r"relu_sum\(\): " + message):
        relu_ext.relu_sum(x, m, b, a, algorithm=algorithm)
    with pytest.raises(ValueError, match=r"ReLUSum\(\): " + message):
        relu_ext.ReLUSum(3, algorithm=algorithm)


def test_breakpoints_on_another_device_is_refused_clearly():
    x, m, b, a = (t.to("meta") for t in make_inputs(4, 2))
    with pytest.raises(ValueError, match="algorithm='breakpoints' is implemented for CPU tensors only"):
        relu_ext.relu_sum(x, m, b, a, algorithm="breakpoints")
    assert choose_algorithm("auto", x, m) == "dense"


def test_module_uses_its_algorithm():
    module = relu_ext.ReLUSum(6, algorithm="breakpoints")
    assert "algorithm='breakpoints'" in repr(module)
    x = torch.randn(100)
    assert torch.equal(module(x), ops.relu_sum_breakpoints(x, module.m, module.b, module.a))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16],
                         ids=["float32", "float16", "bfloat16"])
def test_side_of_the_kink_is_exact_below_float64(dtype):
    # Inputs on and next to each (rounded) breakpoint, where the rounding of
    # -b/m matters. With g = 1 and a = 1, db_k counts the inputs where unit k
    # is active: it must match the reference's count exactly (m·x + b in
    # float64 has the sign of the exact value for these dtypes).
    g = torch.Generator().manual_seed(3)
    m = (torch.randn(60, generator=g) * 3).to(dtype)
    m[m == 0] = 1
    b = torch.randn(60, generator=g).to(dtype)
    t = (-b.double() / m.double()).to(dtype)
    x = torch.cat([t, torch.nextafter(t, t + 1), torch.nextafter(t, t - 1)])
    ones = torch.ones_like(x)
    got = ops.relu_sum_breakpoints_backward(ones, x, m, b, None, [False, False, True, False])[2]
    active = (x.double()[:, None] * m.double() + b.double()) > 0
    assert torch.equal(got.double(), active.sum(0).double())


def test_extreme_magnitudes_float32():
    # Breakpoints far outside the inputs' range (±1e30), tiny and huge slopes.
    m = torch.tensor([1e-30, -1e-30, 1e20, -1e20, 3.0, 1e-3])
    b = torch.tensor([1.0, 1.0, -1e20, -2e20, 1e30, -1e-30])
    a = torch.tensor([1.0, -2.0, 1e-10, 1e-10, 1e-30, 5.0])
    x = torch.linspace(-5, 5, 101)
    assert_matches_reference(x, m, b, a, torch.float32)


@pytest.mark.parametrize("fake", [False, True], ids=["op", "fake"])
def test_bad_arguments_are_named_like_the_dense_op(fake):
    from torch._subclasses.fake_tensor import FakeTensorMode

    x, m, b, a = make_inputs(6, 3)
    calls = {
        "relu_sum_breakpoints(): b must have the shape of m ([3]), but got [2]":
            lambda: ops.relu_sum_breakpoints(x, m, b[:2], a),
        "relu_sum_breakpoints_backward(): grad must have the shape of x ([6]), but got [5]":
            lambda: ops.relu_sum_breakpoints_backward(x[:5], x, m, b, a, [True] * 4),
    }
    for message, call in calls.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            if fake:
                with FakeTensorMode(allow_non_fake_inputs=True):
                    call()
            else:
                call()
