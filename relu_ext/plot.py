"""Pictures of a fit: how the sum of rectified lines makes the curve, and the
edge functions of a ``ReLUSumLinear`` layer.

Built on ``matplotlib.figure.Figure`` with the Agg canvas rather than pyplot,
so it needs no display, leaves pyplot's global state and backend alone, and
works the same in a script, a test or a notebook (which shows a returned
Figure). matplotlib is an optional dependency, imported when a picture is
drawn: neither ``import relu_ext`` nor ``import relu_ext.plot`` loads it.
"""

import math

import torch

from .curve import CurveSummary

# 10 x 4 inches at 100 dpi: a 1000 x 400 pixel PNG.
FIGSIZE = (10.0, 4.0)
DPI = 100
_GRID_POINTS = 400


@torch.no_grad()
def plot_fit(model, x, y, *, history=None, true_fn=None, true_label="true function",
             title=None, summary=None):
    """A Figure with the data, the fitted curve and each unit's contribution
    ``a_k·relu(m_k·x + b_k)`` (faint, with its breakpoint marked) on the left,
    and the loss per epoch (with the learning rate) on the right when a
    ``History`` is given.

    ``model`` is a ``ReLUSum``; ``x``, ``y`` the data it was fitted to;
    ``true_fn`` the noiseless function, drawn dashed when known.

    ``summary``, one curve's :class:`~relu_ext.curve.CurveSummary` of the fit
    (``relu_ext.curve_summary(model, x, y)``), adds how sure the fit is of
    each breakpoint: a dashed vertical line at the breakpoint and a light band
    over its confidence interval (``summary.conf_int()``'s, the profile
    likelihood's, at the summary's level). A summary rather than the
    intervals alone, because the legend states their level, which only the
    summary knows. With ``fixed_breakpoints`` there are no intervals: the
    lines alone.
    """
    _check_summary(summary)
    Figure, FigureCanvasAgg = _matplotlib()
    xs = x.detach().reshape(-1).cpu().double()
    ys = y.detach().reshape(-1).cpu().double()
    m, b = model.m.detach().cpu().double(), model.b.detach().cpu().double()
    a = torch.ones_like(m) if model.a is None else model.a.detach().cpu().double()

    low, high = xs.min().item(), xs.max().item()
    pad = 0.05 * (high - low) if high > low else 1.0
    grid = torch.linspace(low - pad, high + pad, _GRID_POINTS, dtype=torch.float64)
    # The plot's own broadcast form of the sum: one column per unit.
    contributions = a * torch.relu(grid[:, None] * m + b)
    bias = 0.0 if getattr(model, "bias", None) is None else model.bias.item()
    fitted = contributions.sum(dim=1) + bias

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    if history is not None:
        ax_fit, ax_loss = fig.subplots(1, 2, width_ratios=(3, 2))
    else:
        ax_fit, ax_loss = fig.subplots(), None

    marked = False
    for k in range(m.numel()):
        line, = ax_fit.plot(grid, contributions[:, k], lw=0.8, alpha=0.4,
                            label="one unit: a_k·relu(m_k·x + b_k)" if k == 0 else None)
        t = -b[k] / m[k]
        if m[k] != 0 and grid[0] <= t <= grid[-1]:
            ax_fit.plot([t], [0.0], ls="none", marker="|", ms=9, mew=1.5, color=line.get_color(),
                        label=None if marked else "its breakpoint -b_k/m_k")
            marked = True
    if true_fn is not None:
        ax_fit.plot(grid, true_fn(grid), "k--", lw=1.2, label=true_label)
    ax_fit.plot(grid, fitted, color="C3", lw=2.2,
                label=f"fit: sum of {m.numel()} rectified lines"
                + (f" + bias {bias:.3g}" if bias else ""))
    ax_fit.scatter(xs, ys, s=18, color="k", zorder=3, label="data")
    if summary is not None:
        _shade_breakpoints(ax_fit, summary)

    # Scale to the data and the fit; single contributions may run far off it.
    shown = torch.cat([ys, fitted])
    lo, hi = shown.min().item(), shown.max().item()
    margin = 0.1 * (hi - lo) if hi > lo else 1.0
    ax_fit.set_ylim(min(lo, 0.0) - margin, hi + margin)
    ax_fit.set_xlim(grid[0].item(), grid[-1].item())
    ax_fit.axhline(0.0, color="0.8", lw=0.6, zorder=0)
    ax_fit.set_xlabel("x")
    ax_fit.set_ylabel("y")
    if title:
        ax_fit.set_title(title, fontsize=10)
    # Below the axes, where it can never hide a data point.
    ax_fit.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8,
                  frameon=False)

    if ax_loss is not None:
        _plot_history(ax_loss, history)
    return fig


