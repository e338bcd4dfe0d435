"""The CUDA kernels of relu_sum_linear (csrc/cuda/relu_sum_linear_*), run on
the CPU through the emulator (tests/cuda/cuda_emu/) at the GPU build's launch
shapes (csrc/cuda/launch_shapes.h: 256 threads as 16 × 16, 64 × 64 output
tiles, contraction steps of 16, at most 512 backward blocks), every global
access bounds-checked. The shapes cross those boundaries:
  - y: N = 70, 130 (a partial second and third n tile), O = 17, 65 (a partial
    step of 16, a partial second o tile), I·K = 21, 65 (a partial step, a
    partial second tile of hinges);
  - dx, dm, db: K = 70 (two unit tiles of 64), O = 17 (two steps of
    outputs); slots: 3 n tiles on 3 slots, and with I = 300 inputs one slot
    an input, which loops over its 4 n tiles; 40 slots (more than the 32
    lanes of the reduction warp);
  - da: 2 × 5 tiles with 51 slots looping over 63 chunks; 41 slots;
  - K = 0, I = 0, N = 0, O = 0; NaN and ±Inf; every dtype, 16-bit x with
    float32 parameters; every output mask;
  - the documented summation orders, bit for bit (terms that are exact, over
    40 binades), and two runs bitwise equal.
Everything is compared with the float64 reference's values and autograd
(relu_ext.reference.relu_sum_linear)."""

import re

import numpy as np
import pytest
import torch

import relu_ext
from helpers import assert_close_scaled as assert_close, reduce_blocks_order
from cuda_emu import emulated_ops

pytestmark = pytest.mark.cuda_emu


def _launch_shapes():
    text = (emulated_ops.CSRC / "cuda" / "launch_shapes.h").read_text()
    return {name: int(value) for name, value in re.findall(r"\b(k[A-Z]\w*) = (\d+)", text)}


SHAPES = _launch_shapes()
SIDE, TILE, STEP, MAX_BLOCKS = (SHAPES[k] for k in ("kLinearSide", "kLinearTile", "kLinearStep",
                                                    "kMaxBlocks"))
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
GRADS = ("x", "m", "b", "a")


@pytest.fixture(scope="module")
def emu():
    return emulated_ops.load()


def make_inputs(n, i, k, o, dtype, param_dtype=None, with_bias=True, seed=0):
    param_dtype = param_dtype or dtype
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, to=param_dtype):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(to)

    x = randn(n, i, scale=2.0, to=dtype)
    m, b, a = randn(i, k), randn(i, k), randn(o, i, k, scale=0.5)
    bias = randn(o) if with_bias else None
    grad = randn(n, o, to=dtype)
    return x, m, b, a, bias, grad


def reference(x, m, b, a, bias, grad):
    """(y, dx, dm, db, da) of the reference, in float64 autograd."""
    leaves = [t.detach().double().requires_grad_() for t in (x, m, b, a)]
    y = relu_ext.reference.relu_sum_linear(*leaves, None if bias is None else bias.double())
    grads = torch.autograd.grad(y, leaves, grad.double(), allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, leaves)]
    return (y.detach(), *grads)


def check(emu, shape, dtype, param_dtype=None, with_bias=True, mask=(True,) * 4, seed=0):
    x, m, b, a, bias, grad = make_inputs(*shape, dtype, param_dtype, with_bias, seed)
    expected = reference(x, m, b, a, bias, grad)
    assert_close(emu.relu_sum_linear(x, m, b, a, bias), expected[0], dtype, "y")
    got = emu.relu_sum_linear_backward(grad, x, m, b, a, list(mask))
    for name, wanted, g, e, t in zip(GRADS, mask, got, expected[1:], (x, m, b, a)):
        if not wanted:
            assert g is None, f"d{name} was not asked for, but was computed"
            continue
        assert_close(g, e, t.dtype, f"d{name}")


