"""Pictures of a fit: how the sum of rectified lines makes the curve.

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


def save_fit_plot(path, model, x, y, **kwargs):
    """``plot_fit(model, x, y, **kwargs)`` written to ``path`` (format from its suffix)."""
    plot_fit(model, x, y, **kwargs).savefig(path)
