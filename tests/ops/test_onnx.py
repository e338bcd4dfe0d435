"""torch.onnx.export(dynamo=True) of models with ReLUSum or relu_sum: a graph of
standard ONNX ops (relu_ext/ops/_onnx.py) that onnxruntime runs, at batch sizes
other than the example's, to the module's result."""

import pytest
import torch
from torch import nn

import relu_ext
from relu_ext.ops import choose_algorithm

ALGORITHMS = ["dense", "breakpoints", "auto"]


class Functional(nn.Module):
    """A user's module that calls the functional relu_sum on its own parameters."""

    def __init__(self, units, out_weights, algorithm):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.m, self.b = nn.Parameter(torch.randn(units)), nn.Parameter(torch.randn(units))
        self.a = nn.Parameter(torch.randn(units)) if out_weights else None
        self.algorithm = algorithm

    def forward(self, x):
        return relu_ext.relu_sum(self.linear(x), self.m, self.b, self.a, algorithm=self.algorithm)


MODELS = {
    "ReLUSum": lambda out_weights, algorithm: relu_ext.ReLUSum(
        6, out_weights=out_weights, algorithm=algorithm),
    "Sequential": lambda out_weights, algorithm: nn.Sequential(
        nn.Linear(3, 5), relu_ext.ReLUSum(6, out_weights=out_weights, algorithm=algorithm),
        nn.Linear(5, 2)),
    "functional": lambda out_weights, algorithm: Functional(6, out_weights, algorithm),
}


def export(model, x):
    """The ONNX program of model, with the first dimension of x dynamic."""
    batch = torch.export.Dim("batch")
    return torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: batch},),
                             verbose=False)


def run_onnxruntime(program, x):
    """The exported model's output for x, from a fresh onnxruntime session."""
    # Imported here, not at collection: onnxruntime starts threads whose exit
    # ThreadSanitizer reports (make test-tsan collects every test module).
    import onnxruntime

    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return torch.from_numpy(output)


def assert_standard_onnx(program):
    """Only ops of the default ONNX domain, and no functions that could hide others."""
    proto = program.model_proto
    domains = {node.domain for node in proto.graph.node}
    assert domains <= {"", "ai.onnx"}, f"non-standard ops: {domains}"
    assert not proto.functions
    assert not any("relu_ext" in node.op_type for node in proto.graph.node)


