"""relu_ext.fit_curve: exact recovery, scaling folded back, reproducibility, bad data."""

import math

import pytest
import torch

import relu_ext
from relu_ext import ReLUSum, fit_curve


def piecewise_target(dtype=torch.float64):
    """A continuous piecewise-linear function with 6 breakpoints (7 segments),
    none of them on the sample grid."""
    breakpoints = torch.tensor([-1.61, -0.93, -0.27, 0.41, 0.88, 1.53], dtype=torch.float64)
    slopes = torch.tensor([2.0, -1.0, 0.5, 3.0, -2.5, 0.2, 1.4], dtype=torch.float64)
    intercepts = torch.zeros(7, dtype=torch.float64)
    intercepts[0] = 0.7
    for i, t in enumerate(breakpoints):  # continuity fixes each next intercept
        intercepts[i + 1] = (slopes[i] - slopes[i + 1]) * t + intercepts[i]
    return ReLUSum.from_piecewise(breakpoints, slopes, intercepts, dtype=dtype)


def test_an_exact_piecewise_linear_target_is_recovered():
    target = piecewise_target()
    x = torch.linspace(-2, 2, 2000, dtype=torch.float64)
    with torch.no_grad():
        y = target(x)
    model, history = fit_curve(x, y, units=7)
    with torch.no_grad():
        error = (model(x) - y).abs().max().item()
    assert error <= 1e-4 * (y.max() - y.min()).item()
    found = model.to_piecewise().breakpoints
    torch.testing.assert_close(found, target.to_piecewise().breakpoints, atol=2e-3, rtol=0)
    assert history.final_loss == pytest.approx(((model(x) - y) ** 2).mean().item(), abs=1e-12)


def test_the_model_predicts_y_in_the_data_units():
    # Far from standardised: the scaling must be folded into m, b, a and the bias.
    x = torch.linspace(100.0, 900.0, 1500, dtype=torch.float64)
    y = 5e4 + 3e3 * torch.sin(x / 120.0)
    model, history = fit_curve(x, y, units=24)
    assert model.bias is not None and model.units == 24
    with torch.no_grad():
        rmse = ((model(x) - y) ** 2).mean().sqrt().item()
    assert rmse < 1e-3 * 6e3
    assert history.final_loss == pytest.approx(rmse**2, rel=1e-9)


def test_float32_data_gives_a_float32_model_as_accurate_as_its_precision():
    x = torch.linspace(-2, 2, 2000)
    y = torch.tanh(8 * x)
    model, _ = fit_curve(x, y, units=10)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        rmse = ((model(x) - y).double() ** 2).mean().sqrt().item()
    # pwlf's fitfast(10) reaches an RMSE of 2.17e-3 here (benchmarks/accuracy.py).
    assert rmse < 1.25 * 2.2e-3


def test_one_unit_is_the_least_squares_line():
    x = torch.linspace(-1, 3, 200, dtype=torch.float64)
    y = x**2
    model, _ = fit_curve(x, y, units=1)
    design = torch.stack([torch.ones_like(x), x], 1)
    line = design @ torch.linalg.lstsq(design, y).solution
    with torch.no_grad():
        torch.testing.assert_close(model(x), line, rtol=0, atol=1e-9)


def test_same_seed_same_model_bitwise():
    x = torch.linspace(-2, 2, 700)
    y = torch.sin(3 * x) + 0.1 * torch.randn(700, generator=torch.Generator().manual_seed(1))
    first, h1 = fit_curve(x, y, units=12, seed=5)
    second, h2 = fit_curve(x, y, units=12, seed=5)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert h1.loss == h2.loss and h1.seed == h2.seed == 5


def test_more_restarts_never_do_worse():
    x = torch.linspace(-2, 2, 1000, dtype=torch.float64)
    y = torch.sin(5 * x) * torch.exp(-x**2)
    _, one = fit_curve(x, y, units=9, restarts=1)
    _, four = fit_curve(x, y, units=9, restarts=4)
    assert four.final_loss <= one.final_loss * (1 + 1e-9)


def test_data_with_a_gap_keeps_every_breakpoint_in_use():
    # No points in (-0.5, 0.5): of two breakpoints there, one does nothing; it
    # is moved back into the data, and the fit gets better for it.
    x = torch.cat([torch.linspace(-2, -0.5, 500), torch.linspace(0.5, 2, 500)]).double()
    y = torch.sin(3 * x)
    model, revived = fit_curve(x, y, units=12, restarts=1)
    _, as_found = fit_curve(x, y, units=12, restarts=1, revive=0)
    t = model.to_piecewise().breakpoints
    assert t.shape == (11,)
    between = (x[None, :] > t[:-1, None]) & (x[None, :] < t[1:, None])
    assert between.any(1).all(), t
    assert revived.final_loss < 0.95 * as_found.final_loss