# (N, I, K, O)
FORWARD_SHAPES = [(1, 1, 1, 1), (70, 3, 7, 65), (130, 5, 13, 17)]


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", FORWARD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_values_and_grads(emu, shape, dtype, with_bias):
    check(emu, shape, dtype, with_bias=with_bias)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_16bit_x_with_float32_parameters(emu, dtype):
    check(emu, (70, 3, 7, 65), dtype, param_dtype=torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_two_unit_tiles_and_output_steps(emu, dtype):
    check(emu, (75, 2, 2 * TILE - 58, STEP + 1), dtype, seed=1)


# 300 inputs: one slot each, which loops over its 4 n tiles (dx, dm, db); da:
# 5 hinge tiles.
def test_slots_loop_over_n_tiles(emu):
    check(emu, (4 * TILE - 10, 300, 1, 3), torch.float32, seed=2)


# I = 1: 40 slots (more than 32: every lane of the reduction warp holds one)
# for dm, db; da over 2 × 5 tiles takes 51 slots for 63 chunks (loops).
@pytest.mark.parametrize("shape", [(40 * TILE, 1, 5, 2), (63 * STEP - 3, 5, 60, 65)],
                         ids=["40_slots", "da_slots_loop"])
def test_many_slots(emu, shape):
    check(emu, shape, torch.float32, seed=3)


MASKS = [[bool(bits >> i & 1) for i in range(4)] for bits in range(16)]


@pytest.mark.parametrize("mask", MASKS, ids=lambda m: "".join(g for g, w in zip(GRADS, m) if w) or "none")
def test_output_mask(emu, mask):
    check(emu, (70, 3, 7, 17), torch.float32, mask=mask, seed=4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (5, 0, 4, 5), (5, 3, 0, 5), (5, 3, 4, 0),
                                   (0, 0, 0, 0)], ids=lambda s: "x".join(map(str, s)))
def test_empty(emu, shape, dtype):
    check(emu, shape, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_nan_and_inf_as_the_reference(emu, dtype):
    nan, inf = float("nan"), float("inf")
    x = torch.tensor([[nan, 1.0], [inf, -1.0], [-inf, 0.5], [0.0, 2.0], [1.0, -inf]], dtype=dtype)
    m = torch.tensor([[1.0, -2.0, 0.0], [0.5, inf, 1.0]], dtype=dtype)
    b = torch.tensor([[0.0, 1.0, -1.0], [1.0, 0.0, nan]], dtype=dtype)
    a = torch.tensor([[[1.0, 2.0, -3.0], [0.0, 1.0, 2.0]],
                      [[0.0, -1.0, 1.0], [2.0, 0.0, 1.0]]], dtype=dtype)
    bias = torch.tensor([0.5, inf], dtype=dtype)
    grad = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0], [0.5, 0.0]], dtype=dtype)
    expected = reference(x, m, b, a, bias, grad)
    assert_close(emu.relu_sum_linear(x, m, b, a, bias), expected[0], dtype, "y")
    got = emu.relu_sum_linear_backward(grad, x, m, b, a, [True] * 4)
    for name, g, e in zip(GRADS, got, expected[1:]):
        assert_close(g, e, dtype, f"d{name}")


def test_bitwise_deterministic(emu):
    x, m, b, a, bias, grad = make_inputs(40 * TILE, 1, 5, 2, torch.float32, seed=5)
    runs = [emu.relu_sum_linear_backward(grad, x, m, b, a, [True] * 4) for _ in range(2)]
    for g1, g2 in zip(*runs):
        assert torch.equal(g1, g2)
    assert torch.equal(emu.relu_sum_linear(x, m, b, a, bias), emu.relu_sum_linear(x, m, b, a, bias))


