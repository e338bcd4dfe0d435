"""The CUDA kernels, run on the CPU through the emulator (tests/cuda/cuda_emu/).

torch.ops.relu_ext_emu holds csrc/cuda/relu_sum_cuda.cu compiled by the host
compiler, with the GPU build's own launch shapes (csrc/cuda/launch_shapes.h:
256 threads × 8 inputs per block, 256 units per tile, 1,024-input chunks, at
most 512 backward blocks, 8 reduction warps). The shapes below are chosen
against them, so that every boundary the GPU meets is met here:
  - per-input kernels: N = 1 and 257 (a partial first block, threads with 2,
    1 or 0 inputs), one exact block, a partial last block; K = 1, 19, one
    exact tile, two tiles and a tail;
  - dm, db, da: 5 blocks, and 41 blocks (more than 32: every lane of the
    reduction warp holds a partial sum, the first 9 lanes two), and in the
    grid-limit tests 514 chunks on the 512 blocks (two blocks take a second
    chunk through the grid-stride loop, the last one partial);
  - the order tests check the documented summation order bit for bit;
  - per-channel (C, K) units, x (outer, C, inner): with runs of 32 or more
    every block works on one channel (csrc/cuda/channel_layout.h), so the
    shapes vary how a channel's inputs lie in x (runs longer and shorter than
    a block's step) and how many blocks and backward slots a channel gets;
    shorter runs (channels innermost) go by columns, and their shapes cross
    the 32-column tiles, the warps' rows and the tiles of units.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import relu_ext
from helpers import (assert_close_scaled as assert_close, make_channel_inputs, reduce_blocks_order,
                     reference_step_sum)
from cuda_emu import emulated_ops

pytestmark = pytest.mark.cuda_emu


def _launch_shapes():
    """The constants of csrc/cuda/launch_shapes.h, as the tests' shapes need
    them at collection time (test_launch_shapes_are_the_gpu_builds checks the
    emulated build agrees)."""
    text = (emulated_ops.CSRC / "cuda" / "launch_shapes.h").read_text()
    return {name: int(value) for name, value in re.findall(r"\b(k[A-Z]\w*) = (\d+)", text)}


SHAPES = _launch_shapes()
THREADS, ITEMS, TILE, CHUNK, MAX_BLOCKS = (
    SHAPES[k] for k in ("kThreads", "kItems", "kTileK", "kChunk", "kMaxBlocks"))
BLOCK = THREADS * ITEMS  # inputs per per-input block

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# The rounding of one result in the output dtype, with headroom for the
# float32 (float64) accumulation; relative to the larger of |expected| and 1.
SIZES = [0, 1, THREADS + 1, BLOCK, 2 * BLOCK + THREADS + 44]
UNITS = [0, 1, 19, TILE, 2 * TILE + 44]
# Backward: N = 1 and N with 5 chunks (one block each) against every K; 41
# blocks (> 32: every reduction lane holds data) with a K of three reduction
# blocks (the reduction of K = 300 costs seconds, and its columns are
# independent, so many of them add no case).
BACKWARD_CASES = [(n, k) for n in (1, 4 * CHUNK + 300) for k in (0, 1, 19, TILE + 44)] + [
    (40 * CHUNK + 300, 0), (40 * CHUNK + 300, 7)]
# 514 chunks on 512 blocks: the grid at its limit, blocks 0 and 1 loop.
GRID_LIMIT_SIZE = MAX_BLOCKS * CHUNK + CHUNK + 476
GRADS = ("x", "m", "b", "a")


@pytest.fixture(scope="module")
def emu():
    return emulated_ops.load()


def make_inputs(n, k, dtype, with_a, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)

    x, grad = randn(n, scale=2.0), randn(n)
    m, b = randn(k), randn(k)
    a = randn(k) if with_a else None
    return x, m, b, a, grad


def reference_grads(x, m, b, a, grad):
    """(y, dx, dm, db, da) of relu_ext.reference in float64 autograd; for
    (C, K) units, x is (outer, C, inner) as the ops take it."""
    leaves = [t.detach().double().requires_grad_() if t is not None else None for t in (x, m, b, a)]
    y = relu_ext.reference.relu_sum(*leaves, dim=1)
    wanted = [t for t in leaves if t is not None]
    grads = torch.autograd.grad(y, wanted, grad.double(), allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, wanted)]
    if a is None:
        grads.append(None)
    return (y.detach(), *grads)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_a", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("k", UNITS)
@pytest.mark.parametrize("n", SIZES)
def test_forward(emu, n, k, dtype, with_a):
    x, m, b, a, _ = make_inputs(n, k, dtype, with_a)
    y = emu.relu_sum(x, m, b, a)
    expected = relu_ext.reference.relu_sum(x.double(), m.double(), b.double(),
                                           None if a is None else a.double())
    assert_close(y, expected, dtype, "y vs reference")
    assert_close(y, torch.ops.relu_ext.relu_sum(x, m, b, a).double(), dtype, "y vs CPU op")


def check_backward(emu, n, k, dtype, with_a, mask):
    x, m, b, a, grad = make_inputs(n, k, dtype, with_a, seed=1)
    got = emu.relu_sum_backward(grad, x, m, b, a, mask)
    cpu = torch.ops.relu_ext.relu_sum_backward(grad, x, m, b, a, mask)
    expected = reference_grads(x, m, b, a, grad)[1:]
    for name, wanted, g, c, e in zip(GRADS, mask, got, cpu, expected):
        if not wanted or e is None:  # not asked for, or da without a
            assert g is None, f"d{name} was not asked for, but was computed"
            continue
        assert_close(g, e, dtype, f"d{name} vs reference")
        assert_close(g, c.double(), dtype, f"d{name} vs CPU op")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_a", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("n,k", BACKWARD_CASES)
def test_backward_shapes(emu, n, k, dtype, with_a):
    check_backward(emu, n, k, dtype, with_a, [True, True, True, True])


MASKS = [[bool(bits >> i & 1) for i in range(4)] for bits in range(16)]


@pytest.mark.parametrize("mask", MASKS, ids=lambda m: "".join(g for g, w in zip(GRADS, m) if w) or "none")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_a", [True, False], ids=["a", "no_a"])
def test_backward_output_mask(emu, mask, dtype, with_a):
    check_backward(emu, 4 * CHUNK + 300, 19, dtype, with_a, mask)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", UNITS)
@pytest.mark.parametrize("n", SIZES)
def test_step_sum(emu, n, k, dtype):
    x, m, b, w, _ = make_inputs(n, k, dtype, True, seed=4)
    y = emu.step_sum(x, m, b, w)
    assert_close(y, reference_step_sum(x, m, b, w), dtype, "step_sum vs reference")
    assert_close(y, torch.ops.relu_ext.step_sum(x, m, b, w).double(), dtype, "step_sum vs CPU op")


@pytest.mark.emu_large
@pytest.mark.parametrize("dtype,with_a", [(torch.float32, True), (torch.float64, False),
                                          (torch.bfloat16, True)], ids=str)
def test_backward_at_the_grid_limit(emu, dtype, with_a):
    check_backward(emu, GRID_LIMIT_SIZE, 7, dtype, with_a, [True, True, True, True])


def test_bitwise_deterministic(emu):
    x, m, b, a, grad = make_inputs(40 * CHUNK + 300, 7, torch.float32, True, seed=2)
    first = emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)
    second = emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)
    for g1, g2 in zip(first, second):
        assert torch.equal(g1, g2)


# ------------------------------------------------ the documented summation order
# Inputs for which every term is exact (products with 1, relu of a positive b),
# so the kernels' results are the sums of the terms in their order, rounded
# after each addition; terms spanning 40 binades make any other order (or a
# lost term) show in the bits.


def wide_range(count, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    mantissa = torch.rand(count, generator=gen, dtype=torch.float64) + 0.5
    exponent = torch.randint(-20, 20, (count,), generator=gen).double()
    return (mantissa * 2.0 ** exponent).to(dtype)


def in_order(terms):
    """terms summed left to right, rounding each partial sum."""
    return np.cumsum(terms)[-1] if len(terms) else terms.dtype.type(0)


def kernel_order_sum(terms):
    """Σ terms as param_grad_kernel and reduce_blocks_kernel take it: block b
    sums chunks b, b + blocks, ... each in input order (a chunk from zero, then
    added to the block's row); warp lane l sums blocks l, l + 32, ... in order;
    then a shuffle tree with offsets 16, 8, 4, 2, 1 (a lane whose partner is
    past the warp adds its own value, as __shfl_down_sync returns it)."""
    n = len(terms)
    blocks = min(-(-n // CHUNK), MAX_BLOCKS)
    zero = terms.dtype.type(0)
    rows = []
    for blk in range(blocks):
        chunk_sums = [in_order(terms[c * CHUNK:(c + 1) * CHUNK])
                      for c in range(blk, -(-n // CHUNK), blocks)]
        rows.append(in_order(np.array(chunk_sums, dtype=terms.dtype)))
    return reduce_blocks_order(rows, zero)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_forward_and_dx_sum_units_in_unit_order(emu, dtype):
    # x = 0, a = 1: y = Σ_k b_k (b > 0) and, with g = 1 and b = 1, dx = Σ_k m_k.
    k = 2 * TILE + 44
    x = torch.zeros(3, dtype=dtype)
    m, b = wide_range(k, dtype, seed=5), wide_range(k, dtype, seed=6)
    a = torch.ones(k, dtype=dtype)
    y = emu.relu_sum(x, m, b, a)
    assert torch.equal(y, torch.full_like(x, float(in_order(b.numpy()))))
    dx = emu.relu_sum_backward(torch.ones_like(x), x, m, torch.ones_like(b), a,
                               [True, False, False, False])[0]
    assert torch.equal(dx, torch.full_like(x, float(in_order(m.numpy()))))


def check_parameter_sum_order(emu, n, dtype):
    # a = 1; unit 0 has m = 0, b = 1: db_0 = da_0 = Σ_i g_i; unit k > 0 has
    # m = 1, b = -c_k: db_k = Σ_{x_i > c_k} g_i (the others add exact zeros).
    # Every term is exact, so each db_k is its terms' sum in the kernels'
    # order. g has both signs and each chunk its own power-of-two scale, so
    # the blocks' partial sums differ in size and cancel: any other order of
    # inputs, chunks or blocks changes bits, and eight units make eight tries.
    gen = torch.Generator().manual_seed(8)
    chunk_scale = 2.0 ** torch.randint(-8, 8, (-(-n // CHUNK),), generator=gen).double()
    g = ((torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1)
         * chunk_scale.repeat_interleave(CHUNK)[:n]).to(dtype)
    x = torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)
    thresholds = torch.linspace(-1.5, 1.5, 7, dtype=torch.float64).to(dtype)
    m = torch.cat([torch.zeros(1, dtype=dtype), torch.ones(7, dtype=dtype)])
    b = torch.cat([torch.ones(1, dtype=dtype), -thresholds])
    _, _, db, da = emu.relu_sum_backward(g, x, m, b, torch.ones(8, dtype=dtype),
                                         [False, False, True, True])
    gn, xn = g.numpy(), x.numpy()
    masks = [np.ones(n, dtype=bool)] + [xn > c for c in thresholds.numpy()]
    expected = torch.tensor([float(kernel_order_sum(np.where(mask, gn, gn.dtype.type(0))))
                             for mask in masks], dtype=dtype)
    assert torch.equal(db, expected), (db, expected)
    assert torch.equal(da[0], expected[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("n", [CHUNK + 1, 40 * CHUNK + 300])
def test_parameter_grads_sum_in_the_documented_order(emu, n, dtype):
    check_parameter_sum_order(emu, n, dtype)


@pytest.mark.emu_large
def test_parameter_grads_sum_in_the_documented_order_at_the_grid_limit(emu):
    check_parameter_sum_order(emu, GRID_LIMIT_SIZE, torch.float32)


def test_launch_shapes_are_the_gpu_builds(emu):
    # The emulated build's constants, read from the compiled code, are the
    # header's (the one definition both builds include).
    assert emu.launch_shapes() == [SHAPES[k] for k in (
        "kThreads", "kItems", "kTileK", "kChunk", "kMaxBlocks", "kReduceWarps")]
    assert (THREADS, ITEMS, TILE, CHUNK, MAX_BLOCKS) == (256, 8, 256, 1024, 512)


def test_strided_input(emu):
    x, m, b, a, grad = make_inputs(2 * 2100, 19, torch.float32, True, seed=3)
    xs, gs = x.view(2100, 2).t(), grad.view(2100, 2).t()  # not contiguous
    assert_close(emu.relu_sum(xs, m, b, a), relu_ext.reference.relu_sum(
        xs.double(), m.double(), b.double(), a.double()), torch.float32, "y")
    got = emu.relu_sum_backward(gs, xs, m, b, a, [True] * 4)
    for name, g, e in zip(GRADS, got, reference_grads(xs, m, b, a, gs)[1:]):
        assert_close(g, e, torch.float32, f"d{name}")


def test_nan_and_inf_propagate_as_in_reference(emu):
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, 1.0])
    m, b, a = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 1.0, -1.0]), torch.tensor([1.0, 2.0, -3.0])
    grad = torch.ones(5)
    expected = reference_grads(x, m, b, a, grad)
    assert_close(emu.relu_sum(x, m, b, a), expected[0], torch.float32, "y")
    got = emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)
    for name, g, e in zip(GRADS, got, expected[1:]):
        assert_close(g, e, torch.float32, f"d{name}")


def test_bad_arguments_use_the_shared_checks(emu):
    x = torch.randn(4)
    with pytest.raises(ValueError, match=r"b must have the shape of m"):
        emu.relu_sum(x, torch.randn(3), torch.randn(2), None)
    with pytest.raises(TypeError, match=r"m must have the dtype of x"):
        emu.relu_sum(x, torch.randn(3, dtype=torch.float64), torch.randn(3), None)


# ---------------------------------------------------------------- the emulator


@pytest.fixture
def short_timeout(emu):
    previous = emu.set_barrier_timeout(0.3)
    yield
    emu.set_barrier_timeout(previous)


def test_barrier_timeout_names_the_line(emu, short_timeout):
    source = (Path(emulated_ops.HERE) / "emulator_selftest.cpp").read_text().splitlines()
    line = next(i for i, s in enumerate(source, 1) if "SELFTEST_BARRIER_TIMEOUT_LINE" in s)
    pattern = rf"__syncthreads\(\) at emulator_selftest\.cpp:{line} timed out after 0\.3 s"
    with pytest.raises(RuntimeError, match=pattern):
        emu.selftest_barrier_timeout(1.5)


def test_divergent_barriers_fail(emu):
    with pytest.raises(RuntimeError, match=r"in the same phase: the block's threads diverged"):
        emu.selftest_barrier_divergent()


def test_returned_thread_counts_as_arrived(emu):
    out = emu.selftest_barrier_returned_thread()
    assert out[0] == 0  # thread 0 returned before writing
    assert torch.equal(out[1:], torch.full((63,), sum(range(1, 64))))


def expected_shuffle(threads, op, arg, width, mask):
    """What CUDA's __shfl_*_sync return (Programming Guide, warp shuffle
    functions) when lane l of warp w holds 100·w + l; -1 for lanes not in mask."""
    out = []
    for t in range(threads):
        lane, base = t % 32, 100 * (t // 32)
        if not mask >> lane & 1:
            out.append(-1)
            continue
        seg = lane // width * width
        if op == "idx":
            src = seg + arg % width
        elif op == "up":
            src = lane - arg if lane - seg >= arg else lane
        elif op == "down":
            src = lane + arg if lane - seg + arg < width else lane
        else:
            src = lane ^ arg
            src = src if src < min(seg + width, 32) else lane
        out.append(base + src)
    return out


SHUFFLES = [(op, arg, width) for width in (32, 16, 4) for op, arg in
            [("idx", 3), ("idx", 37), ("up", 1), ("up", 5), ("down", 1), ("down", 16),
             ("xor", 1), ("xor", 16), ("xor", 6)]]


@pytest.mark.parametrize("op,arg,width", SHUFFLES, ids=lambda v: str(v))
def test_shuffle_semantics(emu, op, arg, width):
    got = emu.selftest_shuffle(64, op, arg, width, 0xFFFFFFFF).tolist()
    assert got == expected_shuffle(64, op, arg, width, 0xFFFFFFFF)


def test_shuffle_examples():
    # Hand-checked against the Programming Guide, independent of expected_shuffle's code.
    down = expected_shuffle(32, "down", 1, 8, 0xFFFFFFFF)
    assert down[6] == 7 and down[7] == 7 and down[8] == 9
    xor = expected_shuffle(32, "xor", 16, 16, 0xFFFFFFFF)
    assert xor[0] == 0 and xor[16] == 0  # later segment: own value; earlier: readable


def test_shuffle_with_partial_mask(emu):
    half = 0x0000FFFF
    got = emu.selftest_shuffle(32, "down", 1, 16, half).tolist()
    assert got == expected_shuffle(32, "down", 1, 16, half)
    with pytest.raises(RuntimeError, match=r"lane 15 reads lane 16, which is not in the mask 0x0000ffff"):
        emu.selftest_shuffle(32, "down", 1, 32, half)


@pytest.mark.parametrize("index", [10, 11, 50, -1])
def test_out_of_bounds_access_names_kernel_index_and_extent(emu, index):
    x = torch.arange(10, dtype=torch.float32)
    assert emu.selftest_read_element(x, 9).item() == 9.0
    pattern = (rf"emulated CUDA kernel .*read_element failed in block \(0, 0, 0\): "
               rf"out-of-bounds access in .*read_element: argument 0\[{index}\], but its "
               rf"allocation holds indices \[0, 10\) \(extent 10 elements of 4 bytes\)")
    with pytest.raises(RuntimeError, match=pattern):
        emu.selftest_read_element(x, index)


def test_access_outside_every_allocation_is_reported(emu):
    # A view into the middle of its storage: its extent is the storage's,
    # so index -3 is inside and -6 is not.
    x = torch.arange(10, dtype=torch.float32)[5:]
    assert emu.selftest_read_element(x, -3).item() == 2.0
    with pytest.raises(RuntimeError, match=r"argument 0\[-6\], but its allocation holds "
                                           r"indices \[-5, 5\)"):
        emu.selftest_read_element(x, -6)


def test_atomics_are_atomic(emu):
    total, count = emu.selftest_atomic_add(64, 200).tolist()
    assert total == count == 2 * 64 * 200


def test_the_emulated_ops_are_the_cuda_sources():
    # The emulator build includes the real launcher, not a copy of it.
    wrapper = (Path(emulated_ops.HERE) / "relu_sum_cuda_emulated.cpp").read_text()
    assert re.search(r'#include "\.\./\.\./\.\./csrc/cuda/relu_sum_cuda\.cu"', wrapper)


# ------------------------------------------------ per-channel (C, K) units
# x is (outer, C, inner) and every block works on one channel, walking its
# positions o·inner + i (csrc/cuda/channel_layout.h); the shapes are chosen
# against that walk and the launch shapes.
PER_CHANNEL_SHAPES = [
    (3, 1, 700),     # one channel: the shared path (x contiguous), two blocks
    (300, 5, 1),     # channels innermost: by columns (short runs, see below)
    (2, 3, THREADS + 1),  # NCHW-like: a step stays in its run or wraps by one
    (3, 4, 100),     # runs shorter than a step (two runs and 56 inputs)
    (1, 2, BLOCK + 52),   # two blocks per channel, the second partial
    (0, 3, 4), (2, 3, 0), (2, 0, 3),  # no inputs (and no channels)
]
PER_CHANNEL_UNITS = [0, 7, TILE + 44]  # none, one partial tile, two tiles and a tail
# (x dtype, units' dtype, output weights): every dtype, and 16-bit x with
# float32 units (mixed precision).
PER_CHANNEL_DTYPES = [
    (torch.float32, torch.float32, True), (torch.float32, torch.float32, False),
    (torch.float64, torch.float64, True), (torch.float16, torch.float16, True),
    (torch.bfloat16, torch.bfloat16, False), (torch.float16, torch.float32, True),
    (torch.bfloat16, torch.float32, True),
]


def per_channel_inputs(shape, k, dtype, param_dtype, with_a, seed=0):
    x, m, b, a = make_channel_inputs(shape, 1, k, dtype=dtype, param_dtype=param_dtype,
                                     out_weights=with_a, seed=seed)
    grad = make_channel_inputs(shape, 1, 0, dtype=dtype, seed=seed + 1)[0]
    return x, m, b, a, grad


def check_per_channel(emu, shape, k, dtype, param_dtype, with_a, mask=(True,) * 4):
    """relu_sum, its gradients (those in mask) and step_sum on the emulated
    kernels against the float64 reference, and against the CPU op."""
    x, m, b, a, grad = per_channel_inputs(shape, k, dtype, param_dtype, with_a)
    y_ref, *grads_ref = reference_grads(x, m, b, a, grad)
    y = emu.relu_sum(x, m, b, a)
    assert_close(y, y_ref, dtype, "y vs reference")
    assert_close(y, torch.ops.relu_ext.relu_sum(x, m, b, a).double(), dtype, "y vs CPU op")

    got = emu.relu_sum_backward(grad, x, m, b, a, list(mask))
    cpu = torch.ops.relu_ext.relu_sum_backward(grad, x, m, b, a, list(mask))
    for name, wanted, g, c, e, param in zip(GRADS, mask, got, cpu, grads_ref, (x, m, b, a)):
        if not wanted or e is None:  # not asked for, or da without a
            assert g is None, f"d{name} was not asked for, but was computed"
            continue
        assert g.shape == param.shape, f"d{name}: shape {g.shape}, expected {param.shape}"
        assert_close(g, e, param.dtype, f"d{name} vs reference")
        assert_close(g, c.double(), param.dtype, f"d{name} vs CPU op")

    w = m.flip(-1)  # step_sum's weights: any (C, K) values
    # Channels last, where (C, K) units broadcast.
    expected = reference_step_sum(x.movedim(1, -1), m, b, w).movedim(-1, 1)
    step = emu.step_sum(x, m, b, w)
    assert_close(step, expected, dtype, "step_sum vs reference")
    assert_close(step, torch.ops.relu_ext.step_sum(x, m, b, w).double(), dtype, "step_sum vs CPU op")


@pytest.mark.parametrize("dtype,param_dtype,with_a", PER_CHANNEL_DTYPES,
                         ids=lambda v: str(v).removeprefix("torch.") if not isinstance(v, bool)
                         else ("a" if v else "no_a"))
@pytest.mark.parametrize("k", PER_CHANNEL_UNITS)
@pytest.mark.parametrize("shape", PER_CHANNEL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_per_channel(emu, shape, k, dtype, param_dtype, with_a):
    check_per_channel(emu, shape, k, dtype, param_dtype, with_a)


@pytest.mark.parametrize("mask", MASKS[1:], ids=lambda m: "".join(g for g, w in zip(GRADS, m) if w))
def test_per_channel_output_mask(emu, mask):
    # Three chunks a channel: three block slots, summed by the reduction.
    check_per_channel(emu, (2, 3, 1500), 7, torch.float32, torch.float32, True, mask)


def test_per_channel_units_beyond_shared_memory(emu):
    # C·K = 12,480 units: m alone is 49,920 bytes in float32, more than a
    # block's 48 KiB of static shared memory. Channels innermost: 17 column
    # tiles of one backward slot each; each lane stages its own channel's 24
    # units.
    check_per_channel(emu, (2, 520, 1), 24, torch.float32, torch.float32, True)


@pytest.mark.emu_large
def test_per_channel_backward_slots_loop_over_chunks(emu):
    # 257 channels have one slot each (kMaxBlocks // 257 = 1) and two chunks
    # each, the second of a single input: every slot loops once.
    check_per_channel(emu, (1, MAX_BLOCKS // 2 + 1, CHUNK + 1), 3, torch.float32,
                      torch.float32, True)


def test_per_channel_bitwise_deterministic(emu):
    x, m, b, a, grad = per_channel_inputs((4, 3, 2100), 7, torch.float32, torch.float32, True)
    first = [emu.relu_sum(x, m, b, a), *emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)]
    second = [emu.relu_sum(x, m, b, a), *emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)]
    for g1, g2 in zip(first, second):
        assert torch.equal(g1, g2)


def test_one_channel_is_the_shared_kernel_bit_for_bit(emu):
    # (C, K) units with C = 1 take the shared units' path: same bits.
    x, m, b, a, grad = per_channel_inputs((3, 1, 1400), 19, torch.float32, torch.float32, True)
    shared = (x.flatten(), m[0], b[0], a[0])
    assert torch.equal(emu.relu_sum(x, m, b, a).flatten(), emu.relu_sum(*shared))
    got = emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)
    want = emu.relu_sum_backward(grad.flatten(), *shared, [True] * 4)
    for g, w in zip(got, want):
        assert torch.equal(g.flatten(), w.flatten())


def test_per_channel_parameter_grads_sum_each_channel_in_the_documented_order(emu):
    # check_parameter_sum_order's terms for each channel, with a channel's
    # inputs spread over x in runs of 300: its three chunks and their slots
    # sum as the shared units' would (kernel_order_sum), channel by channel.
    # A wrong channel's inputs or units change values; another order, bits.
    channels, inner, outer = 3, 300, 11
    gen = torch.Generator().manual_seed(9)
    g = ((torch.rand(outer, channels, inner, generator=gen, dtype=torch.float64) * 2 - 1)
         * 2.0 ** torch.randint(-8, 8, (outer, channels, 1), generator=gen)).float()
    x = torch.randn(outer, channels, inner, generator=gen, dtype=torch.float64).float()
    check_per_channel_sum_order(emu, g, x, lambda terms: kernel_order_sum(terms.flatten()))


def check_per_channel_sum_order(emu, g, x, order_sum):
    """db and da of (outer, C, inner) x, channel by channel, bit for bit
    order_sum(terms) of that channel's (outer, inner) terms: per-channel step
    units (one constant, seven thresholds shifted by channel), so that each
    sum is one of g's over a mask of x."""
    channels = x.shape[1]
    thresholds = torch.linspace(-1.5, 1.5, 7, dtype=torch.float64).float()
    m = torch.cat([torch.zeros(1), torch.ones(7)]).repeat(channels, 1)
    b = torch.cat([torch.ones(1), -thresholds]).repeat(channels, 1)
    b[:, 1:] += torch.arange(channels)[:, None] * 0.25  # each channel its own units
    _, _, db, da = emu.relu_sum_backward(g, x, m, b, torch.ones_like(m), [False, False, True, True])
    for c in range(channels):
        gn, xn = g[:, c].numpy(), x[:, c].numpy()
        masks = [np.ones_like(xn, dtype=bool)] + [xn > -v for v in b[c, 1:].numpy()]
        expected = torch.tensor([float(order_sum(np.where(mask, gn, np.float32(0))))
                                 for mask in masks])
        assert torch.equal(db[c], expected), (c, db[c], expected)
        assert torch.equal(da[c, 0], expected[0])