def test_every_segment_holds_two_points():
    # Three segments (slopes 1, -1, 1), 50 points, noise 0.5: the least error
    # often has a segment through one point, a line fixed by nothing (its
    # JᵀWJ singular; a quarter of these curves, before the fit kept two
    # points a segment).
    g = torch.Generator().manual_seed(0)
    x = torch.rand(100, 50, generator=g, dtype=torch.float64).sort(1).values
    truth = x - 2 * (x - 1 / 3).clamp_min(0) + 2 * (x - 2 / 3).clamp_min(0)
    model, _ = fit_curve(x, truth + 0.5 * torch.randn(x.shape, generator=g, dtype=x.dtype), 3)
    t = model.to_piecewise().breakpoints
    edges = torch.cat([torch.full((100, 1), -math.inf, dtype=x.dtype), t,
                       torch.full((100, 1), math.inf, dtype=x.dtype)], 1)
    held = ((x[:, None, :] > edges[:, :-1, None]) & (x[:, None, :] <= edges[:, 1:, None])).sum(2)
    assert (held >= 2).all(), held.min(1).values
    # Where the units leave no room for two points a segment: the least error.
    few = torch.tensor([0.0, 1, 2, 3, 4], dtype=torch.float64)
    _, tight = fit_curve(few, few.square(), units=4)
    assert tight.final_loss < 1e-3


def test_mae_loss_fits_through_outliers():
    x = torch.linspace(-2, 2, 800, dtype=torch.float64)
    clean = torch.abs(x - 0.4)
    y = clean.clone()
    y[::40] += 5.0  # every 40th point an outlier
    robust, history = fit_curve(x, y, units=2, loss="mae")
    squares, _ = fit_curve(x, y, units=2)
    with torch.no_grad():
        robust_mae = (robust(x) - y).abs().mean().item()
        squares_mae = (squares(x) - y).abs().mean().item()
        assert (robust(x) - clean).abs().median().item() < 1e-3
    assert robust_mae < squares_mae
    assert history.final_loss == pytest.approx(robust_mae, rel=1e-9)


@pytest.mark.parametrize("x, y, message", [
    (torch.zeros(5), torch.zeros(6), "same length, but got 5 and 6"),
    (torch.zeros(5, 1), torch.zeros(5), r"x and y must have the same shape, but got \[5, 1\] and \[5\]"),
    (torch.zeros(5), torch.zeros(5, 2), r"x and y must have the same shape, but got \[5\] and \[5, 2\]"),
    (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), r"x must be 1-D \(one curve of N points\) or 2-D"),
    (torch.tensor([0.0, 1.0, float("nan"), 3.0]), torch.zeros(4), r"x\[2\] is nan"),
    (torch.linspace(0, 1, 4), torch.tensor([0.0, float("inf"), 1.0, 2.0]), r"y\[1\] is inf"),
    (torch.linspace(0, 1, 3), torch.zeros(3), "at least as many points as units, but got 3"),
    (torch.ones(10), torch.zeros(10), "x must take at least two distinct values"),
    (["a", "b"], torch.zeros(2), "x must be numbers .*, but got list of dtype <U1"),
    (torch.zeros(3, dtype=torch.complex64), torch.zeros(3), "x must be real numbers"),
])
def test_bad_data_is_named(x, y, message):
    with pytest.raises((ValueError, TypeError), match=message):
        fit_curve(x, y, units=4)


@pytest.mark.parametrize("kwargs, message", [
    ({"units": 0}, "units must be an int >= 1 or \"auto\", but got 0"),
    ({"units": 2.5}, "units must be an int >= 1 or \"auto\", but got 2.5"),
    ({"units": 3, "loss": "huber"}, "loss must be one of 'mse', 'mae', but got 'huber'"),
    ({"units": 3, "restarts": 0}, "restarts must be an int >= 1"),
])
def test_bad_arguments_are_named(kwargs, message):
    x = torch.linspace(0, 1, 20)
    with pytest.raises(ValueError, match=message):
        fit_curve(x, x, **kwargs)


def test_is_exported():
    assert "fit_curve" in relu_ext.__all__ and relu_ext.fit_curve is fit_curve