def test_strided_input(emu):
    x, m, b, a, bias, grad = make_inputs(70, 3, 7, 17, torch.float32, seed=6)
    xs, gs = x.t().contiguous().t(), grad.t().contiguous().t()  # column-major views
    assert not xs.is_contiguous()
    expected = reference(xs, m, b, a, bias, gs)
    assert_close(emu.relu_sum_linear(xs, m, b, a, bias), expected[0], torch.float32, "y")
    for name, g, e in zip(GRADS, emu.relu_sum_linear_backward(gs, xs, m, b, a, [True] * 4),
                          expected[1:]):
        assert_close(g, e, torch.float32, f"d{name}")


def test_bad_arguments_use_the_shared_checks(emu):
    x, m, b, a, bias, grad = make_inputs(4, 3, 2, 5, torch.float32)
    with pytest.raises(ValueError, match=r"a must be 3-D \(O, I, K\)"):
        emu.relu_sum_linear(x, m, b, a[:, :2], bias)
    with pytest.raises(TypeError):
        emu.relu_sum_linear(x, m.double(), b, a, bias)
    with pytest.raises(ValueError):
        emu.relu_sum_linear_backward(grad[:, :2], x, m, b, a, [True] * 4)


def test_breakpoints_say_they_are_not_implemented(emu):
    x, m, b, a, bias, grad = make_inputs(4, 3, 2, 5, torch.float32)
    with pytest.raises(NotImplementedError, match=r"no CUDA kernels yet"):
        emu.relu_sum_linear_breakpoints(x, m, b, a, bias)
    with pytest.raises(NotImplementedError, match=r"no CUDA kernels yet"):
        emu.relu_sum_linear_breakpoints_backward(grad, x, m, b, a, [True] * 4)


# ------------------------------------------------ the documented summation order
# Terms that are exact (products with 1, relu of a positive b) spread over 40
# binades, with both signs: each result is its terms' sum in the kernel's
# order, rounded after each addition, and any other order changes bits.


def wide_range(count, dtype, seed, signed=True):
    gen = torch.Generator().manual_seed(seed)
    mantissa = torch.rand(count, generator=gen, dtype=torch.float64) + 0.5
    exponent = torch.randint(-20, 20, (count,), generator=gen).double()
    sign = torch.randint(0, 2, (count,), generator=gen).double() * 2 - 1 if signed else 1.0
    return (sign * mantissa * 2.0 ** exponent).to(dtype)


def in_order(terms, start=None):
    """terms summed left to right from `start` (the first term if None)."""
    total = start
    for t in terms:
        total = t if total is None else total + t
    return total


