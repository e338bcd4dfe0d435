"""The breakpoint algorithm with per-channel (C, K) units: a table per channel.

test_per_channel.py holds both algorithms to the float64 reference over
shapes, dims, layouts, dtypes, NaN/Inf, gradcheck, vmap and determinism.
Here: what the tables per channel must satisfy beyond that. Each channel is
the shared algorithm on that channel's inputs, bitwise (the shared case is
the one-channel case); breakpoint edge cases per channel; non-finite values
fall back to the dense kernels exactly; dense, breakpoints and auto agree;
and auto's choice by channel count C, units K and elements per channel E.
"""

import itertools
import re

import pytest
import torch

import relu_ext
from relu_ext.ops import choose_algorithm
from test_breakpoints import exact_units
from test_per_channel import check_against_reference, make_inputs

ops = torch.ops.relu_ext
MASK = [True] * 4


def channel_inputs(x3, c):
    """Channel c's inputs of an (outer, C, inner) x, in the op's channel order."""
    return x3[:, c, :].reshape(-1)


# (outer, C, inner): channels innermost, NCHW-like, one channel, inner runs
# shorter than a block of 256 and longer, several interval-sum chunks.
LAYOUTS = [(300, 5, 1), (2, 3, 700), (3, 1, 500), (40, 4, 7), (1, 2, 40000), (2, 6, 100)]


@pytest.mark.parametrize("shape", LAYOUTS, ids=str)
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
def test_each_channel_is_the_shared_algorithm_bitwise(shape, out_weights, dtype):
    # The tables, chunks and sums of a channel are those of the shared op on
    # that channel's inputs (E of them), so every result matches bitwise.
    x, m, b, a = make_inputs(shape, 1, 9, dtype=dtype, out_weights=out_weights)
    grad = make_inputs(shape, 1, 0, dtype=dtype, seed=3)[0]
    y = ops.relu_sum_breakpoints(x, m, b, a)
    grads = ops.relu_sum_breakpoints_backward(grad, x, m, b, a, MASK)
    for c in range(shape[1]):
        row_a = a[c] if a is not None else None
        xc, gc = channel_inputs(x, c), channel_inputs(grad, c)
        assert torch.equal(channel_inputs(y, c), ops.relu_sum_breakpoints(xc, m[c], b[c], row_a))
        want = ops.relu_sum_breakpoints_backward(gc, xc, m[c], b[c], row_a, MASK)
        assert torch.equal(channel_inputs(grads[0], c), want[0])
        for got, expected in zip(grads[1:], want[1:]):
            assert (got is None) == (expected is None)
            if got is not None:
                assert torch.equal(got[c], expected)


def test_one_channel_is_the_shared_function():
    x, m, b, a = make_inputs((5, 1, 3000), 1, 300)
    grad = torch.randn_like(x)
    assert torch.equal(ops.relu_sum_breakpoints(x, m, b, a),
                       ops.relu_sum_breakpoints(x, m[0], b[0], a[0]))
    per_channel = ops.relu_sum_breakpoints_backward(grad, x, m, b, a, MASK)
    shared = ops.relu_sum_breakpoints_backward(grad, x, m[0], b[0], a[0], MASK)
    assert torch.equal(per_channel[0], shared[0])
    assert all(torch.equal(p[0], s) for p, s in zip(per_channel[1:], shared[1:]))


@pytest.mark.parametrize("inner", [1, 37], ids=["channels_innermost", "runs"])
def test_inputs_exactly_on_each_channels_breakpoints(inner, dtype):
    # Channel c's units are exact_units shifted by c (exact in every dtype):
    # inputs on, above and below each channel's own breakpoints, so a wrong
    # table for a channel puts some of them on the wrong side of a kink.
    # float32 units for a 16-bit x, so that the counts below are exact.
    units_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    breakpoints, m0, b0, a0 = exact_units(units_dtype)
    channels = 3
    shifts = torch.arange(channels, dtype=torch.float64)
    m = m0.expand(channels, -1).clone()
    b = (b0.double() - m0.double() * shifts[:, None]).to(units_dtype)
    a = a0.expand(channels, -1).clone()
    per_channel = torch.cat([breakpoints, breakpoints + 0.125, breakpoints - 0.125])
    columns = (per_channel[:, None] + shifts).to(dtype)  # (E, C)
    x = columns.reshape(-1, 1, channels).expand(-1, inner, -1).transpose(1, 2).contiguous()
    check_against_reference(x, m, b, a, 1, dtype, "breakpoints")
    # With g = 1 and no output weights, db counts each unit's active inputs:
    # exactly the reference's count (m·x + b > 0 in float64 is exact here).
    db = ops.relu_sum_breakpoints_backward(torch.ones_like(x), x, m, b, None,
                                           [False, False, True, False])[2]
    pre = x.double().transpose(1, 2)[..., None] * m.double() + b.double()  # (outer, inner, C, K)
    assert torch.equal(db.double(), (pre > 0).sum((0, 1)).double())


