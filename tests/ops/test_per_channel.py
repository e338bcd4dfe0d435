"""Per-channel units (issue 10, docs/contract.md, "Arguments"): m, b, a of
shape (C, K), one function per channel along x's `dim`, on the CPU dense and breakpoint
kernels (the CUDA ones: cuda/test_cuda_emulator.py). Against the float64 reference
(relu_ext.reference.relu_sum with 2-D parameters), over shapes, dims, layouts
and dtypes; gradcheck, determinism, bad arguments, opcheck, torch.compile,
vmap, and the module as a drop-in nn.ReLU. What only the breakpoint
algorithm needs (its tables per channel, auto's choice) is in
test_breakpoints_per_channel.py."""

import re

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

import relu_ext
from helpers import TOLERANCE, assert_close_to_reference, reference_forward_and_grads
from helpers import make_channel_inputs as make_inputs

ops = torch.ops.relu_ext


def run_fused(x, m, b, a, grad_out, dim, **kwargs):
    inputs = [t.detach().clone().requires_grad_() for t in (x, m, b)]
    if a is not None:
        inputs.append(a.detach().clone().requires_grad_())
    y = relu_ext.relu_sum(*inputs[:3], inputs[3] if a is not None else None, dim=dim, **kwargs)
    grads = list(torch.autograd.grad(y, inputs, grad_out))
    return y, grads + [None] * (4 - len(grads))


def check_against_reference(x, m, b, a, dim, dtype, algorithm="auto"):
    grad_out = make_inputs(x.shape, 0, 0, dtype=dtype, seed=1)[0] if x.dim() else x
    y, grads = run_fused(x, m, b, a, grad_out, dim, algorithm=algorithm)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, grad_out, dim)
    if algorithm == "breakpoints":  # 1e-15 of the uncancelled terms, whatever the dtype
        for want, of in ((y_ref, x), (grads_ref[3], a)):
            if want is not None:
                want.magnitude = want.magnitude + 1e-15 / TOLERANCE[of.dtype] * want.uncancelled
    assert y.shape == x.shape
    assert_close_to_reference(y, y_ref, dtype)
    for got, want, param in zip(grads, grads_ref, (x, m, b, a)):
        assert (got is None) == (want is None)
        if got is not None:
            assert got.shape == param.shape
            assert_close_to_reference(got, want, param.dtype)
    return y


# (shape, dim): MLP (N, C), transformer (B, T, C), NCHW, one channel, one
# element per channel, empty, a 1-D x, runs longer than a backward span
# (2048 float32) and enough elements for several backward chunks.
SHAPES = [
    ((4, 3), 1), ((2, 5, 3), -1), ((2, 3, 4, 5), 1), ((2, 1, 7), 1), ((3,), 0),
    ((0, 3, 4), 1), ((2, 3, 0), 1), ((2, 3, 2100), 1), ((700, 6), -1), ((2, 4, 3, 5), -2),
]


# The two algorithms with per-channel kernels ("auto" is one of them).
ALGORITHMS = ["dense", "breakpoints"]


@pytest.mark.parametrize("shape, dim", SHAPES, ids=str)
@pytest.mark.parametrize("units", [0, 1, 5, 17])
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_matches_reference(shape, dim, units, out_weights, algorithm, dtype):
    x, m, b, a = make_inputs(shape, dim, units, dtype=dtype, out_weights=out_weights)
    check_against_reference(x, m, b, a, dim, dtype, algorithm)