def _check_summary(summary):
    """A summary plot_fit can draw: one curve's (a batch's has a row per curve)."""
    if summary is None:
        return
    if not isinstance(summary, CurveSummary):
        raise TypeError(f"plot_fit(): summary must be a CurveSummary (relu_ext.curve_summary's "
                        f"result), but got {type(summary).__name__}")
    if summary.breakpoints.dim() != 1:
        raise ValueError(f"plot_fit(): summary must be one curve's, but got a batch's of "
                         f"{len(summary)} curves; pass summary[c] for curve c")


def _shade_breakpoints(ax, summary):
    """Each breakpoint as a dashed line, its confidence interval as a band behind the data."""
    low, high = summary.conf_int()["breakpoints"]
    label = f"{100 * summary.level:g}% breakpoint interval"
    for t, lo, hi in zip(summary.breakpoints.tolist(), low.tolist(), high.tolist()):
        ax.axvline(t, color="0.3", ls="--", lw=1.0, zorder=1)
        if math.isfinite(lo) and math.isfinite(hi):
            # Grey: the units' lines take the colour cycle.
            ax.axvspan(lo, hi, color="0.5", alpha=0.2, lw=0, zorder=0, label=label)
            label = None  # one legend entry for all the bands


def _matplotlib():
    """matplotlib's Figure and Agg canvas, or an ImportError saying how to get them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"relu_ext.plot needs matplotlib ({e}); install it with "
                          f"pip install matplotlib") from None
    return Figure, FigureCanvasAgg


def _plot_history(ax, history):
    epochs = range(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, color="C0", lw=1.2)
    ax.set_ylim(0.0, 1.05 * max(history.loss, default=1.0))
    # fit_curve's history has no learning rate: its loss is traced per evaluation.
    ax.set_xlabel("epoch" if history.lr else "evaluation")
    ax.set_ylabel("training loss", color="C0")
    final = f", final {history.final_loss:.3g}" if history.final_loss is not None else ""
    ax.set_title(f"loss{final}", fontsize=10)
    if not history.lr:
        return
    lr_ax = ax.twinx()
    lr_ax.plot(epochs, history.lr, color="0.5", lw=1.0, ls=":")
    lr_ax.set_ylabel("learning rate", color="0.5")
    lr_ax.set_ylim(bottom=0.0)


# One panel's size in inches, and the most panels a side drawn by default.
_EDGE_PANEL = (1.4, 1.1)
MAX_EDGES_SHOWN = 8
# The most samples marked under a panel: a rug of a whole training set would
# take longer to draw than it adds to the picture.
_RUG_POINTS = 1000


@torch.no_grad()
def plot_edges(layer, *, outputs=None, inputs=None, x_range=None, x=None):
    """A Figure with a ``ReLUSumLinear``'s edge functions as a grid of small
    plots, one row per output o and one column per input i, as pykan's plot of
    a KAN layer: panel (o, i) draws ``Σ_k a[o,i,k]·relu(m[i,k]·x + b[i,k])``,
    the function of input i that output o adds, with its breakpoints marked.

    Args:
        layer: a ``ReLUSumLinear``.
        outputs, inputs: which rows and columns to draw (sequences of indices,
            drawn in that order). By default all of them up to
            ``MAX_EDGES_SHOWN`` (8) a side; a larger layer shows the outputs and
            inputs whose edges vary most over their ranges (the sum, over the
            other side, of each edge's max - min), in index order.
        x_range: (low, high), the range of x in every panel; default the
            layer's ``input_range``, or the data's with ``x``.
        x: optional (..., I) inputs of the layer: each column is then drawn
            over the range of its own input, and the inputs' values are marked
            along the bottom of the panels (a rug), so an edge can be read
            where the data is (up to 1,000 samples, evenly taken).

    Each panel's title is ``o ← i``; the rows share the y-axis, so the edges
    into one output compare at a glance. Returns the Figure (axes in row-major
    order: ``fig.axes[r * len(inputs) + c]`` is the edge (outputs[r], inputs[c])).
    """
    Figure, FigureCanvasAgg = _matplotlib()
    m, b = layer.m.detach().cpu().double(), layer.b.detach().cpu().double()
    a = layer.a.detach().cpu().double()
    n_out, n_in, _ = a.shape
    samples = None
    if x is not None:
        samples = torch.as_tensor(x).detach().cpu().double().reshape(-1, n_in)
    grids = _edge_grids(layer, x_range, samples)  # (I, points)

    def edges_at(points, rows, cols):  # points (I, P) -> the edges' values (rows, cols, P)
        hinges = torch.relu(points[cols, :, None] * m[cols, None] + b[cols, None])
        return torch.einsum("oik,ipk->oip", a[rows][:, cols], hinges)

    if ((outputs is None and n_out > MAX_EDGES_SHOWN)
            or (inputs is None and n_in > MAX_EDGES_SHOWN)):
        # A piecewise-linear edge's extremes on the range are at its ends or
        # its breakpoints: K + 2 points per input, not a whole grid per edge.
        t = (-b / m).clamp(grids[:, :1], grids[:, -1:])
        t = torch.where(torch.isnan(t), grids[:, :1], t)  # m = 0: no breakpoint
        values = edges_at(torch.cat([grids[:, [0, -1]], t], 1), slice(None), slice(None))
        variation = values.amax(-1) - values.amin(-1)  # (O, I)
    else:
        variation = torch.zeros(n_out, n_in, dtype=torch.float64)
    outputs = _edge_indices("outputs", outputs, n_out, variation.sum(1))
    inputs = _edge_indices("inputs", inputs, n_in, variation.sum(0))
    curves = edges_at(grids, outputs, inputs)  # (len(outputs), len(inputs), points)

    width, height = _EDGE_PANEL
    fig = Figure(figsize=(max(width * len(inputs), 3.0), max(height * len(outputs), 2.0)),
                 dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(outputs), len(inputs), squeeze=False, sharey="row")
    for r, (row, o) in enumerate(zip(axes, outputs)):
        for c, (ax, i) in enumerate(zip(row, inputs)):
            grid = grids[i]
            ax.plot(grid, curves[r, c], color="C0", lw=1.2)
            t = -b[i] / m[i]
            t = t[(m[i] != 0) & (t >= grid[0]) & (t <= grid[-1])]
            ax.plot(t, torch.zeros_like(t), ls="none", marker="|", ms=5, color="C3")
            if samples is not None:
                rug = samples[::-(-samples.shape[0] // _RUG_POINTS), i]
                ax.plot(rug, torch.zeros_like(rug), ls="none", marker="|",
                        ms=3, color="0.6", alpha=0.3, transform=ax.get_xaxis_transform())
            ax.axhline(0.0, color="0.85", lw=0.5, zorder=0)
            ax.set_xlim(grid[0].item(), grid[-1].item())
            ax.set_title(f"{o} ← {i}", fontsize=7, pad=2)
            ax.tick_params(labelsize=5, length=2, pad=1)
    fig.suptitle(f"edges of {type(layer).__name__}({n_in}, {n_out}, {m.shape[1]}): "
                 f"output ← input", fontsize=8)
    return fig


def _edge_grids(layer, x_range, samples):
    """Each input's x values to draw its edges at, (I, _GRID_POINTS)."""
    n_in = layer.m.shape[0]
    if x_range is not None:
        low, high = (float(v) for v in x_range)
        if not low < high:
            raise ValueError(f"plot_edges(): x_range must be (low, high) with low < high, but "
                             f"got {x_range!r}")
        lows, highs = torch.full((n_in,), low), torch.full((n_in,), high)
    elif samples is not None:
        if samples.shape[0] == 0:
            raise ValueError("plot_edges(): x must hold at least one sample")
        lows, highs = samples.amin(0), samples.amax(0)
        pad = torch.where(highs > lows, 0.05 * (highs - lows), 1.0)
        lows, highs = lows - pad, highs + pad
    else:
        low, high = layer.input_range
        lows, highs = torch.full((n_in,), low), torch.full((n_in,), high)
    steps = torch.linspace(0.0, 1.0, _GRID_POINTS, dtype=torch.float64)
    return lows.double()[:, None] + (highs - lows).double()[:, None] * steps


def _edge_indices(name, chosen, size, score):
    """The rows or columns to draw: those given (checked), or the most varied."""
    if chosen is None:
        if size <= MAX_EDGES_SHOWN:
            return list(range(size))
        return sorted(torch.argsort(score, descending=True, stable=True)[:MAX_EDGES_SHOWN]
                      .tolist())
    chosen = [int(c) for c in chosen]
    if not chosen or any(not 0 <= c < size for c in chosen):
        raise ValueError(f"plot_edges(): {name} must be a non-empty sequence of indices in "
                         f"[0, {size}), but got {chosen!r}")
    return chosen


def save_edges_plot(path, layer, **kwargs):
    """``plot_edges(layer, **kwargs)`` written to ``path`` (format from its suffix)."""
    plot_edges(layer, **kwargs).savefig(path)


def save_fit_plot(path, model, x, y, **kwargs):
    """``plot_fit(model, x, y, **kwargs)`` written to ``path`` (format from its suffix)."""
    plot_fit(model, x, y, **kwargs).savefig(path)
