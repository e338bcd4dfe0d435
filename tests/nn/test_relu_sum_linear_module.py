"""ReLUSumLinear: parameters and initialisation, the forward against the
reference, gradients, drop-in use (Sequential, state_dict, pickling, the meta
device), bad arguments, to_piecewise / from_piecewise, from_knot_values /
edge_values and update_knots."""

import copy
import io
import pickle

import pytest
import torch

import relu_ext
from relu_ext import ReLUSumLinear
from relu_ext.ops import reference


def layer64(in_features=5, out_features=3, units=4, seed=0, **kwargs):
    torch.manual_seed(seed)
    return ReLUSumLinear(in_features, out_features, units, dtype=torch.float64, **kwargs)


def expected(layer, x):
    return reference.relu_sum_linear(x, layer.m, layer.b, layer.a, layer.bias)


# --- parameters and initialisation ---------------------------------------------------------

def test_parameters_shapes_and_repr():
    layer = ReLUSumLinear(5, 3, 4)
    assert [(n, tuple(p.shape)) for n, p in layer.named_parameters()] == [
        ("m", (5, 4)), ("b", (5, 4)), ("a", (3, 5, 4)), ("bias", (3,))]
    assert repr(layer) == "ReLUSumLinear(in_features=5, out_features=3, units=4, bias=True)"
    plain = ReLUSumLinear(5, 3, 4, bias=False, algorithm="dense")
    assert plain.bias is None and "bias" not in plain.state_dict()
    assert repr(plain) == ("ReLUSumLinear(in_features=5, out_features=3, units=4, bias=False, "
                           "algorithm='dense')")


def test_is_exported_where_the_other_modules_are():
    assert relu_ext.ReLUSumLinear is relu_ext.nn.ReLUSumLinear
    assert "ReLUSumLinear" in relu_ext.__all__ and "ReLUSumLinear" in relu_ext.nn.__all__