@pytest.mark.parametrize("units", [0, 1, 6, 300])
def test_empty_x_and_no_units(units):
    for shape in [(0, 3, 4), (2, 3, 0), (2, 0, 4)]:
        x, m, b, a = make_inputs(shape, 1, units)
        y = relu_ext.relu_sum(x, m, b, a, algorithm="breakpoints")
        assert y.shape == x.shape
        if units == 0:
            assert torch.equal(y, torch.zeros_like(x))
        grads = ops.relu_sum_breakpoints_backward(torch.ones_like(x), x, m, b, a, MASK)
        assert [g.shape for g in grads] == [x.shape, m.shape, b.shape, a.shape]
        assert all(not g.any() for g in grads)


NON_FINITE = {
    "x_nan": lambda x, m, b, a, g: x[5, 1, 0].fill_(float("nan")),
    "x_inf": lambda x, m, b, a, g: x[7, 2, 0].fill_(float("inf")),
    "m_inf": lambda x, m, b, a, g: m[1, 3].fill_(-float("inf")),
    "b_nan": lambda x, m, b, a, g: b[2, 0].fill_(float("nan")),
    "a_inf": lambda x, m, b, a, g: a[0, 2].fill_(float("inf")),
    "grad_nan": lambda x, m, b, a, g: g[9, 0, 0].fill_(float("nan")),
}


@pytest.mark.parametrize("case", NON_FINITE, ids=str)
def test_non_finite_values_behave_exactly_as_in_dense(case, dtype):
    pd = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    x, m, b, a = make_inputs((20_000, 3, 1), 1, 6, dtype=dtype, param_dtype=pd)
    grad = make_inputs(x.shape, 1, 0, dtype=dtype, seed=1)[0]
    NON_FINITE[case](x, m, b, a, grad)
    if case != "grad_nan":  # (a finite forward is the breakpoint one)
        torch.testing.assert_close(ops.relu_sum_breakpoints(x, m, b, a), ops.relu_sum(x, m, b, a),
                                   rtol=0, atol=0, equal_nan=True)
    got = ops.relu_sum_breakpoints_backward(grad, x, m, b, a, MASK)
    want = ops.relu_sum_backward(grad, x, m, b, a, MASK)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("mask", [list(v) for v in itertools.product([False, True], repeat=4)],
                         ids=str)
def test_gradient_masks_agree_with_dense(mask):
    x, m, b, a = make_inputs((40, 3, 11), 1, 12)
    grad = torch.randn_like(x)
    got = ops.relu_sum_breakpoints_backward(grad, x, m, b, a, mask)
    want = ops.relu_sum_backward(grad, x, m, b, a, mask)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape, dim", [((64, 3, 50), 1), ((2000, 7), -1), ((2, 4, 9, 9), 1)],
                         ids=str)
def test_dense_breakpoints_and_auto_agree(shape, dim, dtype):
    x, m, b, a = make_inputs(shape, dim, 300, dtype=dtype)
    results = {alg: check_against_reference(x, m, b, a, dim, dtype, alg)
               for alg in ("dense", "breakpoints", "auto")}
    # Each is within the reference's tolerance; auto is one of the two, exactly.
    assert any(torch.equal(results["auto"], results[alg]) for alg in ("dense", "breakpoints"))


def test_gradcheck():
    x, m, b, a = make_inputs((4, 3, 5), 1, 6, dtype=torch.float64)
    leaves = tuple(t.requires_grad_() for t in (x, m, b, a))
    assert torch.autograd.gradcheck(
        lambda *t: relu_ext.relu_sum(*t, dim=1, algorithm="breakpoints"), leaves)


def test_opcheck():
    for shape, units in [((2, 3, 5), 4), ((6, 2, 1), 3), ((2, 3, 4), 0), ((0, 3, 4), 2)]:
        x, m, b, a = make_inputs(shape, 1, units)
        torch.library.opcheck(ops.relu_sum_breakpoints.default, (x, m, b, a))
        torch.library.opcheck(ops.relu_sum_breakpoints_backward.default,
                              (torch.randn_like(x), x, m, b, a, MASK))


def test_bad_layout_is_named_by_the_op():
    m = torch.randn(4, 2)
    with pytest.raises(ValueError, match=re.escape(
            "relu_sum_breakpoints(): x.shape[1] must equal the number of channels of m (4), "
            "but got 3")):
        ops.relu_sum_breakpoints(torch.randn(2, 3, 5), m, m, None)