# ------------------------------------------------ per-channel units by columns
# Short runs (inner < 32, C > 1) take the column walk (channel_layout.h): x is
# outer rows of C·inner inputs, a block takes a tile of 32 columns (or, for
# rows narrower than 32, a warp takes 32 // width whole rows) and its warps
# take rows; each lane has its own column's channel. The shapes cross the
# tile's and the warp's edges; K crosses the column tiles of units.
COLUMN_TILE_K = SHAPES["kColumnTileK"]
COLUMN_SHAPES = [
    (300, 5, 1),    # channels innermost, C < 32: a warp takes 6 rows of 5 (30 lanes)
    (70, 33, 1),    # two tiles, the second one column wide; two row slices
    (131, 70, 1),   # tiles of 32, 32 and 6 channels; 3 row slices, 5 chunks of rows
    (25, 70, 1),    # the same tiles, one slice and one chunk (one slot: no reduction)
    (9, 3, 7),      # inner > 1: 21 columns, one row a warp, 11 lanes idle
    (40, 12, 5),    # tiles cut through channels (32 = 6·5 + 2)
    (5, 2, 31),     # the longest short run
    (1, 40, 1),     # one row
]
# None, one partial tile, two tiles and a tail (K > the staged chunk).
COLUMN_UNITS = [0, 7, 2 * COLUMN_TILE_K + 11]
# The reduction of 3·70·75 columns costs the emulator 15 s and adds no case
# to (25, 70, 1) with 75 units and (131, 70, 1) with 7.
COLUMN_CASES = [(shape, k) for shape in COLUMN_SHAPES for k in COLUMN_UNITS
                if (shape, k) != ((131, 70, 1), COLUMN_UNITS[-1])]


