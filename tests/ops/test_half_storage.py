"""The CPU kernels read and write float16/bfloat16 tensors directly,
converting in registers (csrc/cpu/relu_sum_kernels.h, "float16 and
bfloat16"): on every instruction set, over every 16-bit value, the widening
must be exact and the narrowing must round as torch's .to() does (to nearest
even, overflow to inf, subnormals kept, NaN kept)."""

import pytest
import torch

import relu_ext

ISAS = relu_ext.build_info()["cpu_isas"]
HALF = [torch.float16, torch.bfloat16]


@pytest.fixture(params=ISAS)
def isa(request):
    previous = relu_ext._C.set_cpu_isa(request.param)
    yield request.param
    relu_ext._C.set_cpu_isa(previous)


def every_value(dtype):
    """All 2^16 bit patterns of dtype, plus 13 more so that a tail shorter
    than a vector is converted too."""
    bits = torch.arange(-(2 ** 15), 2 ** 15, dtype=torch.int16)
    bits = torch.cat([bits, bits[1000:1013]])
    return bits.view(dtype)


def assert_same_values(got, want):
    assert got.dtype == want.dtype
    nan = want.isnan()
    assert torch.equal(got.isnan(), nan)
    # Equal elsewhere (0 == -0: the kernels add the terms to a +0).
    assert torch.equal(got[~nan], want[~nan])


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("scale", [1.0, 1 / 3, 1.5, 2.0 ** -10, 2.0 ** 12], ids=str)
def test_forward_rounds_like_torch(isa, dtype, scale):
    # K = 1, b = 0, a = None: y = relu(m·x) in float32 (one rounding, FMA or
    # not), then narrowed: the float32 reference, then torch's .to(dtype).
    x = every_value(dtype)
    m, b = torch.tensor([scale]), torch.zeros(1)
    want = torch.relu(x.float() * m).to(dtype)
    assert_same_values(torch.ops.relu_ext.relu_sum(x, m, b, None), want)
    # The same units in x's dtype (widened once, O(K)) give the same.
    if torch.tensor(scale).to(dtype).item() == scale:
        assert_same_values(torch.ops.relu_ext.relu_sum(x, m.to(dtype), b.to(dtype), None), want)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_backward_dx_rounds_like_torch(isa, dtype):
    x = every_value(dtype)
    g = every_value(dtype).flip(0)
    m, b = torch.tensor([1 / 3]), torch.zeros(1)
    dx, dm, db, _ = torch.ops.relu_ext.relu_sum_backward(g, x, m, b, None, [True, True, True, False])
    # dx = g·m where m·x > 0 (relu'(0) = 0; NaN pre-activations pass, as torch's).
    pre = x.float() * m
    want = torch.where(pre <= 0, 0.0, g.float() * m).to(dtype)
    assert_same_values(dx, want)
    assert dm.dtype == db.dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("n", [1, 31, 2048, 2048 * 3 + 5])
def test_float32_and_16_bit_x_give_the_same_sums(isa, dtype, n):
    # A 16-bit x is computed as its float32 widening would be, in the same
    # order: the units' gradients are bitwise those of x.float(), and y and
    # dx are theirs rounded once.
    gen = torch.Generator().manual_seed(n)
    x = (torch.randn(n, generator=gen) * 2).to(dtype)
    g = torch.randn(n, generator=gen).to(dtype)
    m, b, a = (torch.randn(37, generator=gen) for _ in range(3))
    ops = torch.ops.relu_ext
    half = ops.relu_sum_backward(g, x, m, b, a, [True] * 4)
    full = ops.relu_sum_backward(g.float(), x.float(), m, b, a, [True] * 4)
    assert torch.equal(half[0], full[0].to(dtype))
    for got, want in zip(half[1:], full[1:]):
        assert torch.equal(got, want)
    assert torch.equal(ops.relu_sum(x, m, b, a), ops.relu_sum(x.float(), m, b, a).to(dtype))
    assert torch.equal(ops.step_sum(x, m, b, a), ops.step_sum(x.float(), m, b, a).to(dtype))


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_breakpoints_read_16_bit_x_like_its_float32_widening(isa, dtype):
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(5000, generator=gen) * 2).to(dtype)
    g = torch.randn(5000, generator=gen).to(dtype)
    m, b, a = (torch.randn(300, generator=gen) for _ in range(3))
    ops = torch.ops.relu_ext
    assert torch.equal(ops.relu_sum_breakpoints(x, m, b, a),
                       ops.relu_sum_breakpoints(x.float(), m, b, a).to(dtype))
    half = ops.relu_sum_breakpoints_backward(g, x, m, b, a, [True] * 4)
    full = ops.relu_sum_breakpoints_backward(g.float(), x.float(), m, b, a, [True] * 4)
    assert torch.equal(half[0], full[0].to(dtype))
    for got, want in zip(half[1:], full[1:]):
        assert torch.equal(got, want)
