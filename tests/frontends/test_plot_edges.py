"""relu_ext.plot.plot_edges: a ReLUSumLinear's edges as a grid of small plots,
on the Agg canvas."""

import pytest
import torch

import relu_ext
from relu_ext.plot import MAX_EDGES_SHOWN, plot_edges, save_edges_plot

pytest.importorskip("matplotlib", reason="relu_ext.plot needs matplotlib")


def layer(in_features=3, out_features=2, units=4, seed=0):
    torch.manual_seed(seed)
    return relu_ext.ReLUSumLinear(in_features, out_features, units, dtype=torch.float64)


def edge(layer, o, i, x):
    """Edge (o, i) at x, as the ReLUSum of its units would compute it."""
    return relu_ext.reference.relu_sum(x, layer.m[i], layer.b[i], layer.a[o, i]).detach()


def curve(ax):
    """The edge's line: the first, solid one of the panel."""
    line = ax.lines[0]
    return (torch.as_tensor(line.get_xdata(), dtype=torch.float64),
            torch.as_tensor(line.get_ydata(), dtype=torch.float64))


def test_one_panel_per_edge_drawing_that_edges_function():
    net = layer()
    fig = plot_edges(net)
    assert len(fig.axes) == 2 * 3
    for r in range(2):
        for c in range(3):
            ax = fig.axes[r * 3 + c]
            assert ax.get_title() == f"{r} ← {c}"
            x, y = curve(ax)
            assert x[0] == -1.0 and x[-1] == 1.0  # the layer's input_range
            torch.testing.assert_close(y, edge(net, r, c, x))


def test_breakpoints_are_marked_on_each_panel():
    net = layer()
    ax = plot_edges(net).axes[4]  # edge (1, 1)
    marks = torch.as_tensor(ax.lines[1].get_xdata(), dtype=torch.float64)
    torch.testing.assert_close(marks, net.breakpoints()[1].detach())


def test_a_subset_of_outputs_and_inputs():
    net = layer(6, 5)
    fig = plot_edges(net, outputs=[4, 0], inputs=[5])
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["4 ← 5", "0 ← 5"]
    x, y = curve(fig.axes[0])
    torch.testing.assert_close(y, edge(net, 4, 5, x))


def test_a_large_layer_shows_its_most_varied_edges():
    net = layer(20, 12)
    with torch.no_grad():
        net.a[7] *= 100  # output 7's edges
        net.a[:, 13] *= 50  # input 13's edges
    fig = plot_edges(net)
    assert len(fig.axes) == MAX_EDGES_SHOWN * MAX_EDGES_SHOWN
    titles = [ax.get_title() for ax in fig.axes]
    rows = sorted({int(t.split(" ← ")[0]) for t in titles})
    cols = sorted({int(t.split(" ← ")[1]) for t in titles})
    assert len(rows) == len(cols) == MAX_EDGES_SHOWN
    assert 7 in rows and 13 in cols


def test_with_data_each_column_spans_its_input_and_gets_a_rug():
    net = layer()
    x = torch.stack([torch.linspace(-3, 3, 50), torch.linspace(0, 10, 50),
                     torch.linspace(5, 6, 50)], 1).double()
    fig = plot_edges(net, x=x)
    for c, (low, high) in enumerate([(-3, 3), (0, 10), (5, 6)]):
        grid, y = curve(fig.axes[c])
        pad = 0.05 * (high - low)
        assert grid[0].item() == pytest.approx(low - pad)
        assert grid[-1].item() == pytest.approx(high + pad)
        torch.testing.assert_close(y, edge(net, 0, c, grid))
        rug = fig.axes[c].lines[2]
        torch.testing.assert_close(torch.as_tensor(rug.get_xdata()), x[:, c])


def test_x_range_and_saving(tmp_path):
    net = layer()
    grid, _ = curve(plot_edges(net, x_range=(-4, 2)).axes[0])
    assert (grid[0].item(), grid[-1].item()) == (-4.0, 2.0)
    save_edges_plot(tmp_path / "edges.png", net)
    assert (tmp_path / "edges.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, message", [
    ({"outputs": [2]},
     r"outputs must be a non-empty sequence of indices in \[0, 2\), but got \[2\]"),
    ({"inputs": []}, r"inputs must be a non-empty sequence of indices in \[0, 3\)"),
    ({"x_range": (1, 1)}, r"x_range must be \(low, high\) with low < high, but got \(1, 1\)"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=r"plot_edges\(\): " + message):
        plot_edges(layer(), **kwargs)


def test_the_rug_of_a_large_data_set_is_thinned():
    net = layer()
    x = torch.randn(5000, 3, dtype=torch.float64)
    rug = plot_edges(net, x=x, outputs=[0], inputs=[1]).axes[0].lines[2]
    torch.testing.assert_close(torch.as_tensor(rug.get_xdata()), x[::5, 1])