def by_runs(t, shape):
    """(outer, C, inner) x (or y, grad) as (1, C, outer·inner): the same
    channels' inputs, in one run each, which the launcher walks by channel
    when the run is at least 32 long."""
    outer, channels, inner = shape
    return t.permute(1, 0, 2).reshape(1, channels, outer * inner)


def from_runs(t, shape):
    outer, channels, inner = shape
    return t.reshape(channels, outer, inner).permute(1, 0, 2)


def check_columns_match_runs(emu, shape, x, m, b, a, grad):
    """y, dx and step_sum by columns are bit for bit those of the walk by
    channel: every input sums its channel's units in unit order with the same
    arithmetic, whichever way the threads are laid over x."""
    outer, channels, inner = shape
    if outer * inner < 32 or x.numel() == 0:
        return  # the transposed x would take the column walk too
    y = emu.relu_sum(x, m, b, a)
    assert torch.equal(y, from_runs(emu.relu_sum(by_runs(x, shape), m, b, a), shape))
    dx = emu.relu_sum_backward(grad, x, m, b, a, [True, False, False, False])[0]
    dx_runs = emu.relu_sum_backward(by_runs(grad, shape), by_runs(x, shape), m, b, a,
                                    [True, False, False, False])[0]
    assert torch.equal(dx, from_runs(dx_runs, shape))
    w = m.flip(-1)
    assert torch.equal(emu.step_sum(x, m, b, w),
                       from_runs(emu.step_sum(by_runs(x, shape), m, b, w), shape))