@pytest.mark.parametrize("out_weights", [True, False], ids=["with_a", "without_a"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("kind", MODELS)
def test_export_runs_in_onnxruntime_at_any_batch_size(kind, algorithm, out_weights):
    torch.manual_seed(0)
    model = MODELS[kind](out_weights, algorithm).eval()
    program = export(model, torch.randn(8, 3))
    assert_standard_onnx(program)
    for n in (8, 13, 1):
        x = 2 * torch.randn(n, 3)
        with torch.no_grad():
            expected = model(x)
        torch.testing.assert_close(run_onnxruntime(program, x), expected, rtol=1e-4, atol=1e-4)


class WithFunction(Functional):
    """The same through the autograd.Function, ReLUSumFunction."""

    def forward(self, x):
        return relu_ext.ReLUSumFunction.apply(self.linear(x), self.m, self.b, self.a)


@pytest.mark.parametrize("out_weights", [True, False], ids=["with_a", "without_a"])
def test_relu_sum_function_exports_too(out_weights):
    torch.manual_seed(0)
    model = WithFunction(6, out_weights, "dense").eval()
    program = export(model, torch.randn(8, 3))
    assert_standard_onnx(program)
    x = 2 * torch.randn(13, 3)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(run_onnxruntime(program, x), expected, rtol=1e-4, atol=1e-4)


# torch recommends dynamic_shapes over dynamic_axes; the old form must work too.
@pytest.mark.filterwarnings("ignore:# 'dynamic_axes' is not recommended")
@pytest.mark.filterwarnings("ignore:from_dynamic_axes_to_dynamic_shapes is deprecated")
def test_dynamic_axes_as_the_torchscript_exporter_took_them():
    torch.manual_seed(0)
    model = MODELS["Sequential"](True, "auto").eval()
    program = torch.onnx.export(model, (torch.randn(8, 3),), dynamo=True, verbose=False,
                                input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    assert_standard_onnx(program)
    x = 2 * torch.randn(21, 3)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(run_onnxruntime(program, x), expected, rtol=1e-4, atol=1e-4)


def test_auto_at_a_size_where_it_runs_the_breakpoint_kernels():
    torch.manual_seed(0)
    model = relu_ext.ReLUSum(512).eval()
    x = torch.randn(20_000)
    assert choose_algorithm("auto", x, model.m) == "breakpoints"
    program = export(model, x[:100])
    assert_standard_onnx(program)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(run_onnxruntime(program, x), expected, rtol=1e-4, atol=1e-4)


def test_float64_matches_the_reference():
    torch.manual_seed(0)
    model = relu_ext.ReLUSum(16, dtype=torch.float64).eval()
    program = export(model, torch.randn(8, 3, dtype=torch.float64))
    x = 3 * torch.randn(50, 3, dtype=torch.float64)
    with torch.no_grad():
        expected = relu_ext.reference.relu_sum(x, model.m, model.b, model.a)
    output = run_onnxruntime(program, x)
    assert output.dtype == torch.float64
    torch.testing.assert_close(output, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 1e-3), (torch.bfloat16, 8e-3)])
def test_16_bit_computed_in_float32_like_the_kernels(dtype, tolerance):
    torch.manual_seed(0)
    model = relu_ext.ReLUSum(16, dtype=dtype).eval()
    program = export(model, torch.randn(8, 3, dtype=dtype))
    assert_standard_onnx(program)
    x = (2 * torch.randn(50, 3)).to(dtype)
    # numpy has no bfloat16: ONNXProgram hands torch tensors to onnxruntime itself.
    (output,) = program(x)
    with torch.no_grad():
        expected = model(x)
    assert output.dtype == dtype
    # Both sum in float32 and round once, so they differ by at most a rounding.
    torch.testing.assert_close(output, expected, rtol=tolerance, atol=tolerance)


def test_bad_parameters_are_reported_in_relu_sums_words():
    model = Functional(4, True, "auto").eval()
    model.m = nn.Parameter(torch.randn(2, 2, 4))  # 2-D is per-channel, 3-D is wrong
    with pytest.raises(Exception, match=r"relu_sum\(\): m must be 1-D"):
        export(model, torch.randn(8, 3))


def test_bad_algorithm_is_reported():
    model = Functional(4, True, "fast").eval()
    with pytest.raises(Exception, match=r"relu_sum\(\): algorithm must be one of"):
        export(model, torch.randn(8, 3))


@pytest.mark.parametrize("strict", [False, True], ids=["non_strict", "strict"])
def test_torch_export_outside_onnx_keeps_the_fused_op(strict):
    model = relu_ext.ReLUSum(6).eval()
    exported = torch.export.export(model, (torch.randn(8),), strict=strict)

    def targets(program):
        return {str(node.target) for node in program.graph.nodes if node.op == "call_function"}

    # The op that chooses the algorithm when run; decomposed, the one it chose.
    assert targets(exported) == {"relu_ext.relu_sum_auto.default"}
    assert targets(exported.run_decompositions()) == {"relu_ext.relu_sum.default"}
    x = torch.randn(8)
    assert torch.equal(exported.module()(x), model(x))


@pytest.mark.parametrize("shape, dim", [((8, 3, 5), 1), ((8, 5, 3), -1)], ids=str)
def test_per_channel_units_export_with_their_dim(shape, dim):
    torch.manual_seed(0)
    model = relu_ext.ReLUSum(4, channels=3, dim=dim).eval()
    with torch.no_grad():
        model.a.normal_()  # not only the relu it starts as
    program = export(model, torch.randn(shape))
    assert_standard_onnx(program)
    x = torch.randn(11, *shape[1:])
    (output,) = program(x)
    with torch.no_grad():
        torch.testing.assert_close(output, model(x))
