"""relu_sum_linear as PyTorch sees it: opcheck (schema, fake kernels, autograd
registration), gradcheck in float64 through the public function, the bias's
gradient, batch dims, torch.compile, torch.export, ONNX, autocast, what it
refuses (second derivatives, bad arguments). The kernels' values and
gradients against the reference, case by case, are in
test_relu_sum_linear_kernels.py."""

import pytest
import torch

import relu_ext
from relu_ext.ops import reference

ALGORITHMS = ["dense", "breakpoints"]
OPS = {"dense": "relu_sum_linear", "breakpoints": "relu_sum_linear_breakpoints"}


def layer_inputs(n=6, i=3, o=4, k=5, *, batch=None, dtype=torch.float64, device="cpu",
                 param_dtype=None, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    pd = param_dtype or dtype

    def rand(*s, dt):
        return torch.randn(s, generator=g, dtype=torch.float64).to(dt).to(device)

    x = rand(*(batch or (n,)), i, dt=dtype)
    m, b = rand(i, k, dt=pd), rand(i, k, dt=pd)
    a = rand(o, i, k, dt=pd)
    return x, m, b, a, rand(o, dt=pd) if bias else None


OPCHECK_CASES = {
    "bias": dict(),
    "no_bias": dict(bias=False),
    "no_units": dict(k=0),
    "no_rows": dict(n=0),
    "no_outputs": dict(o=0),
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", OPCHECK_CASES)
def test_opcheck(algorithm, case, device):
    args = layer_inputs(dtype=torch.float32, device=device, **OPCHECK_CASES[case])
    torch.library.opcheck(getattr(torch.ops.relu_ext, OPS[algorithm]).default, args)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("mask", [(True,) * 4, (False, True, False, True), (True, False, False, False)])
def test_opcheck_backward(algorithm, mask, device):
    x, m, b, a, _ = layer_inputs(dtype=torch.float32, device=device)
    grad = torch.randn(x.shape[0], a.shape[0], device=device)
    op = getattr(torch.ops.relu_ext, OPS[algorithm] + "_backward").default
    torch.library.opcheck(op, (grad, x, m, b, a, list(mask)))


@pytest.mark.parametrize("algorithm", ALGORITHMS + ["auto"])
def test_gradcheck_in_all_five_arguments(algorithm, device):
    args = [t.requires_grad_() for t in layer_inputs(batch=(2, 3), device=device)]
    assert torch.autograd.gradcheck(
        lambda *t: relu_ext.relu_sum_linear(*t, algorithm=algorithm), args)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_matches_the_reference_with_batch_dims_and_strides(algorithm, device):
    x, m, b, a, bias = layer_inputs(batch=(4, 5), i=6, device=device)
    x = x.transpose(0, 1)  # (5, 4, 6), not contiguous
    y = relu_ext.relu_sum_linear(x, m, b, a, bias, algorithm=algorithm)
    assert y.shape == (5, 4, a.shape[0])
    torch.testing.assert_close(y, reference.relu_sum_linear(x, m, b, a, bias),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_only_the_gradients_asked_for_are_computed(algorithm):
    x, m, b, a, bias = layer_inputs()
    a.requires_grad_()
    y = relu_ext.relu_sum_linear(x, m, b, a, bias, algorithm=algorithm)
    (da,) = torch.autograd.grad(y.square().sum(), [a])
    ref = torch.autograd.grad(reference.relu_sum_linear(x, m, b, a, bias).square().sum(), [a])[0]
    torch.testing.assert_close(da, ref, rtol=1e-12, atol=1e-12)


def test_the_bias_gradient_is_the_row_sum_and_independent_of_threads():
    # Enough rows for the bias's row blocks to matter (relu_ext/ops/_relu_sum_linear.py).
    x, m, b, a, bias = layer_inputs(n=20000, i=2, o=3, k=2, dtype=torch.float32)
    bias.requires_grad_()
    grad = torch.randn(x.shape[0], a.shape[0])
    threads = torch.get_num_threads()
    try:
        results = []
        for t in (1, 2):
            torch.set_num_threads(t)
            y = relu_ext.relu_sum_linear(x, m, b, a, bias)
            results.append(torch.autograd.grad(y, [bias], grad)[0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1])
    torch.testing.assert_close(results[0], grad.double().sum(0).float(), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("x_dtype", [torch.float16, torch.bfloat16])
def test_16bit_x_with_float32_parameters(x_dtype):
    x, m, b, a, bias = layer_inputs(dtype=x_dtype, param_dtype=torch.float32)
    params = [t.requires_grad_() for t in (m, b, a, bias)]
    xg = x.requires_grad_()
    y = relu_ext.relu_sum_linear(xg, *params)
    assert y.dtype == x_dtype
    y.float().sum().backward()
    assert xg.grad.dtype == x_dtype and all(p.grad.dtype == torch.float32 for p in params)
    ref = reference.relu_sum_linear(x.detach().float(), *(p.detach() for p in params))
    torch.testing.assert_close(y.float(), ref, rtol=2e-2, atol=2e-2)


def test_autocast_feeds_it_16bit_activations():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4))
    x, m, b, a, bias = layer_inputs(i=4, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = net(x[:, :3])
        y = relu_ext.relu_sum_linear(h, m, b, a, bias)
    assert h.dtype == y.dtype == torch.bfloat16
    ref = reference.relu_sum_linear(h.float(), m, b, a, bias)
    torch.testing.assert_close(y.float(), ref, rtol=2e-2, atol=5e-2)


@pytest.mark.parametrize("algorithm", ALGORITHMS + ["auto"])
def test_compile_fullgraph_forward_and_backward(algorithm, device):
    torch._dynamo.reset()
    x, m, b, a, bias = layer_inputs(batch=(2, 7), dtype=torch.float32, device=device)
    params = [t.requires_grad_() for t in (m, b, a, bias)]

    def loss(x, m, b, a, bias):
        return relu_ext.relu_sum_linear(x, m, b, a, bias, algorithm=algorithm).square().sum()

    compiled = torch.compile(loss, fullgraph=True)
    value = compiled(x, *params)
    grads = torch.autograd.grad(value, params)
    expected = loss(x, *params)
    ref_grads = torch.autograd.grad(expected, params)
    torch.testing.assert_close(value, expected)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)


def test_export_keeps_the_fused_op():
    x, m, b, a, bias = layer_inputs(dtype=torch.float32)

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m, self.b = torch.nn.Parameter(m), torch.nn.Parameter(b)
            self.a, self.bias = torch.nn.Parameter(a), torch.nn.Parameter(bias)

        def forward(self, x):
            return relu_ext.relu_sum_linear(x, self.m, self.b, self.a, self.bias)

    layer = Layer()
    program = torch.export.export(layer, (x,))
    assert "relu_ext.relu_sum_linear" in str(program.graph)
    torch.testing.assert_close(program.module()(x), layer(x))


def test_onnx_export_traces_the_reference(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    x, m, b, a, bias = layer_inputs(dtype=torch.float32)

    class Layer(torch.nn.Module):
        def forward(self, x):
            return relu_ext.relu_sum_linear(x, m, b, a, bias)

    path = tmp_path / "layer.onnx"
    torch.onnx.export(Layer().eval(), (x,), str(path), dynamo=True)
    session = onnxruntime.InferenceSession(str(path))
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(y), Layer()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_second_derivative_raises_instead_of_a_wrong_number(algorithm):
    x, m, b, a, bias = (t.requires_grad_() for t in layer_inputs())
    y = relu_ext.relu_sum_linear(x, m, b, a, bias, algorithm=algorithm)
    (dx,) = torch.autograd.grad(y.sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match="second or higher order are not implemented"):
        dx.sum().backward()


def test_auto_picks_dense_for_few_units_or_tiny_calls():
    from relu_ext.ops import choose_linear_algorithm

    def choice(n, i, o, k):
        return choose_linear_algorithm("auto", torch.zeros(n, i), torch.zeros(i, k),
                                       torch.zeros(o, i, k))

    assert choice(4096, 256, 256, 1) == "dense"
    assert choice(4096, 256, 256, 2) == "breakpoints"
    assert choice(64, 16, 16, 16) == "dense"
    assert choice(64, 16, 16, 64) == "breakpoints"


def _message(fn):
    with pytest.raises((TypeError, ValueError)) as info:
        fn()
    return type(info.value), str(info.value)


BAD = {
    "x is not a tensor": (lambda x, m, b, a, bias: ([1.0], m, b, a, bias),
                          TypeError, "x must be a torch.Tensor"),
    "x is 0-d": (lambda x, m, b, a, bias: (x[0, 0], m, b, a, bias), ValueError,
                 "x must have a last dimension of I features"),
    "x is an int": (lambda x, m, b, a, bias: (x.long(), m, b, a, bias), TypeError,
                    "x must be a floating-point tensor"),
    "I differs": (lambda x, m, b, a, bias: (x[:, :2], m, b, a, bias), ValueError,
                  "m must be 2-D (I, K) with I = x.shape[-1] = 2"),
    "m is 1-D": (lambda x, m, b, a, bias: (x, m[0], b, a, bias), ValueError,
                 "m must be 2-D (I, K)"),
    "b's shape": (lambda x, m, b, a, bias: (x, m, b[:, :2], a, bias), ValueError,
                  "b must have the shape of m ([3, 5]), but got [3, 2]"),
    "a is 2-D": (lambda x, m, b, a, bias: (x, m, b, a[0], bias), ValueError,
                 "a must be 3-D (O, I, K) with (I, K) = m.shape ([3, 5]), but got shape [3, 5]"),
    "a's K": (lambda x, m, b, a, bias: (x, m, b, a[..., :1], bias), ValueError,
              "a must be 3-D (O, I, K)"),
    "bias's length": (lambda x, m, b, a, bias: (x, m, b, a, bias[:2]), ValueError,
                      "bias must be 1-D (O,) with O = a.shape[0] = 4, but got shape [2]"),
    "a's dtype": (lambda x, m, b, a, bias: (x, m, b, a.float(), bias), TypeError,
                  "a must have the dtype of x (torch.float64), but got torch.float32"),
    "bias's dtype": (lambda x, m, b, a, bias: (x, m, b, a, bias.float()), TypeError,
                     "bias must have the dtype of x (torch.float64), but got torch.float32"),
    "float64 parameters for a 16-bit x": (
        lambda x, m, b, a, bias: (x.half(), m, b, a, bias), TypeError,
        "m must have the dtype of x (torch.float16) or torch.float32, but got torch.float64"),
    "bias on another device": (lambda x, m, b, a, bias: (x, m, b, a, bias.to("meta")),
                               ValueError, "bias must be on the device of x (cpu), but got meta"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_arguments_name_the_argument(case):
    make, kind, text = BAD[case]
    args = make(*layer_inputs())
    got_kind, got = _message(lambda: relu_ext.relu_sum_linear(*args))
    assert got_kind is kind and text in got, got


@pytest.mark.parametrize("case", [c for c in BAD if c not in ("x is not a tensor", "x is 0-d",
                                                             "I differs", "m is 1-D")])
def test_the_fake_kernel_raises_what_the_kernel_raises(case):
    make, kind, _ = BAD[case]
    args = make(*layer_inputs())
    op = torch.ops.relu_ext.relu_sum_linear.default
    eager = _message(lambda: op(*args))
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fakes = [mode.from_tensor(t) if t.device.type != "meta" else t for t in args]
        fake = _message(lambda: op(*fakes))
    assert eager == fake and eager[0] is kind


def test_an_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="algorithm must be one of 'auto', 'dense', 'breakpoints'"):
        relu_ext.relu_sum_linear(*layer_inputs(), algorithm="sparse")