@pytest.mark.parametrize("shape,k", COLUMN_CASES,
                         ids=["x".join(map(str, s)) + f"-{k}" for s, k in COLUMN_CASES])
def test_per_channel_columns(emu, shape, k):
    check_per_channel(emu, shape, k, torch.float32, torch.float32, True)
    check_columns_match_runs(emu, shape, *per_channel_inputs(shape, k, torch.float32,
                                                            torch.float32, True))


@pytest.mark.parametrize("dtype,param_dtype,with_a", PER_CHANNEL_DTYPES,
                         ids=lambda v: str(v).removeprefix("torch.") if not isinstance(v, bool)
                         else ("a" if v else "no_a"))
def test_per_channel_columns_dtypes(emu, dtype, param_dtype, with_a):
    # Two tiles of units and a tail, 6 rows a warp, two chunks of rows.
    shape, k = (300, 5, 1), 2 * COLUMN_TILE_K + 11
    check_per_channel(emu, shape, k, dtype, param_dtype, with_a)
    check_columns_match_runs(emu, shape, *per_channel_inputs(shape, k, dtype, param_dtype,
                                                            with_a))


@pytest.mark.parametrize("mask", MASKS[1:], ids=lambda m: "".join(g for g, w in zip(GRADS, m) if w))
def test_per_channel_columns_output_mask(emu, mask):
    # Two chunks of 192 rows (6 a warp): 2 slots × 6 rows a warp = 12 rows of
    # partial sums per channel, summed by the reduction.
    check_per_channel(emu, (300, 5, 1), 7, torch.float32, torch.float32, True, mask)


