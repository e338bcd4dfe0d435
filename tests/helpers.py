"""Shared helpers for the tests: inputs, the float64 ground truth, tolerances.

A plain module (tests/ is on pytest's pythonpath, pyproject.toml), imported
by the tests of every folder; the fixtures built on it are in conftest.py."""

import torch

import relu_ext

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

# Relative to the magnitude of the terms summed (see reference_forward_and_grads):
# the kernels and the reference sum in different orders, and the 16-bit types
# round their inputs' products and their outputs.
TOLERANCE = {
    torch.float64: 1e-13,
    torch.float32: 1e-5,
    torch.float16: 2e-3,
    torch.bfloat16: 1.6e-2,
}

# Inputs for torch.library.opcheck of every op: with and without output
# weights, no units, no inputs.
OPCHECK_CASES = {
    "with_a": dict(shape=(5, 7), units=6, out_weights=True),
    "without_a": dict(shape=37, units=3, out_weights=False),
    "no_units": dict(shape=4, units=0, out_weights=True),
    "empty_x": dict(shape=0, units=3, out_weights=True),
}

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_inputs(shape, units, *, dtype=torch.float32, device="cpu", out_weights=True,
                seed=0, scale=2.0):
    """x of the given shape and K = units parameters, random but reproducible."""
    g = torch.Generator().manual_seed(seed)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)

    def rand(*s):
        return (torch.randn(s, generator=g, dtype=torch.float64) * scale).to(dtype).to(device)

    x = rand(*shape)
    m, b = rand(units), rand(units)
    a = rand(units) if out_weights else None
    return x, m, b, a


def make_channel_inputs(shape, dim, units, *, dtype=torch.float32, param_dtype=None,
                        out_weights=True, seed=0, scale=2.0):
    """x of `shape` and (C, K) parameters for C = shape[dim]."""
    g = torch.Generator().manual_seed(seed)

    def rand(*s, dt=dtype):
        return (torch.randn(s, generator=g, dtype=torch.float64) * scale).to(dt)

    x = rand(*shape)
    channels = shape[dim]
    pd = param_dtype or dtype
    m, b = rand(channels, units, dt=pd), rand(channels, units, dt=pd)
    a = rand(channels, units, dt=pd) if out_weights else None
    return x, m, b, a


def reference_step_sum(x, m, b, w):
    """step_sum's definition in float64: Σ_k w_k·H(m_k·x + b_k), where H blocks
    exactly where torch's relu backward does (p <= 0) and passes NaN."""
    x, m, b, w = (t.double() for t in (x, m, b, w))
    pre = x[..., None] * m + b
    return torch.where(pre <= 0, 0.0, w).sum(-1)


def reference_forward_and_grads(x, m, b, a, grad_out, dim=None):
    """y and (dx, dm, db, da) of the pure-PyTorch reference, in float64. With
    (C, K) units, x's elements along `dim` use row c (per-channel units).

    Each returned tensor carries `.magnitude`: the same sum taken over the
    absolute values of its terms, the scale that rounding errors grow with
    (the sums themselves may cancel). y and da also carry `.uncancelled`,
    the same sums over |m|·|x| + |b| of every term: the scale of the
    breakpoint algorithm's rounding (docs/breakpoints.md, "Accuracy")."""
    per_channel = m.dim() == 2
    inputs = [t.detach().double().requires_grad_() for t in (x, m, b)]
    if a is not None:
        inputs.append(a.detach().double().requires_grad_())
    y = relu_ext.reference.relu_sum(*inputs[:3], inputs[3] if a is not None else None,
                                    **({"dim": dim} if per_channel else {}))
    grads = list(torch.autograd.grad(y, inputs, grad_out.double(), allow_unused=True))
    grads += [None] * (4 - len(grads))

    # Per-channel: x's channel dim last, where (C, K) units broadcast against
    # it, and the sums over inputs over every other dim.
    def channels_last(t):
        return t.movedim(dim, -1) if per_channel else t

    def like_x(t):
        return t.movedim(-1, dim) if per_channel else t

    xd = channels_last(x.detach().double())
    md, bd = m.detach().double(), b.detach().double()
    ad = a.detach().double().abs() if a is not None else torch.ones_like(md)
    g = channels_last(grad_out.double()).abs()[..., None]
    pre = xd[..., None] * md + bd
    active = ~(pre <= 0)
    # An active term's own rounding: that of m·x + b, which scales with
    # |m·x| + |b| where the two cancel (the kernels' fused multiply-add
    # rounds once, the reference twice).
    h = torch.where(active, (xd[..., None] * md).abs() + bd.abs(), 0.0)
    inputs_dims = tuple(range(xd.dim() - 1 if per_channel else xd.dim()))

    def where_active(t):  # a blocked gradient contributes nothing to the scale
        return torch.where(active, t, 0.0)

    def over_inputs(t):  # sum over x's dimensions; a 0-dim x has none to sum
        return t.sum(inputs_dims) if inputs_dims else t

    y = y.detach()
    y.magnitude = like_x((h * ad).sum(-1))
    terms = [
        like_x(where_active(g * ad * md.abs()).sum(-1)),
        over_inputs(where_active(g * ad * xd.abs()[..., None])),
        over_inputs(where_active(g * ad)),
        over_inputs(g * h),
    ]
    for grad, magnitude in zip(grads, terms):
        if grad is not None:
            grad.magnitude = magnitude
    uncancelled = md.abs() * xd.abs()[..., None] + bd.abs()
    y.uncancelled = like_x((ad * uncancelled).sum(-1))
    if grads[3] is not None:
        grads[3].uncancelled = over_inputs(g * uncancelled)
    return y, grads


