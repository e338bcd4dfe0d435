"""relu_ext.plot.plot_fit with a curve_summary: each breakpoint drawn as a
dashed line over a band of its confidence interval, on the Agg canvas."""

import pytest
import torch

import relu_ext
from relu_ext.plot import plot_fit

pytest.importorskip("matplotlib", reason="relu_ext.plot needs matplotlib")

BREAKPOINTS = (0.3, 0.65)


def three_segments(n=120, seed=0):
    """Noisy points of a function with kinks at BREAKPOINTS, and its 3-unit fit."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, generator=g, dtype=torch.float64)
    y = x - 3 * torch.relu(x - BREAKPOINTS[0]) + 4 * torch.relu(x - BREAKPOINTS[1])
    y = y + 0.03 * torch.randn(n, generator=g, dtype=torch.float64)
    model, _ = relu_ext.fit_curve(x, y, 3)
    return model, x, y


def bands(ax):
    """The x-extents of the axvspans, left to right: [left_0, right_0, left_1, ...]."""
    spans = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax.patches)
    return [edge for span in spans for edge in span]


def dashed_verticals(ax):
    return sorted(line.get_xdata()[0] for line in ax.lines
                  if line.get_linestyle() == "--" and line.get_xdata()[0] == line.get_xdata()[1])


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_each_breakpoint_gets_a_dashed_line_and_its_interval_as_a_band():
    model, x, y = three_segments()
    summary = relu_ext.curve_summary(model, x, y)
    ax = plot_fit(model, x, y, summary=summary).axes[0]
    low, high = summary.conf_int()["breakpoints"]
    assert bands(ax) == pytest.approx(torch.stack([low, high], 1).flatten().tolist())
    assert dashed_verticals(ax) == pytest.approx(summary.breakpoints.tolist())
    assert legend_texts(ax).count("95% breakpoint interval") == 1  # one entry for both bands
    assert all(0 < patch.get_alpha() < 0.5 for patch in ax.patches)  # light, behind the data


def test_the_legend_gives_the_summarys_level():
    model, x, y = three_segments()
    ax = plot_fit(model, x, y, summary=relu_ext.curve_summary(model, x, y, level=0.9)).axes[0]
    assert "90% breakpoint interval" in legend_texts(ax)


def test_known_breakpoints_get_lines_but_no_bands():
    model, x, y = three_segments()
    summary = relu_ext.curve_summary(model, x, y, fixed_breakpoints=True)
    ax = plot_fit(model, x, y, summary=summary).axes[0]
    assert bands(ax) == []
    assert dashed_verticals(ax) == pytest.approx(summary.breakpoints.tolist())
    assert not any("interval" in text for text in legend_texts(ax))


def test_without_a_summary_there_are_neither():
    model, x, y = three_segments()
    ax = plot_fit(model, x, y).axes[0]
    assert bands(ax) == [] and dashed_verticals(ax) == []


def test_a_batch_summary_or_the_intervals_alone_are_refused():
    model, x, y = three_segments()
    batch_model, _ = relu_ext.fit_curve(torch.stack([x, x]), torch.stack([y, -y]), 3)
    batch = relu_ext.curve_summary(batch_model, torch.stack([x, x]), torch.stack([y, -y]))
    with pytest.raises(ValueError, match="summary must be one curve's, but got a batch's of 2 "
                                         "curves; pass summary\\[c\\]"):
        plot_fit(model, x, y, summary=batch)
    plot_fit(model, x, y, summary=batch[0])  # curve 0 is (x, y): its own summary is drawn
    intervals = relu_ext.curve_summary(model, x, y).conf_int()
    with pytest.raises(TypeError, match="summary must be a CurveSummary .* but got dict"):
        plot_fit(model, x, y, summary=intervals)