def reduce_slots(rows, dtype):
    """reduce_blocks_kernel: lane l sums slots l, l + 32, ... from 0, then the
    shuffle tree 16, 8, 4, 2, 1; one slot is its row."""
    zero = dtype(0)
    if len(rows) == 1:
        return rows[0]
    return reduce_blocks_order(rows, zero)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_forward_sums_hinges_in_order_then_bias(emu, dtype):
    # x = 0, m = 0, b > 0, a = 1: y = (Σ_j b_j in j order from 0) + bias.
    i, k = 3, 29
    b = wide_range(i * k, dtype, 1, signed=False).view(i, k)
    bias = wide_range(2, dtype, 2)
    x = torch.zeros(3, i, dtype=dtype)
    y = emu.relu_sum_linear(x, torch.zeros(i, k, dtype=dtype), b, torch.ones(2, i, k, dtype=dtype),
                            bias)
    npt = b.numpy().dtype.type
    s = in_order(b.flatten().numpy(), npt(0))
    expected = torch.tensor([float(s + v) for v in bias.numpy()], dtype=dtype).expand(3, 2)
    assert torch.equal(y, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_dx_sums_units_in_the_documented_order(emu, dtype):
    # g = 1, a = 1, b = 1, x = 0, O = 1: t = 1 and dx = Σ_k m_k: per unit tile,
    # lane tx sums units tx + 16c (c order), a width-16 shuffle tree (8, 4, 2,
    # 1) sums the lanes, and the tiles add up in order from 0.
    k = 2 * TILE + 11
    m = wide_range(k, dtype, 3).view(1, k)
    x = torch.zeros(2, 1, dtype=dtype)
    dx = emu.relu_sum_linear_backward(torch.ones(2, 1, dtype=dtype), x, m,
                                      torch.ones(1, k, dtype=dtype),
                                      torch.ones(1, 1, k, dtype=dtype), [True, False, False, False])[0]
    mn, zero = m.flatten().numpy(), m.numpy().dtype.type(0)
    total = zero
    for k0 in range(0, k, TILE):
        lanes = [in_order([mn[j] for j in range(k0 + tx, min(k0 + TILE, k), SIDE)], zero)
                 for tx in range(SIDE)]
        offset = SIDE // 2
        while offset:
            lanes = [lanes[t] + (lanes[t + offset] if t + offset < SIDE else lanes[t])
                     for t in range(SIDE)]
            offset //= 2
        total = total + lanes[0]
    assert torch.equal(dx, torch.full_like(x, float(total)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_db_sums_in_the_documented_order(emu, dtype):
    # O = 1, a = 1, m = 0, b = 1: t = g, db = Σ_n g. Slot s (of min(tiles, 512))
    # takes n tiles s, s + S, ...; a tile's sum is Σ_ty (Σ_r g[n0 + ty + 16r])
    # (both in order, from 0); the slot's row is its tiles' sums in order,
    # the first stored, then reduce_blocks_kernel over slots.
    n = 40 * TILE + 21
    g = wide_range(n, dtype, 4).view(n, 1)
    x = torch.zeros(n, 1, dtype=dtype)
    _, _, db, _ = emu.relu_sum_linear_backward(g, x, torch.zeros(1, 1, dtype=dtype),
                                               torch.ones(1, 1, dtype=dtype),
                                               torch.ones(1, 1, 1, dtype=dtype),
                                               [False, False, True, False])
    gn, zero = g.flatten().numpy(), g.numpy().dtype.type(0)
    tiles = -(-n // TILE)
    slots = min(tiles, MAX_BLOCKS)

    def tile_sum(t):
        n0 = t * TILE
        return in_order([in_order([gn[n0 + ty + SIDE * r] for r in range(TILE // SIDE)
                                   if n0 + ty + SIDE * r < n], zero) for ty in range(SIDE)], zero)

    rows = [in_order([tile_sum(t) for t in range(s, tiles, slots)]) for s in range(slots)]
    assert torch.equal(db.flatten(), torch.tensor([float(reduce_slots(rows, type(zero)))], dtype=dtype))


@pytest.mark.parametrize("n", [41 * STEP - 5, MAX_BLOCKS * STEP + 3 * STEP - 1],
                         ids=["41_slots", "512_slots_loop"])
def test_da_sums_in_the_documented_order(emu, n):
    # m = 0, b = 1: h = 1 and da[o] = Σ_n g[n, o]. One tile: slot s (of
    # min(chunks, 512)) sums chunks s, s + S, ... of 16 rows, in row order,
    # in one running sum from 0; then reduce_blocks_kernel over the slots.
    dtype = torch.float32
    g = wide_range(n * 2, dtype, 5).view(n, 2)
    x = torch.zeros(n, 1, dtype=dtype)
    da = emu.relu_sum_linear_backward(g, x, torch.zeros(1, 1, dtype=dtype),
                                      torch.ones(1, 1, dtype=dtype),
                                      torch.ones(2, 1, 1, dtype=dtype),
                                      [False, False, False, True])[3]
    gn, zero = g.numpy(), np.float32(0)
    chunks = -(-n // STEP)
    slots = min(chunks, MAX_BLOCKS)
    for o in range(2):
        rows = [in_order([gn[r, o] for c in range(s, chunks, slots)
                          for r in range(c * STEP, min((c + 1) * STEP, n))], zero)
                for s in range(slots)]
        assert da[o, 0, 0].item() == float(reduce_slots(rows, np.float32)), o