def assert_close_to_reference(actual, expected, dtype):
    """actual (of dtype) against a float64 expected from reference_forward_and_grads:
    within TOLERANCE[dtype] of the magnitude of the terms summed; NaN where it is NaN."""
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    got = actual.double()
    assert torch.equal(got.isnan(), expected.isnan()), "NaN in different places"
    infinite = expected.isinf()
    assert torch.equal(got[infinite], expected[infinite]), "different infinities"
    finite = expected.isfinite()
    error = (got - expected)[finite].abs()
    # Plus the smallest normal number: an output rounded into the subnormal
    # range has an absolute error no relative tolerance bounds.
    bound = TOLERANCE[dtype] * expected.magnitude[finite] + torch.finfo(dtype).tiny
    assert (error <= bound).all(), (
        f"max error {error.max().item():.3g}, allowed {bound[error.argmax()].item():.3g} "
        f"(of {finite.sum().item()} finite values, {(error > bound).sum().item()} off)"
    )


# The emulated CUDA kernels against the float64 reference (tests/cuda): relative
# to the largest finite value of the expected result.
EMULATOR_RTOL = {torch.float32: 2e-5, torch.float64: 1e-12, torch.float16: 2e-3,
                 torch.bfloat16: 1.6e-2}


def assert_close_scaled(actual, expected, dtype, what):
    """actual (of `dtype`) equals the float64 `expected` to EMULATOR_RTOL[dtype],
    the absolute tolerance scaled by expected's largest finite magnitude."""
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    rtol = EMULATOR_RTOL[dtype]
    finite = expected[expected.isfinite()]
    scale = max(finite.abs().max().item(), 1.0) if finite.numel() else 1.0
    torch.testing.assert_close(actual.double(), expected, rtol=rtol, atol=rtol * scale,
                               equal_nan=True, msg=lambda m: f"{what}: {m}")


def reduce_blocks_order(rows, zero):
    """rows (one partial sum per slot) summed as the CUDA reduce_blocks_kernel
    sums them (csrc/cuda/relu_sum_kernels.cuh): warp lane l adds slots l,
    l + 32, ... in order from `zero`, then a shuffle tree with offsets 16, 8,
    4, 2, 1 (a lane whose partner is past the warp adds its own value, as
    __shfl_down_sync returns it). Rows may be scalars or tensors of any dtype."""
    lanes = []
    for lane in range(32):
        total = zero
        for row in rows[lane::32]:
            total = total + row
        lanes.append(total)
    offset = 16
    while offset:
        lanes = [lanes[i] + (lanes[i + offset] if i + offset < 32 else lanes[i]) for i in range(32)]
        offset //= 2
    return lanes[0]