@pytest.mark.parametrize("x_dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_16bit_x_with_float32_units(x_dtype, algorithm):
    x, m, b, a = make_inputs((3, 4, 37), 1, 6, dtype=x_dtype, param_dtype=torch.float32)
    check_against_reference(x, m, b, a, 1, x_dtype, algorithm)


ISAS = relu_ext.build_info()["cpu_isas"]


@pytest.fixture(params=ISAS)
def isa(request):
    previous = relu_ext._C.set_cpu_isa(request.param)
    yield request.param
    relu_ext._C.set_cpu_isa(previous)


# Shapes the column kernels (channels innermost, or a few elements per
# channel) take with their edges: a last block narrower than the vector
# lanes (C = 3, 17, 33 on 4, 8 or 16 lanes), rows that are no whole tile,
# more rows than a backward span (128) and than one chunk, a few elements per
# channel (inner 3 and 5: columns c·inner + i), and the channels-last
# layout; then a channel run walked as runs next to them.
COLUMN_SHAPES = [
    ((5, 3), -1), ((13, 17), 1), ((300, 33), -1), ((2, 70, 16), -1), ((9000, 20), -1),
    ((40, 6, 3), 1), ((50, 3, 5), 1), ((2, 17, 4, 4), 1), ((3, 5, 70), 1),
]


@pytest.mark.parametrize("shape, dim", COLUMN_SHAPES, ids=str)
def test_column_kernels_on_every_isa(isa, shape, dim, dtype):
    x, m, b, a = make_inputs(shape, dim, 5, dtype=dtype)
    if len(shape) == 4:  # channels-last: the channels innermost in memory
        x = x.to(memory_format=torch.channels_last)
    check_against_reference(x, m, b, a, dim, dtype)
    w = a.abs()
    y = torch.ops.relu_ext.step_sum(x.movedim(dim, -1).reshape(-1, shape[dim], 1), m, b, w)
    pre = x.double().movedim(dim, -1)[..., None] * m.double() + b.double()
    want = torch.where(pre > 0, w.double(), 0.0).sum(-1).reshape(y.shape)
    torch.testing.assert_close(y.double(), want, atol=1e-2 if dtype.itemsize == 2 else 1e-5,
                               rtol=1e-2 if dtype.itemsize == 2 else 1e-5)


@pytest.mark.parametrize("x_dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape, dim", [((300, 33), -1), ((40, 6, 3), 1), ((3, 5, 70), 1)],
                         ids=str)
def test_16bit_x_is_float32_arithmetic_on_its_values(isa, x_dtype, shape, dim):
    # A 16-bit x is widened and its results narrowed, nothing else: bitwise
    # the float32 kernels on the widened values, sums over inputs included.
    x, m, b, a = make_inputs(shape, dim, 6, dtype=x_dtype, param_dtype=torch.float32)
    g = make_inputs(shape, dim, 0, dtype=x_dtype, seed=1)[0]
    y16, (dx16, *sums16) = run_fused(x, m, b, a, g, dim)
    y32, (dx32, *sums32) = run_fused(x.float(), m, b, a, g.float(), dim)
    assert torch.equal(y16, y32.to(x_dtype))
    assert torch.equal(dx16, dx32.to(x_dtype))
    for got, want in zip(sums16, sums32):
        assert torch.equal(got, want)


def test_one_channel_is_the_shared_function():
    # C = 1 with dim's extent 1 is the shared form: bitwise the same kernels.
    x, m, b, a = make_inputs((5, 1, 300), 1, 9)
    y = relu_ext.relu_sum(x, m, b, a)
    assert torch.equal(y, relu_ext.relu_sum(x, m[0], b[0], a[0]))


def test_shared_units_ignore_dim():
    x, m, b, a = make_inputs((4, 3), 1, 5)
    m, b, a = m[0], b[0], a[0]
    assert torch.equal(relu_ext.relu_sum(x, m, b, a, dim=7), relu_ext.relu_sum(x, m, b, a))


LAYOUTS = {
    "channels_last": (lambda t: t.to(memory_format=torch.channels_last), (2, 3, 5, 6), 1),
    "transposed": (lambda t: t.transpose(0, 2), (7, 4, 3), -1),
    "permuted_nhwc_as_nchw": (lambda t: t.permute(0, 3, 1, 2), (2, 5, 6, 3), 1),
    "stepped": (lambda t: t[:, :, ::3], (2, 3, 40), 1),
    "expanded": (lambda t: t.expand(4, -1, -1), (1, 3, 9), 1),
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_any_strides(layout, algorithm, dtype):
    make, base_shape, dim = LAYOUTS[layout]
    base = make_inputs(base_shape, 0, 0, dtype=dtype)[0]
    x = make(base)
    assert not x.is_contiguous()
    _, m, b, a = make_inputs(x.shape, dim, 6, dtype=dtype, seed=2)
    y = check_against_reference(x, m, b, a, dim, dtype, algorithm)
    if layout != "stepped" and layout != "expanded":  # dense: y in x's layout
        assert y.stride() == x.stride()


def test_channels_last_takes_a_view_not_a_copy():
    from relu_ext.ops._channels import to_channels

    x = torch.randn(2, 3, 5, 6).to(memory_format=torch.channels_last)
    x3, back = to_channels(x, 1)
    assert x3.shape == (2 * 5 * 6, 3, 1) and x3.is_contiguous()
    assert x3.data_ptr() == x.data_ptr()
    assert torch.equal(back(x3), x)
    x = torch.randn(2, 5, 3)
    x3, _ = to_channels(x, 2)
    assert x3.shape == (10, 3, 1) and x3.data_ptr() == x.data_ptr()


@pytest.mark.parametrize("shape, dim", [((2, 3, 4), 1), ((3, 2, 3), -1), ((4, 3), 1)], ids=str)
@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradcheck_and_gradgradcheck(shape, dim, out_weights, algorithm):
    x, m, b, a = make_inputs(shape, dim, 4, dtype=torch.float64, out_weights=out_weights)
    leaves = tuple(t.requires_grad_() for t in (x, m, b, a) if t is not None)

    def fn(*t):
        return relu_ext.relu_sum(*t[:3], t[3] if out_weights else None, dim=dim,
                                 algorithm=algorithm)

    assert torch.autograd.gradcheck(fn, leaves, check_forward_ad=True)
    assert torch.autograd.gradgradcheck(fn, leaves)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_vmap_over_inputs_and_over_units(algorithm):
    x, m, b, a = make_inputs((5, 2, 3, 4), 2, 6)

    def f(x, m=m):
        return relu_ext.relu_sum(x, m, b, a, dim=1, algorithm=algorithm)

    assert torch.equal(torch.vmap(f)(x), torch.stack([f(t) for t in x]))
    ms = torch.stack([m, m * 2])
    per_units = torch.vmap(lambda m: f(x[0], m))(ms)
    assert torch.equal(per_units, torch.stack([f(x[0], t) for t in ms]))
    # Per-sample input gradients: the backward's dx-only rule.
    grads = torch.vmap(torch.func.grad(lambda x: f(x).sum()))(x)
    for g, t in zip(grads, x):
        t = t.clone().requires_grad_()
        assert torch.equal(g, torch.autograd.grad(f(t).sum(), t)[0])


def all_grads(x, m, b, a, dim, algorithm="dense"):
    leaves = [t.detach().clone().requires_grad_() for t in (x, m, b, a)]
    y = relu_ext.relu_sum(*leaves, dim=dim, algorithm=algorithm)
    return [y, *torch.autograd.grad(y, leaves, torch.ones_like(y))]


# The breakpoint sums are chunked per 16,384 inputs of a channel: (2, 3, 40000)
# has 4 chunks per channel, (100000, 4) with channels innermost 6; the dense
# column kernels' rows come in 128-row spans and chunks of them.
@pytest.mark.parametrize("shape, dim, algorithm", [
    ((8, 16, 3000), 1, "dense"), ((3000, 16), -1, "dense"), ((900, 12, 4), 1, "dense"),
    ((2, 3, 40000), 1, "breakpoints"), ((100000, 4), -1, "breakpoints"),
], ids=str)
def test_bitwise_deterministic_across_runs_and_threads(shape, dim, algorithm):
    x, m, b, a = make_inputs(shape, dim, 8)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = all_grads(x, m, b, a, dim, algorithm)
        again = all_grads(x, m, b, a, dim, algorithm)
        torch.set_num_threads(1)
        single = all_grads(x, m, b, a, dim, algorithm)
    finally:
        torch.set_num_threads(threads)
    for p, q, r in zip(first, again, single):
        assert torch.equal(p, q) and torch.equal(p, r)


# Channel runs (inner 8) and columns (the channels innermost).
@pytest.mark.parametrize("shape, dim", [((2, 3, 8), 1), ((8, 3), -1)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nan_and_inf_as_the_reference(shape, dim, dtype, algorithm):
    x, m, b, a = make_inputs(shape, dim, 4, dtype=dtype)
    xc = x.movedim(dim, -1)
    xc[0, 0], xc[1, 0], xc[-1, 1] = float("nan"), float("inf"), -float("inf")
    m[1, 2] = float("inf")
    b[2, 0] = float("nan")
    check_against_reference(x, m, b, a, dim, dtype, algorithm)


# ------------------------------------------------------------------ bad arguments

def call_public(x, m, b, a, **kw):
    return relu_ext.relu_sum(x, m, b, a, **kw)


def call_op(x, m, b, a, **kw):
    return ops.relu_sum(x, m, b, a)


def call_fake(x, m, b, a, **kw):
    with FakeTensorMode(allow_non_fake_inputs=True):
        return ops.relu_sum(x, m, b, a)


CALLS = {"public": call_public, "op": call_op, "fake": call_fake}

BAD_FOR_ALL = {
    "b unlike m": (
        [torch.randn(2, 4, 5), torch.randn(4, 3), torch.randn(4, 2), None],
        "relu_sum(): b must have the shape of m ([4, 3]), but got [4, 2]"),
    "a unlike m": (
        [torch.randn(2, 4, 5), torch.randn(4, 3), torch.randn(4, 3), torch.randn(3)],
        "relu_sum(): a must have the shape of m ([4, 3]), but got [3]"),
    "3-D m": (
        [torch.randn(2, 4, 5), torch.randn(4, 3, 1), torch.randn(4, 3, 1), None],
        "relu_sum(): m must be 1-D (K units, shared) or 2-D (C channels, K units), "
        "but got shape [4, 3, 1]"),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("case", BAD_FOR_ALL, ids=str)
def test_bad_parameter_shapes(case, call):
    args, message = BAD_FOR_ALL[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        CALLS[call](*args)


@pytest.mark.parametrize("dim, shape", [(1, (2, 3, 5)), (-1, (2, 5, 3)), (0, (3,))])
def test_channel_count_unlike_x_names_dim(dim, shape):
    m = torch.randn(4, 2)
    with pytest.raises(ValueError, match=re.escape(
            f"relu_sum(): x.shape[dim] (dim={dim}) must equal the number of channels of m (4), "
            "but got 3")):
        relu_ext.relu_sum(torch.randn(shape), m, m, dim=dim)


@pytest.mark.parametrize("call", ["op", "fake"])
def test_op_takes_the_canonical_layout(call):
    m = torch.randn(4, 2)
    with pytest.raises(ValueError, match=re.escape(
            "relu_sum(): x.shape[1] must equal the number of channels of m (4), but got 3")):
        CALLS[call](torch.randn(2, 3, 5), m, m, None)
    with pytest.raises(ValueError, match=re.escape(
            "relu_sum(): x must be 3-D (outer, C, inner) when m is 2-D (C, K), but got shape [4]")):
        CALLS[call](torch.randn(4), m, m, None)


@pytest.mark.parametrize("dim", [3, -4])
def test_dim_out_of_range_is_torchs_index_error(dim):
    x, m = torch.randn(2, 3, 4), torch.randn(3, 2)
    with pytest.raises(IndexError) as ours:
        relu_ext.relu_sum(x, m, m, dim=dim)
    with pytest.raises(IndexError) as torchs:
        x.size(dim)
    assert str(ours.value) == str(torchs.value)


def test_fake_kernels_take_cuda_per_channel_units():
    # The CUDA kernels take (C, K) units too (their emulator tests:
    # cuda/test_cuda_emulator.py): under torch.compile the fake kernels give
    # x's and m's shapes on CUDA tensors as on CPU ones, no GPU needed.
    with FakeTensorMode():
        x = torch.empty(2, 3, 4, device="cuda")
        m = torch.empty(3, 2, device="cuda")
        assert ops.relu_sum(x, m, m, m).shape == x.shape
        assert ops.step_sum(x, m, m, m).shape == x.shape
        grads = ops.relu_sum_backward(x, x, m, m, m, [True] * 4)
        assert [g.shape for g in grads] == [x.shape, m.shape, m.shape, m.shape]
        assert all(g.device.type == "cuda" for g in grads)


@pytest.mark.parametrize("channels", [0, -2, 2.0, True])
def test_module_rejects_bad_channel_counts(channels):
    with pytest.raises(ValueError, match=re.escape(
            f"ReLUSum(): channels must be None or a positive int, but got {channels!r}")):
        relu_ext.ReLUSum(4, channels=channels)


# ------------------------------------------------------------- registration

OPCHECK_CASES = {
    "with_a": dict(shape=(2, 3, 5), units=4, out_weights=True),
    "without_a": dict(shape=(4, 2, 1), units=3, out_weights=False),
    "no_units": dict(shape=(2, 3, 4), units=0, out_weights=True),
    "empty_x": dict(shape=(0, 3, 4), units=2, out_weights=True),
}


@pytest.mark.parametrize("case", OPCHECK_CASES, ids=str)
@pytest.mark.parametrize("dtype, param_dtype", [(torch.float32, None),
                                                (torch.float16, torch.float32)], ids=str)
def test_opcheck(case, dtype, param_dtype):
    spec = OPCHECK_CASES[case]
    x, m, b, a = make_inputs(spec["shape"], 1, spec["units"], dtype=dtype,
                             param_dtype=param_dtype, out_weights=spec["out_weights"])
    for t in (x, m, b, a):
        if t is not None:
            t.requires_grad_()
    torch.library.opcheck(ops.relu_sum.default, (x, m, b, a))
    torch.library.opcheck(ops.relu_sum_auto.default, (x, m, b, a))
    w = a if a is not None else b
    torch.library.opcheck(ops.step_sum.default, (x.detach(), m.detach(), b.detach(), w))
    grad = torch.randn_like(x)
    for mask in ([True] * 4, [True, False, False, False], [False, True, True, False],
                 [False, False, False, True]):
        torch.library.opcheck(ops.relu_sum_backward.default,
                              (grad, *(t if t is None else t.detach() for t in (x, m, b, a)),
                               mask))


@pytest.mark.parametrize("net", ["mlp", "cnn_channels_last"])
def test_compile_fullgraph_module(net):
    torch._dynamo.reset()
    torch.manual_seed(0)
    channels = 6
    if net == "mlp":
        model = nn.Sequential(nn.Linear(5, channels), relu_ext.ReLUSum(8, channels=channels, dim=-1),
                              nn.Linear(channels, 2))
        x = torch.randn(3, 4, 5)
    else:
        model = nn.Sequential(nn.Conv2d(2, channels, 3, padding=1),
                              relu_ext.ReLUSum(8, channels=channels))
        model = model.to(memory_format=torch.channels_last)
        x = torch.randn(2, 2, 5, 5).to(memory_format=torch.channels_last)
    with torch.no_grad():  # let every unit matter
        model[1].a.normal_()

    def loss_fn(x):
        return model(x).square().mean()

    compiled = torch.compile(loss_fn, fullgraph=True)
    params = list(model.parameters())
    loss = compiled(x)
    grads = torch.autograd.grad(loss, params)
    loss_eager = loss_fn(x)
    grads_eager = torch.autograd.grad(loss_eager, params)
    torch.testing.assert_close(loss, loss_eager)
    for got, want in zip(grads, grads_eager):
        torch.testing.assert_close(got, want)


# ------------------------------------------------------------------ module

@pytest.mark.parametrize("shape, dim", [((64, 7), 1), ((8, 9, 7), -1), ((2, 7, 6, 6), 1)],
                         ids=str)
def test_module_is_exactly_relu_at_init(shape, dim):
    torch.manual_seed(0)
    channels = shape[dim]
    module = relu_ext.ReLUSum(8, channels=channels, dim=dim)
    assert module.m.shape == module.b.shape == module.a.shape == (channels, 8)
    x = torch.randn(shape) * 5
    x.view(-1)[:3] = torch.tensor([0.0, -0.0, 1e30])
    x.requires_grad_()
    y = module(x)
    assert torch.equal(y, nn.ReLU()(x))
    y.sum().backward()
    # The units that start at a = 0 still learn: a gets a gradient (enough
    # inputs here that some unit of every channel is active on one).
    assert (module.a.grad[:, 1:] != 0).any(dim=1).all()


def test_module_without_out_weights_is_relu_on_the_input_range():
    torch.manual_seed(0)
    module = relu_ext.ReLUSum(5, channels=3, out_weights=False, input_range=(-2.0, 2.0))
    x = torch.linspace(-2, 2, 41).expand(2, 3, 41)
    assert torch.equal(module(x), torch.relu(x))
    outside = torch.tensor([-3.0, 3.0]).expand(1, 3, 2)
    assert (module(outside) != torch.relu(outside)).all()


def test_module_repr_and_state():
    module = relu_ext.ReLUSum(8, channels=16, dim=-1)
    assert "units=8, channels=16, dim=-1" in repr(module)
    assert set(module.state_dict()) == {"m", "b", "a"}
    assert "channels" not in repr(relu_ext.ReLUSum(8))


def test_step_sum_per_channel():
    # The building block of the higher derivatives, with (C, K) weights.
    x, m, b, w = make_inputs((2, 3, 7), 1, 5, dtype=torch.float64)
    pre = x[..., None] * m[:, None, :] + b[:, None, :]
    expected = torch.where(pre <= 0, 0.0, w[:, None, :]).sum(-1)
    torch.testing.assert_close(ops.step_sum(x, m, b, w), expected, rtol=1e-13, atol=1e-13)


def test_torch_export_keeps_the_fused_op():
    model = relu_ext.ReLUSum(4, channels=3, dim=-1).eval()
    x = torch.randn(2, 5, 3)
    exported = torch.export.export(model, (x,))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert "relu_ext.relu_sum_auto.default" in targets
    assert torch.equal(exported.module()(x), model(x))


def test_per_channel_needs_a_channel_dim_and_an_int_dim():
    m = torch.randn(1, 2)
    with pytest.raises(ValueError, match=re.escape(
            "relu_sum(): x must have a channel dimension when m is 2-D (C, K), but got shape []")):
        relu_ext.relu_sum(torch.tensor(1.0), m, m)
    with pytest.raises(TypeError, match=re.escape("relu_sum(): dim must be an int, but got bool")):
        relu_ext.relu_sum(torch.randn(3, 1), m, m, dim=True)


def test_per_channel_under_autocast():
    model = nn.Sequential(nn.Linear(5, 6), relu_ext.ReLUSum(4, channels=6, dim=-1))
    x = torch.randn(3, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), model(x), rtol=1.6e-2, atol=1.6e-2)
    y.float().sum().backward()
    assert model[1].m.grad.dtype == torch.float32 and model[1].m.grad.shape == (6, 4)


@pytest.mark.parametrize("shape, dim", [((4, 3), 1), ((2, 5, 3), -1), ((2, 3, 4, 5), 1),
                                        ((2, 4, 3, 5), -2)], ids=str)
def test_module_bias_is_per_channel(shape, dim):
    channels = shape[dim]
    module = relu_ext.ReLUSum(4, channels=channels, dim=dim, bias=True)
    assert module.bias.shape == (channels,)
    with torch.no_grad():
        module.bias.copy_(torch.arange(channels, dtype=torch.float32))
    x = torch.randn(shape)
    y = module(x)
    want = relu_ext.relu_sum(x, module.m, module.b, module.a, dim=dim)
    want = want + torch.arange(channels, dtype=torch.float32).view(
        [-1 if d == dim % x.dim() else 1 for d in range(x.dim())])
    torch.testing.assert_close(y, want)
    y.sum().backward()
    assert module.bias.grad.shape == (channels,)


@pytest.mark.parametrize("shape, dim", [((5, 3), -1), ((2, 3, 4), 1)], ids=str)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_torch_func_jvp_and_hessian_match_the_reference(shape, dim, algorithm):
    # torch.func's forward mode (jvp, the tangent through the C++ autograd's
    # relu_sum_jvp) and a Hessian (forward over reverse) of the per-channel op.
    x, m, b, a = make_inputs(shape, dim, 4, dtype=torch.float64)
    tangents = make_inputs(shape, dim, 4, dtype=torch.float64, seed=1)

    def ours(*t):
        return relu_ext.relu_sum(*t, dim=dim, algorithm=algorithm)

    def reference(*t):
        return relu_ext.reference.relu_sum(*t, dim=dim)

    y, dy = torch.func.jvp(ours, (x, m, b, a), tangents)
    y_ref, dy_ref = torch.func.jvp(reference, (x, m, b, a), tangents)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(dy, dy_ref)

    def loss(f):
        return lambda a_: (f(x, m, b, a_) ** 2).sum()

    torch.testing.assert_close(torch.func.hessian(loss(ours))(a),
                               torch.func.hessian(loss(reference))(a))
