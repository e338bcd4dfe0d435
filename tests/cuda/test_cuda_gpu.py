"""The CUDA ops on a real GPU, against the CPU ops. Skipped where torch sees no
GPU, which includes this project's CI: there the kernels are checked through
the emulator (test_cuda_emulator.py) and ptxas (test_cuda_build.py) only."""

import pytest
import torch

import relu_ext
from relu_ext.ops import _build_meta

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
    pytest.mark.skipif(not _build_meta.WITH_CUDA, reason="relu_ext built without CUDA"),
]

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
RTOL = {torch.float32: 1e-4, torch.float64: 1e-10, torch.float16: 4e-3, torch.bfloat16: 3e-2}


def inputs(n, k, dtype, device, with_a=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    make = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    x, g, m, b = make(n), make(n), make(k), make(k)
    a = make(k) if with_a else None
    move = lambda t: None if t is None else t.to(device)  # noqa: E731
    return [move(t) for t in (x, m, b, a, g)]


def close(gpu, cpu, dtype):
    scale = max(cpu.abs().max().item(), 1.0) if cpu.numel() else 1.0
    torch.testing.assert_close(gpu.cpu().double(), cpu.double(), rtol=RTOL[dtype],
                               atol=RTOL[dtype] * scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_a", [True, False])
@pytest.mark.parametrize("n,k", [(0, 5), (1, 1), (1000, 0), (4097, 257), (300_001, 1000)])
def test_matches_cpu_op(n, k, dtype, with_a):
    cpu = inputs(n, k, dtype, "cpu", with_a)
    gpu = [None if t is None else t.cuda() for t in cpu]
    x, m, b, a, g = cpu
    close(torch.ops.relu_ext.relu_sum(*gpu[:4]), torch.ops.relu_ext.relu_sum(x, m, b, a), dtype)
    for mask in ([True] * 4, [True, False, False, False], [False, True, True, True]):
        got = torch.ops.relu_ext.relu_sum_backward(gpu[4], *gpu[:4], mask)
        want = torch.ops.relu_ext.relu_sum_backward(g, x, m, b, a, mask)
        for gg, ww in zip(got, want):
            assert (gg is None) == (ww is None)
            if ww is not None:
                close(gg, ww, dtype)


def test_bitwise_deterministic():
    x, m, b, a, g = inputs(1 << 20, 512, torch.float32, "cuda")
    first = torch.ops.relu_ext.relu_sum_backward(g, x, m, b, a, [True] * 4)
    second = torch.ops.relu_ext.relu_sum_backward(g, x, m, b, a, [True] * 4)
    assert all(torch.equal(p, q) for p, q in zip(first, second))


def test_opcheck():
    x, m, b, a, g = inputs(999, 33, torch.float32, "cuda")
    torch.library.opcheck(torch.ops.relu_ext.relu_sum, (x, m, b, a))
    torch.library.opcheck(torch.ops.relu_ext.relu_sum_backward, (g, x, m, b, a, [True] * 4))


def test_torch_compile_fullgraph():
    x, m, b, a, _ = inputs(999, 33, torch.float32, "cuda")
    leaves = [t.clone().requires_grad_() for t in (x, m, b, a)]
    compiled = torch.compile(relu_ext.relu_sum, fullgraph=True)
    compiled(*leaves).sum().backward()
    eager = [t.clone().requires_grad_() for t in (x, m, b, a)]
    relu_ext.relu_sum(*eager).sum().backward()
    for c, e in zip(leaves, eager):
        torch.testing.assert_close(c.grad, e.grad)


def test_tensors_on_different_devices_are_refused():
    x, m, b, a, _ = inputs(10, 3, torch.float32, "cuda")
    with pytest.raises(ValueError, match="m must be on the device of x"):
        torch.ops.relu_ext.relu_sum(x, m.cpu(), b, a)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_runs_on_the_inputs_device():
    x, m, b, a, _ = inputs(1000, 7, torch.float32, "cuda:1")
    y = torch.ops.relu_ext.relu_sum(x, m, b, a)
    assert y.device == x.device
    close(y, torch.ops.relu_ext.relu_sum(x.cpu(), m.cpu(), b.cpu(), a.cpu()), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_autocast_trains_with_float32_parameter_gradients(dtype):
    # The mixed rule on the GPU: 16-bit x from an autocast Linear, float32 units.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), relu_ext.ReLUSum(8, algorithm="dense"),
                                torch.nn.Linear(16, 1)).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(256, 2, device="cuda")
    y = (x[:, :1] ** 2 - x[:, 1:]).abs()
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        with torch.autocast("cuda", dtype=dtype):
            out = model(x)
            assert model[1](model[0](x)).dtype == dtype
        loss = torch.nn.functional.mse_loss(out.float(), y)
        loss.backward()
        assert all(p.grad.dtype == torch.float32 for p in model[1].parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # And the values against the CPU op on the same mixed inputs.
    cpu = inputs(4097, 257, dtype, "cpu")
    cpu[1:4] = [t.float() for t in cpu[1:4]]
    gpu = [t.cuda() for t in cpu]
    close(relu_ext.relu_sum(*gpu[:4]), relu_ext.relu_sum(*cpu[:4]), dtype)
    for got, want in zip(torch.ops.relu_ext.relu_sum_backward(gpu[4], *gpu[:4], [True] * 4),
                         torch.ops.relu_ext.relu_sum_backward(cpu[4], *cpu[:4], [True] * 4)):
        assert got.dtype == want.dtype
        close(got, want, dtype)
