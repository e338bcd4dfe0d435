"""ReLUSum dropped into ordinary PyTorch code: export, inference mode, the meta
device, saving and pickling, in a model of standard layers."""

import copy
import io
import pickle

import pytest
import torch

import relu_ext


def model(algorithm="auto"):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), relu_ext.ReLUSum(6, algorithm=algorithm),
                               torch.nn.Linear(5, 1))


@pytest.mark.parametrize("algorithm", ["dense", "breakpoints"])
def test_torch_export_with_a_dynamic_batch(algorithm):
    net = model(algorithm)
    x = torch.randn(8, 3)
    batch = torch.export.Dim("batch", min=2)
    exported = torch.export.export(net, (x,), dynamic_shapes=({0: batch},))
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert f"relu_ext.{'relu_sum' if algorithm == 'dense' else 'relu_sum_breakpoints'}.default" in targets
    for n in (8, 13):
        x = torch.randn(n, 3)
        torch.testing.assert_close(exported.module()(x), net(x))


def test_inference_mode():
    net = model()
    x = torch.randn(4, 3)
    with torch.inference_mode():
        y = net(x)
    assert y.is_inference() and not y.requires_grad
    torch.testing.assert_close(y, net(x).detach())


def test_meta_device_gives_shapes_without_memory():
    net = model().to("meta")
    y = net(torch.randn(7, 3, device="meta"))
    assert y.device.type == "meta" and y.shape == (7, 1)
    assert relu_ext.ReLUSum(4, device="meta").m.device.type == "meta"


def test_torch_save_pickle_and_deepcopy_round_trip():
    net = model()
    x = torch.randn(4, 3)
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    for clone in (torch.load(buffer, weights_only=False), pickle.loads(pickle.dumps(net)),
                  copy.deepcopy(net)):
        torch.testing.assert_close(clone(x), net(x))
