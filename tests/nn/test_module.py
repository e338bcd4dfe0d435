"""ReLUSum as an nn.Module: parameters, initialisation, devices and dtypes, training."""

import pytest
import torch

import relu_ext


def test_parameters_and_repr():
    module = relu_ext.ReLUSum(8)
    assert [name for name, _ in module.named_parameters()] == ["m", "b", "a"]
    assert all(p.shape == (8,) for p in module.parameters())
    assert repr(module) == "ReLUSum(units=8, out_weights=True)"
    plain = relu_ext.ReLUSum(8, out_weights=False)
    assert plain.a is None
    assert [name for name, _ in plain.named_parameters()] == ["m", "b"]


@pytest.mark.parametrize("out_weights", [True, False])
def test_breakpoints_start_inside_the_input_range(out_weights):
    torch.manual_seed(0)
    module = relu_ext.ReLUSum(1000, out_weights=out_weights, input_range=(-2.0, 5.0))
    t = module.breakpoints().detach()
    assert t.min() >= -2.0 and t.max() <= 5.0
    assert t.min() < -1.5 and t.max() > 4.5  # spread over the whole range
    assert (module.m > 0).any() and (module.m < 0).any()  # units open to both sides


def test_initialisation_is_reproducible_with_manual_seed():
    torch.manual_seed(3)
    first = relu_ext.ReLUSum(16).state_dict()
    torch.manual_seed(3)
    second = relu_ext.ReLUSum(16).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_dtype_and_device_arguments(device, dtype):
    module = relu_ext.ReLUSum(4, dtype=dtype, device=device)
    assert all(p.dtype == dtype and p.device.type == device for p in module.parameters())
    x = torch.randn(3, 5, dtype=dtype, device=device)
    assert module(x).shape == (3, 5)


def test_matches_reference_and_state_dict_round_trip():
    module = relu_ext.ReLUSum(12, dtype=torch.float64)
    x = torch.randn(4, 9, dtype=torch.float64)
    expected = relu_ext.reference.relu_sum(x, module.m, module.b, module.a)
    torch.testing.assert_close(module(x), expected)
    clone = relu_ext.ReLUSum(12, dtype=torch.float64)
    clone.load_state_dict(module.state_dict())
    assert torch.equal(clone(x), module(x))


def test_is_a_drop_in_activation():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), relu_ext.ReLUSum(6), torch.nn.Linear(5, 1))
    x = torch.randn(64, 3)
    loss = net(x).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())
    # Every layer's gradient is the one of the same network with the reference's
    # sum in ReLUSum's place: the gradient flows through the module, not around it.
    act = net[1]
    want = net[2](relu_ext.reference.relu_sum(net[0](x), act.m, act.b, act.a)).pow(2).mean()
    grads = torch.autograd.grad(want, list(net.parameters()))
    torch.testing.assert_close(loss, want)
    for (name, p), g in zip(net.named_parameters(), grads):
        assert g.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, g, msg=name)


def test_a_few_sgd_steps_reduce_the_loss():
    torch.manual_seed(0)
    x = torch.linspace(-2, 2, 20)
    y = 3 * x**2 + 2 * x + 1
    module = relu_ext.ReLUSum(16, input_range=(-2.0, 2.0))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    losses = []
    for _ in range(50):
        optimizer.zero_grad()
        loss = (module(x) - y).abs().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