# ---------------------------------------------------------------- auto

def auto_choice(channels, units, per_channel, inner=1):
    """What auto runs for (outer, C, inner) inputs, E = outer·inner per channel."""
    x = torch.empty(per_channel // inner, channels, inner)
    return choose_algorithm("auto", x, torch.empty(channels, units))


@pytest.mark.parametrize("channels, units, per_channel, expected", [
    (1, 4096, 262_144, "breakpoints"),   # as shared units of that size
    (1, 8, 262_144, "dense"),
    (16, 512, 16_384, "breakpoints"),    # many inputs per channel for its K
    (64, 4096, 4096, "breakpoints"),
    (256, 512, 1024, "dense"),           # about even (relu_ext/ops/_algorithm.py): dense
    (16_384, 8, 16, "dense"),            # tables cost more than the dense pairs
    (4, 65_536, 100, "dense"),           # too few inputs to pay for sorting K
    (8, 64, 100_000, "dense"),           # too few units to beat the dense kernels
])
def test_auto_picks_by_channels_units_and_elements_per_channel(channels, units, per_channel,
                                                              expected):
    assert auto_choice(channels, units, per_channel) == expected
    assert auto_choice(channels, units, per_channel, inner=per_channel) == expected


def test_auto_with_one_channel_decides_as_for_shared_units():
    for n, units in itertools.product([20, 2_000, 10_000, 262_144], [8, 300, 1024, 65_536]):
        shared = choose_algorithm("auto", torch.empty(n), torch.empty(units))
        assert auto_choice(1, units, n) == shared, (n, units)


def test_splitting_the_inputs_into_channels_favours_dense():
    # The same N and K: each further table costs, each channel has fewer inputs.
    choices = [auto_choice(c, 2048, 262_144 // c) for c in (1, 8, 64, 512)]
    assert choices == ["breakpoints", "breakpoints", "breakpoints", "dense"]


def test_auto_runs_the_breakpoint_op_when_chosen():
    x, m, b, a = make_inputs((2, 4, 30_000), 1, 2048)
    assert choose_algorithm("auto", x, m) == "breakpoints"
    assert torch.equal(relu_ext.relu_sum(x, m, b, a), ops.relu_sum_breakpoints(x, m, b, a))
    # The public function decides on the (outer, C, inner) view of any x.
    xt = x.permute(0, 2, 1)  # (2, 30000, 4), channels last, dim=-1
    assert torch.equal(relu_ext.relu_sum(xt, m, b, a, dim=-1),
                       ops.relu_sum_breakpoints(x, m, b, a).permute(0, 2, 1))
    small = x[:, :, :10]
    assert torch.equal(relu_ext.relu_sum(small, m, b, a), ops.relu_sum(small, m, b, a))


def test_auto_sends_a_malformed_x_to_the_dense_op():
    m = torch.randn(4, 4096)
    assert not relu_ext._C.auto_uses_breakpoints(torch.empty(10**6), m)
    assert not relu_ext._C.auto_uses_breakpoints(torch.empty(2, 3, 10**6), m)
    with pytest.raises(ValueError, match=re.escape("relu_sum(): x.shape[1] must equal")):
        ops.relu_sum_auto(torch.randn(2, 3, 10**5), m, m, None)


def test_auto_on_another_device_is_dense():
    x, m = torch.empty(2, 4, 10**6, device="meta"), torch.empty(4, 4096, device="meta")
    assert choose_algorithm("auto", x, m) == "dense"


def test_vmap_of_auto_decides_on_the_whole_batch():
    # The batch folds into outer: auto sees all entries' inputs at once.
    x, m, b, a = make_inputs((64, 1, 2, 1000), 2, 2048)
    assert choose_algorithm("auto", x[0], m) == "dense"
    assert choose_algorithm("auto", x.flatten(0, 1), m) == "breakpoints"
    batched = torch.vmap(lambda t: ops.relu_sum_auto(t, m, b, a))(x)
    assert torch.equal(batched, ops.relu_sum_breakpoints(x.flatten(0, 1), m, b, a).view(x.shape))


def test_compile_auto_follows_the_sizes():
    torch._dynamo.reset()
    _, m, b, a = make_inputs((1, 4, 1), 1, 2048)
    compiled = torch.compile(relu_ext.relu_sum, fullgraph=True, dynamic=True)
    for inner in (10, 40_000):
        x = torch.randn(2, 4, inner)
        expected = {10: "dense", 40_000: "breakpoints"}[inner]
        assert choose_algorithm("auto", x, m) == expected
        assert torch.equal(compiled(x, m, b, a), relu_ext.relu_sum(x, m, b, a))