def test_breakpoints_start_on_a_grid_over_the_input_range_and_alternate_directions():
    layer = ReLUSumLinear(3, 2, 4, input_range=(-2.0, 6.0), dtype=torch.float64)
    # The middles of 4 equal cells of (-2, 6), for every input.
    grid = torch.tensor([-1.0, 1.0, 3.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(layer.breakpoints().detach(), grid.expand(3, 4))
    torch.testing.assert_close(layer.m.detach(),
                               torch.tensor([0.25, -0.25, 0.25, -0.25]).double().expand(3, 4))


def test_weights_and_bias_start_with_nn_linears_bounds():
    torch.manual_seed(0)
    layer = ReLUSumLinear(16, 300, 9)
    bound = 1 / (16 * 9) ** 0.5  # nn.Linear's over the I·K hinge features
    assert layer.a.abs().max() <= bound and layer.a.abs().max() > 0.95 * bound
    assert layer.bias.abs().max() <= 1 / 4 and layer.bias.abs().max() > 0.95 / 4
    # Random, so the edges start different from each other and nonlinear.
    assert layer.a.std() > 0.5 * bound


def test_initialisation_is_reproducible_and_reset_parameters_redraws():
    first, second = layer64(seed=3), layer64(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(first.parameters(), second.parameters()))
    torch.manual_seed(4)
    second.reset_parameters()
    assert torch.equal(second.m, first.m) and torch.equal(second.b, first.b)  # the grid
    assert not torch.equal(second.a, first.a)


def test_dtype_and_device_arguments(device, dtype):
    layer = ReLUSumLinear(4, 3, 5, dtype=dtype, device=device)
    assert all(p.dtype == dtype and p.device.type == device for p in layer.parameters())
    assert layer(torch.randn(2, 4, dtype=dtype, device=device)).shape == (2, 3)


# --- forward and backward -------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_forward_equals_the_reference(bias):
    layer = layer64(bias=bias)
    x = 2 * torch.randn(7, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), expected(layer, x))


def test_batch_dims():
    layer = layer64()
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (2, 3, 4, 3)
    torch.testing.assert_close(y, expected(layer, x))
    assert layer(x[0, 0, 0]).shape == (3,)  # one sample, no batch dim


def test_backward_reaches_every_parameter_and_the_input():
    layer = layer64()
    x = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    layer(x).pow(2).sum().backward()
    want = torch.autograd.grad(expected(layer, x).pow(2).sum(), [x, *layer.parameters()])
    for (name, got), grad in zip([("x", x), *layer.named_parameters()], want):
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(got.grad, grad, msg=name)


def test_a_drop_in_for_linear_and_relu_in_sequential():
    torch.manual_seed(0)
    net = torch.nn.Sequential(ReLUSumLinear(3, 6, 5), torch.nn.Linear(6, 2))
    x = torch.randn(64, 3)
    y = torch.stack([x[:, 0] * x[:, 1], x[:, 2].abs()], 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = []
    for _ in range(60):
        loss = (net(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# --- bad arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, message", [
    ((0, 3, 4), {}, r"in_features must be a positive int, but got 0"),
    ((2.0, 3, 4), {}, r"in_features must be a positive int, but got 2.0"),
    ((2, 0, 4), {}, r"out_features must be a positive int, but got 0"),
    ((2, 3, -1), {}, r"units must be a non-negative int, but got -1"),
    ((2, 3, True), {}, r"units must be a non-negative int, but got True"),
    ((2, 3, 4), {"input_range": (1.0, 1.0)}, r"input_range must be \(low, high\) with finite "
                                              r"low < high, but got \(1.0, 1.0\)"),
    ((2, 3, 4), {"input_range": (0.0, float("inf"))}, r"input_range .* but got \(0.0, inf\)"),
    ((2, 3, 4), {"input_range": 1.0}, r"input_range must be \(low, high\), two numbers, but got "
                                      r"1.0"),
    ((2, 3, 4), {"algorithm": "fast"}, r"algorithm must be one of 'auto', 'dense', "
                                       r"'breakpoints', but got 'fast'"),
])
def test_bad_arguments_name_the_argument(args, kwargs, message):
    with pytest.raises(ValueError, match=r"ReLUSumLinear\(\): " + message):
        ReLUSumLinear(*args, **kwargs)


# --- drop-in: saving, pickling, the meta device -------------------------------------------

def test_state_dict_round_trip():
    layer, other = layer64(seed=0), layer64(seed=1)
    other.load_state_dict(layer.state_dict())
    x = torch.randn(4, 5, dtype=torch.float64)
    assert torch.equal(other(x), layer(x))


def test_torch_save_pickle_and_deepcopy_round_trip():
    net = torch.nn.Sequential(layer64(), torch.nn.Linear(3, 1, dtype=torch.float64))
    x = torch.randn(4, 5, dtype=torch.float64)
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    for clone in (torch.load(buffer, weights_only=False), pickle.loads(pickle.dumps(net)),
                  copy.deepcopy(net)):
        torch.testing.assert_close(clone(x), net(x))
        assert repr(clone) == repr(net)


@pytest.mark.parametrize("algorithm", ["dense", "breakpoints"])
def test_torch_export_with_a_dynamic_batch(algorithm):
    torch.manual_seed(0)
    net = torch.nn.Sequential(ReLUSumLinear(3, 5, 4, algorithm=algorithm), torch.nn.Linear(5, 1))
    batch = torch.export.Dim("batch", min=2)
    exported = torch.export.export(net, (torch.randn(8, 3),), dynamic_shapes=({0: batch},))
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    op = "relu_sum_linear" if algorithm == "dense" else "relu_sum_linear_breakpoints"
    assert f"relu_ext.{op}.default" in targets
    for n in (8, 13):
        x = torch.randn(n, 3)
        torch.testing.assert_close(exported.module()(x), net(x))


def test_meta_device_gives_shapes_without_memory():
    layer = ReLUSumLinear(5, 3, 4, device="meta")
    assert all(p.device.type == "meta" for p in layer.parameters())
    y = layer(torch.randn(7, 2, 5, device="meta"))
    assert y.device.type == "meta" and y.shape == (7, 2, 3)
    layer.to_empty(device="cpu")
    layer.reset_parameters()  # materialised as a layer built on the CPU
    torch.manual_seed(0)
    twin = ReLUSumLinear(5, 3, 4)
    assert torch.equal(layer.m, twin.m) and torch.equal(layer.b, twin.b)


# --- to_piecewise / from_piecewise ---------------------------------------------------------

def evaluate_edges(pw, x):
    """y[..., o] = bias[o] + Σ_i edge(o, i)(x[..., i]) from the intervals."""
    outputs, inputs = pw.slopes.shape[:2]
    y = pw.bias.expand(*x.shape[:-1], outputs).clone()
    for o in range(outputs):
        for i in range(inputs):
            edge = pw.edge(o, i)
            k = torch.searchsorted(edge.breakpoints, x[..., i].contiguous())
            y[..., o] += edge.slopes[k] * x[..., i] + edge.intercepts[k]
    return y


def random_layer(seed=0, **kwargs):
    layer = layer64(4, 3, 5, seed=seed, **kwargs)
    with torch.no_grad():  # breakpoints and slopes of every sign and size
        layer.m.copy_(torch.randn(4, 5))
        layer.b.copy_(torch.randn(4, 5))
    return layer


def test_to_piecewise_gives_every_edge_and_computes_the_layer():
    layer = random_layer()
    pw = layer.to_piecewise()
    assert isinstance(pw, relu_ext.nn.LayerPiecewise)
    assert pw._fields == ("breakpoints", "slopes", "intercepts", "bias")
    assert pw.breakpoints.shape == (3, 4, 5) and pw.slopes.shape == (3, 4, 6)
    assert pw.intercepts.shape == (3, 4, 6) and pw.bias.shape == (3,)
    # Edge (o, i) is the ReLUSum of units m[i], b[i] with weights a[o, i].
    single = relu_ext.ReLUSum(5, dtype=torch.float64)
    with torch.no_grad():
        single.m.copy_(layer.m[2])
        single.b.copy_(layer.b[2])
        single.a.copy_(layer.a[1, 2])
    for got, want in zip(pw.edge(1, 2), single.to_piecewise()):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    x = 4 * torch.randn(200, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(evaluate_edges(pw, x), layer(x), rtol=0, atol=1e-12)


def test_inputs_with_fewer_kinks_are_padded_with_nan():
    layer = random_layer(bias=False)
    with torch.no_grad():
        layer.b[1, :3] = -layer.m[1, :3] * 0.5  # three units of input 1 bend at 0.5
        layer.m[3] = 0.0  # input 3: constants only
    pw = layer.to_piecewise()
    assert torch.isnan(pw.breakpoints[:, 1, 3:]).all()
    assert not torch.isnan(pw.breakpoints[:, 1, :3]).any()
    assert torch.isnan(pw.breakpoints[:, 3]).all()
    assert torch.equal(pw.bias, torch.zeros(3, dtype=torch.float64))
    assert pw.edge(0, 1).breakpoints.shape == (3,) and pw.edge(0, 3).slopes.shape == (1,)
    x = 3 * torch.randn(100, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(evaluate_edges(pw, x), layer(x), rtol=0, atol=1e-12)
        rebuilt = ReLUSumLinear.from_piecewise(*pw)
        torch.testing.assert_close(rebuilt(x), layer(x), rtol=0, atol=1e-6)


def test_round_trip_layer_to_piecewise_and_back():
    layer = random_layer()
    pw = layer.to_piecewise()
    rebuilt = ReLUSumLinear.from_piecewise(*pw)
    assert (rebuilt.in_features, rebuilt.out_features, rebuilt.units) == (4, 3, 6)
    assert rebuilt.m.dtype == torch.float64
    x = 5 * torch.randn(500, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), layer(x), rtol=0, atol=1e-6)
        again = rebuilt.to_piecewise()
        torch.testing.assert_close(evaluate_edges(again, x), evaluate_edges(pw, x), rtol=0,
                                   atol=1e-6)
        torch.testing.assert_close(again.breakpoints, pw.breakpoints, rtol=0, atol=1e-6)


def test_round_trip_piecewise_to_layer_and_back():
    t = torch.tensor([[[-1.0, 0.5], [2.0, float("nan")]]], dtype=torch.float64)  # O=1, I=2
    slopes = torch.tensor([[[0.0, 2.0, -1.0], [1.0, -3.0, -3.0]]], dtype=torch.float64)
    intercepts = torch.tensor([[[1.0, 3.0, 4.5], [0.0, 8.0, 8.0]]], dtype=torch.float64)
    layer = ReLUSumLinear.from_piecewise(t, slopes, intercepts, torch.tensor([0.5]))
    pw = layer.to_piecewise()
    # Where input 1 has a padding unit, it bends nowhere: the kinks are those given.
    torch.testing.assert_close(pw.edge(0, 0).breakpoints, t[0, 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(pw.edge(0, 1).breakpoints, t[0, 1, :1], rtol=0, atol=1e-12)
    x = torch.tensor([[-2.0, 1.0], [0.0, 3.0], [1.0, 2.0]], dtype=torch.float64)
    given = relu_ext.nn.LayerPiecewise(t, slopes, intercepts, torch.tensor([0.5]).double())
    with torch.no_grad():
        torch.testing.assert_close(layer(x), evaluate_edges(given, x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("change, message", [
    (lambda t, s, i: (t[..., :1], s, i), r"shape \(O, I, P\) .* \(O, I, P \+ 1\)"),
    (lambda t, s, i: (t.flip(-1), s, i), "sorted and distinct"),
    (lambda t, s, i: (t, s + torch.rand_like(s), i), "the lines must meet at the breakpoints"),
    (lambda t, s, i: (torch.cat([t, t + 0.1]), torch.cat([s, s]), torch.cat([i, i])),
     "the same for every output o"),
    (lambda t, s, i: (t, s.clone().index_fill_(-1, torch.tensor([0]), float("inf")), i),
     "must be finite"),
])
def test_from_piecewise_rejects_what_is_not_a_layer_of_continuous_edges(change, message):
    pw = random_layer().to_piecewise()
    with pytest.raises(ValueError, match=message):
        ReLUSumLinear.from_piecewise(*change(pw.breakpoints, pw.slopes, pw.intercepts))


def test_from_piecewise_rejects_a_bias_of_the_wrong_shape():
    pw = random_layer().to_piecewise()
    with pytest.raises(ValueError, match=r"bias of shape \(O,\) = \[3\], but got \[4\]"):
        ReLUSumLinear.from_piecewise(*pw[:3], torch.zeros(4))


# --- from_knot_values / edge_values ----------------------------------------------------------

def interpolate(knots, values, x):
    """np.interp with the end segments continued: the edge through (knots, values) at x."""
    k = torch.searchsorted(knots, x.contiguous()).clamp(1, len(knots) - 1)
    left, right = knots[k - 1], knots[k]
    w = (x - left) / (right - left)
    return values[k - 1] * (1 - w) + values[k] * w


def knot_layer_arguments(seed=0):
    g = torch.Generator().manual_seed(seed)
    knots = torch.stack([torch.tensor([-1.0, -0.25, 0.0, 0.5, 2.0]),
                         torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]),
                         torch.tensor([-3.0, -2.9, 5.0, 6.0, 9.0])]).double()  # I = 3, K = 5
    values = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)  # O = 2
    return knots, values, torch.tensor([0.5, -1.0], dtype=torch.float64)


def test_from_knot_values_passes_through_the_points_and_continues_the_end_lines():
    knots, values, bias = knot_layer_arguments()
    layer = ReLUSumLinear.from_knot_values(knots, values, bias)
    assert (layer.in_features, layer.out_features, layer.units) == (3, 2, 5)
    assert layer.m.dtype == torch.float64
    with torch.no_grad():
        # Each edge's constant is in the bias: its units are 0 at its first knot.
        torch.testing.assert_close(layer.edge_values(knots.T).permute(1, 2, 0),
                                   values - values[..., :1], rtol=0, atol=1e-12)
        torch.testing.assert_close(layer.bias, bias + values[..., 0].sum(1), rtol=0, atol=1e-12)
        # Between the knots, and beyond them on both sides (the end segments' lines).
        x = torch.stack([torch.linspace(-4, 4, 301), torch.linspace(-2, 6, 301),
                         torch.linspace(-6, 12, 301)], 1).double()
        want = bias + torch.stack([sum(interpolate(knots[i], values[o, i], x[:, i])
                                       for i in range(3)) for o in range(2)], 1)
        torch.testing.assert_close(layer(x), want, rtol=0, atol=1e-12)
    # The forward's kernels see an ordinary layer: its kinks are the inner knots.
    pw = layer.to_piecewise()
    for i in range(3):
        kinks = pw.edge(0, i).breakpoints
        assert torch.all(torch.isin(knots[i, 1:-1], kinks))


def test_from_knot_values_refines_a_grid_keeping_the_function():
    knots, values, bias = knot_layer_arguments(1)
    coarse = ReLUSumLinear.from_knot_values(knots, values, bias)
    # Each cell cut in three: the new knots include the old, so nothing changes.
    fine = torch.cat([torch.stack([torch.lerp(knots[:, :-1], knots[:, 1:], w)
                                   for w in (0.0, 1 / 3, 2 / 3)], -1).flatten(1),
                      knots[:, -1:]], 1)
    with torch.no_grad():
        refined = ReLUSumLinear.from_knot_values(fine, coarse.edge_values(fine.T).permute(1, 2, 0),
                                                 coarse.bias)
        assert refined.units == 13
        x = 6 * torch.randn(500, 3, dtype=torch.float64)
        torch.testing.assert_close(refined(x), coarse(x), rtol=0, atol=1e-12)


def test_from_knot_values_dtype_kwargs_and_without_bias():
    knots, values, _ = knot_layer_arguments()
    layer = ReLUSumLinear.from_knot_values(knots.tolist(), values.float(), algorithm="dense")
    assert layer.m.dtype == torch.float32 and layer.algorithm == "dense"
    with torch.no_grad():  # sample k at every input's k-th knot: Σ_i values[o, i, k]
        torch.testing.assert_close(layer(knots.T.float()), values.float().sum(1).T,
                                   rtol=1e-5, atol=1e-4)
    assert ReLUSumLinear.from_knot_values(knots, values, dtype=torch.float32).a.dtype \
        == torch.float32


def test_edge_values_are_what_the_layer_adds_up():
    layer = random_layer()
    x = 3 * torch.randn(7, 2, 4, dtype=torch.float64)
    edges = layer.edge_values(x)
    assert edges.shape == (7, 2, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(layer.bias + edges.sum(-1), layer(x), rtol=0, atol=1e-12)
    # Edge (o, i) is a function of x[..., i] alone.
    moved = x.clone()
    moved[..., 1] += 1
    changed = (layer.edge_values(moved) - edges).abs().amax((0, 1, 2)) > 0
    assert changed.tolist() == [False, True, False, False]
    edges.sum().backward()
    assert layer.a.grad is not None and layer.m.grad is not None


@pytest.mark.parametrize("change, message", [
    (lambda k, v, b: (k[0], v, b), r"knots must have shape \(I, K\) with K >= 2, but got \[5\]"),
    (lambda k, v, b: (k[:, :1], v[..., :1], b), r"knots must have shape \(I, K\) with K >= 2"),
    (lambda k, v, b: (k, v[:, :2], b), r"values must have shape \(O, I, K\) with O >= 1 and "
                                       r"\(I, K\) = \[3, 5\], knots' shape, but got \[2, 2, 5\]"),
    (lambda k, v, b: (k, v[:0], b), r"values must have shape \(O, I, K\) with O >= 1"),
    (lambda k, v, b: (k, v, b[:1]), r"bias must have shape \(O,\) = \[2\], but got \[1\]"),
    (lambda k, v, b: (k.flip(1), v, b), r"each input's knots \(each row\) must be sorted and "
                                        r"distinct"),
    (lambda k, v, b: (torch.cat([k[:, :1], k[:, :-1]], 1), v, b), "each input.s knots .* distinct"),
    (lambda k, v, b: (k.index_fill(1, torch.tensor([4]), float("inf")), v, b),
     "knots must be finite"),
    (lambda k, v, b: (k, v.index_fill(2, torch.tensor([1]), float("nan")), b),
     "values and bias must be finite"),
])
def test_from_knot_values_rejects_bad_arguments_naming_them(change, message):
    with pytest.raises(ValueError, match=r"from_knot_values\(\): " + message):
        ReLUSumLinear.from_knot_values(*change(*knot_layer_arguments()))


@pytest.mark.parametrize("x, error, message", [
    ([[0.0, 1.0, 2.0, 3.0]], TypeError, "x must be a tensor, but got list"),
    (torch.zeros(5, 3), ValueError, r"x must have shape \(..., I\) with I = in_features = 4, "
                                    r"but got \[5, 3\]"),
    (torch.tensor(1.0), ValueError, r"x must have shape \(..., I\)"),
])
def test_edge_values_rejects_what_is_not_a_batch_of_inputs(x, error, message):
    with pytest.raises(error, match=r"edge_values\(\): " + message):
        random_layer().edge_values(x)


# --- update_knots ----------------------------------------------------------------------------

def skewed_inputs(n=4000, seed=1):
    """Inputs far from the initial grid over (-1, 1): each its own location and scale."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return torch.stack([z[:, 0], 3 + 0.5 * z[:, 1], z[:, 2].exp(), 10 * z[:, 3]], 1)


def test_update_knots_puts_the_breakpoints_at_the_quantiles():
    layer = random_layer()
    x = skewed_inputs()
    layer.update_knots(x)
    levels = (torch.arange(5, dtype=torch.float64) + 0.5) / 5
    want = torch.quantile(x, levels, dim=0).T  # (I, K)
    got = layer.breakpoints().detach().sort(dim=1).values
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_update_knots_keeps_the_units_order_and_slopes():
    layer = random_layer()
    with torch.no_grad():
        layer.m[0, 0] = 0.0  # no breakpoint: it gets one, opening right
    m, order = layer.m.detach().clone(), layer.breakpoints().detach().argsort(dim=1)
    layer.update_knots(skewed_inputs())
    assert layer.m[0, 0] == 1.0
    assert torch.equal(layer.m[:, 1:], m[:, 1:])
    assert torch.equal(layer.breakpoints().detach().argsort(dim=1)[1:], order[1:])


def test_update_knots_keeps_the_function_when_the_new_knots_can_write_it():
    # Units already at the data's quantiles (each input's in another order,
    # with slopes of either sign and any size): each stays where it is, and
    # the least squares give back the very function.
    x = skewed_inputs()
    layer = random_layer()
    levels = (torch.arange(5, dtype=torch.float64) + 0.5) / 5
    t = torch.quantile(x, levels, dim=0).T
    shuffled = torch.stack([t[i, torch.randperm(5)] for i in range(4)])
    with torch.no_grad():
        layer.b.copy_(-layer.m * shuffled)
    before = layer(x).detach()
    layer.update_knots(x)
    torch.testing.assert_close(layer.breakpoints().detach(), shuffled)
    torch.testing.assert_close(layer(x).detach(), before, rtol=0, atol=1e-9)
    a = layer.a.detach().clone()
    layer.update_knots(x)  # nothing moves a second time
    torch.testing.assert_close(layer.a.detach(), a, rtol=0, atol=1e-9)


def test_update_knots_changes_the_output_on_the_data_little():
    layer = random_layer()
    x = skewed_inputs()
    before = layer(x).detach()
    layer.update_knots(x)
    after = layer(x).detach()
    # The random layer bends anywhere; on the new knots it is its least-squares
    # approximation over the samples: close on them, relative to its spread.
    error = (after - before).pow(2).mean(0).sqrt()
    spread = before.std(0)
    assert (error < 0.1 * spread).all(), (error / spread).tolist()


def test_update_knots_without_bias_and_with_batch_dims():
    layer = random_layer(bias=False)
    x = skewed_inputs().reshape(40, 100, 4)
    layer.update_knots(x)
    assert layer.bias is None
    levels = (torch.arange(5, dtype=torch.float64) + 0.5) / 5
    want = torch.quantile(x.reshape(-1, 4), levels, dim=0).T
    torch.testing.assert_close(layer.breakpoints().detach().sort(dim=1).values, want)


def test_update_knots_on_a_constant_input_keeps_the_function():
    layer = random_layer()
    x = skewed_inputs()
    x[:, 2] = 0.7  # a pixel that is always blank, say
    before = layer(x).detach()
    layer.update_knots(x)
    torch.testing.assert_close(layer.breakpoints()[2].detach(),
                               torch.full((5,), 0.7, dtype=torch.float64))
    assert torch.isfinite(layer.a).all()
    error = (layer(x).detach() - before).pow(2).mean(0).sqrt()
    assert (error < 0.1 * before.std(0)).all()


@pytest.mark.parametrize("x, error, message", [
    (torch.zeros(10, 3), ValueError, r"x must have shape \(..., I\) with I = in_features = 4 .* "
                                     r"but got \[10, 3\]"),
    (torch.zeros(0, 4), ValueError, r"x must have shape .* at least one sample, but got \[0, 4\]"),
    ([[0.0] * 4], TypeError, "x must be a tensor, but got list"),
])
def test_update_knots_rejects_what_is_not_a_batch_of_inputs(x, error, message):
    with pytest.raises(error, match=r"update_knots\(\): " + message):
        random_layer().update_knots(x)


def test_update_knots_in_chunks_of_inputs_gives_the_same_layer(monkeypatch):
    from relu_ext.nn import _knots

    whole, chunked = random_layer(), random_layer()
    x = skewed_inputs()
    whole.update_knots(x)
    monkeypatch.setattr(_knots, "_CHUNK_ELEMENTS", 1)  # one input at a time
    chunked.update_knots(x)
    for (name, p), q in zip(whole.named_parameters(), chunked.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-12, msg=name)