def test_per_channel_columns_bitwise_deterministic(emu):
    for shape in [(131, 70, 1), (300, 5, 1), (40, 12, 5)]:
        x, m, b, a, grad = per_channel_inputs(shape, 7, torch.float32, torch.float32, True)
        first = [emu.relu_sum(x, m, b, a), *emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)]
        second = [emu.relu_sum(x, m, b, a), *emu.relu_sum_backward(grad, x, m, b, a, [True] * 4)]
        for g1, g2 in zip(first, second):
            assert torch.equal(g1, g2)


@pytest.mark.parametrize("shape", [(131, 70, 1), (40, 12, 5)], ids=lambda s: "x".join(map(str, s)))
def test_per_channel_columns_match_the_cpu_bit_for_bit_on_exact_products(emu, shape):
    # The emulated build has no FMA (the CPU build does), so general inputs
    # round m·x + b differently. With m, a powers of two and x on a grid of
    # 1/8, every product is exact and m·x + b rounds once either way: y and dx
    # are then their terms' sums in unit order on both, and must agree bit
    # for bit with the CPU op: its column kernels for (131, 70, 1), its runs
    # for (40, 12, 5) (inner = 5 with 75 units on 40 rows: Layout::of in
    # csrc/cpu/relu_sum_cpu.cpp).
    gen = torch.Generator().manual_seed(11)
    outer, channels, inner = shape
    k = 2 * COLUMN_TILE_K + 11
    pow2 = lambda *s: (2.0 ** torch.randint(-3, 4, s, generator=gen)  # noqa: E731
                       * (torch.randint(0, 2, s, generator=gen) * 2 - 1)).float()
    x = torch.randint(-64, 65, shape, generator=gen).float() / 8
    grad = torch.randint(-64, 65, shape, generator=gen).float() / 8
    m, a = pow2(channels, k), pow2(channels, k)
    b = wide_range(channels * k, torch.float32, seed=12).reshape(channels, k) * pow2(channels, k)
    assert torch.equal(emu.relu_sum(x, m, b, a), torch.ops.relu_ext.relu_sum(x, m, b, a))
    mask = [True, False, False, False]
    assert torch.equal(emu.relu_sum_backward(grad, x, m, b, a, mask)[0],
                       torch.ops.relu_ext.relu_sum_backward(grad, x, m, b, a, mask)[0])


@pytest.mark.emu_large
def test_per_channel_columns_slots_loop_over_chunks(emu):
    # 257 column tiles have one block slot each (kMaxBlocks // 257 = 1) and two
    # chunks of 32 rows each, the second of a single row: every slot loops.
    check_per_channel(emu, (CHUNK // 32 + 1, (MAX_BLOCKS // 2 + 1) * 2, 16), 3, torch.float32,
                      torch.float32, True)


def lanes_and_tree_sum(rows, zero):
    """Σ rows as reduce_blocks_kernel takes it: lane l sums rows l, l + 32,
    ... in order from zero, then the shuffle tree (offsets 16, 8, 4, 2, 1)."""
    lanes = [in_order(np.array([zero, *rows[lane::32]], dtype=type(zero))) for lane in range(32)]
    offset = 16
    while offset:
        lanes = [lanes[i] + (lanes[i + offset] if i + offset < 32 else lanes[i]) for i in range(32)]
        offset //= 2
    return lanes[0]


def column_order_sum(terms, inner):
    """Σ terms (outer, inner: one channel's) as param_grad_kernel by columns
    and the reduction take it (docs/cuda.md): partial row (s·RW + r)·inner + i
    sums, chunk by chunk of slot s (chunks s, s + S, ...), the rows
    begin + r, begin + r + RW, ... of column i in order; then the rows are
    summed as reduce_blocks_kernel sums slots. RW = 32 // min(width, 32)."""
    outer, width = terms.shape[0], CHANNELS_IN_ORDER_TEST * inner
    tile_width = min(width, 32)
    rw, tiles = 32 // tile_width, -(-width // tile_width)
    span = CHUNK // 32 * rw
    chunks = -(-outer // span)
    slots = min(chunks, max(MAX_BLOCKS // tiles, 1))
    zero = terms.dtype.type(0)
    rows = []
    for s in range(slots):
        for r in range(rw):
            for i in range(inner):
                chunk_sums = [in_order(terms[c * span + r:(c + 1) * span:rw, i])
                              for c in range(s, chunks, slots)]
                rows.append(in_order(np.array(chunk_sums, dtype=terms.dtype)))
    return rows[0] if len(rows) == 1 else lanes_and_tree_sum(rows, zero)


CHANNELS_IN_ORDER_TEST = 3


@pytest.mark.parametrize("outer,inner", [(400, 1), (70, 4), (1000, 1)])
def test_per_channel_columns_parameter_grads_sum_in_the_documented_order(emu, outer, inner):
    # check_parameter_sum_order's terms by columns. (400, 3, 1): a warp
    # takes 10 rows of 3, two chunks of 320 rows: 2·10 partial rows.
    # (70, 3, 4): 12 columns, 2 rows a warp, two chunks of 64 rows: 2·2·4.
    # (1000, 3, 1): four chunks on four slots, 40 partial rows (more than a
    # warp's lanes). Each row gets its own power-of-two scale and g both
    # signs, so any other order changes bits.
    channels = CHANNELS_IN_ORDER_TEST
    gen = torch.Generator().manual_seed(13)
    shape = (outer, channels, inner)
    g = ((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1)
         * 2.0 ** torch.randint(-8, 8, (outer, 1, 1), generator=gen)).float()
    x = torch.randn(shape, generator=gen, dtype=torch.float64).float()
    check_per_channel_sum_order(emu, g, x, lambda terms: column_order_sum(terms, inner))
