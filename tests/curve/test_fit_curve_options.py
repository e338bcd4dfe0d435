"""fit_curve beyond one unweighted curve: many curves at once, weights, fixed
breakpoints, points to pass through, monotone and convex shapes, and how they
combine."""

import pytest
import torch

from relu_ext import ReLUSum, fit_curve


def curves(count=6, points=300, seed=0):
    """Noisy smooth curves on sorted random x, each its own shape."""
    g = torch.Generator().manual_seed(seed)
    x, _ = torch.sort(torch.rand(count, points, generator=g, dtype=torch.float64) * 4 - 2, 1)
    phase = torch.rand(count, 1, generator=g, dtype=torch.float64) * 3
    y = torch.sin(2 * x + phase) + 0.3 * x**2
    return x, y + 0.05 * torch.randn(count, points, generator=g, dtype=torch.float64)


def assert_same_module(batch, c, alone):
    """Row c of a batch's model (the whole model for c = None) is bitwise alone's."""
    for name in ("m", "b", "a", "bias"):
        got = getattr(batch, name) if c is None else getattr(batch, name)[c]
        assert torch.equal(got, getattr(alone, name)), (name, c)


def predict(model, x):
    with torch.no_grad():
        return model(x)


def hinge_design(x, breakpoints):
    columns = [torch.ones_like(x), x] + [torch.relu(x - t) for t in breakpoints]
    return torch.stack(columns, 1)


# ------------------------------------------------------------------ many curves

@pytest.mark.parametrize("options", [
    {}, {"loss": "mae"}, {"seed": 3, "restarts": 3},
    {"breakpoints": torch.tensor([-1.0, -0.2, 0.5, 1.2])},
    {"monotone": 1, "convex": True}, {"through": ([0.0], [0.5])},
])
def test_each_curve_of_a_batch_is_the_curve_fitted_alone_bitwise(options):
    x, y = curves()
    model, history = fit_curve(x, y, 5, **options)
    assert model.channels == 6 and model.dim == 0 and model.m.shape == (6, 5)
    assert model.bias.shape == (6,)
    assert history.final_loss.shape == (6,) and len(history.loss) == 6
    for c in range(6):
        alone, alone_history = fit_curve(x[c], y[c], 5, **options)
        assert_same_module(model, c, alone)
        assert history.final_loss[c].item() == alone_history.final_loss
        assert history.loss[c] == alone_history.loss
    assert alone.channels is None
    torch.testing.assert_close(predict(model, x)[5], predict(alone, x[5]), rtol=0, atol=0)


def test_a_batch_model_predicts_and_reads_as_pieces_per_curve():
    x, y = curves(count=3)
    model, history = fit_curve(x, y, 4)
    fitted = predict(model, x)
    assert fitted.shape == x.shape
    mse = ((fitted - y) ** 2).mean(1)
    torch.testing.assert_close(history.final_loss, mse, rtol=1e-9, atol=0)
    pieces = model.to_piecewise()
    assert pieces.breakpoints.shape == (3, 3)
    assert pieces.slopes.shape == pieces.intercepts.shape == (3, 4)
    for c in range(3):
        alone = fit_curve(x[c], y[c], 4)[0].to_piecewise()
        for got, expected in zip(pieces, alone):
            torch.testing.assert_close(got[c], expected, rtol=0, atol=0)


def test_shorter_curves_padded_with_weight_zero_fit_as_themselves():
    x, y = curves(count=3, points=200)
    lengths = [200, 120, 57]
    w = torch.zeros(3, 200, dtype=torch.float64)
    xp, yp = x.clone(), y.clone()
    for c, n in enumerate(lengths):
        w[c, :n] = 1
        xp[c, n:] = float("nan")  # padding may be anything: it is never read
        yp[c, n:] = 1e308
    model, history = fit_curve(xp, yp, 4, weights=w)
    for c, n in enumerate(lengths):
        alone, alone_history = fit_curve(x[c, :n], y[c, :n], 4)
        assert_same_module(model, c, alone)
        assert history.final_loss[c].item() == alone_history.final_loss


def test_a_batch_runs_on_every_thread_and_gives_the_same_model():
    x, y = curves(count=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _ = fit_curve(x, y, 6)
        torch.set_num_threads(max(2, threads))
        several, _ = fit_curve(x, y, 6)
    finally:
        torch.set_num_threads(threads)
    for name in ("m", "b", "a", "bias"):
        assert torch.equal(getattr(one, name), getattr(several, name))


# ---------------------------------------------------------------------- weights

def test_integer_weights_fit_as_the_points_repeated():
    # Sharp kinks, so that the optimum is one point and both searches end there
    # (on a flat optimum, rounding alone would steer them apart).
    g = torch.Generator().manual_seed(1)
    x, _ = torch.sort(torch.rand(400, generator=g, dtype=torch.float64) * 4 - 2)
    y = torch.abs(x - 0.3) - 2 * torch.relu(x - 1.1) + 0.01 * torch.randn(400, generator=g,
                                                                          dtype=torch.float64)
    counts = torch.randint(1, 4, (400,), generator=g)
    weighted, wh = fit_curve(x, y, 3, weights=counts.double())
    repeated, rh = fit_curve(x.repeat_interleave(counts), y.repeat_interleave(counts), 3)
    grid = torch.linspace(-2, 2, 101, dtype=torch.float64)
    torch.testing.assert_close(predict(weighted, grid), predict(repeated, grid), rtol=0,
                               atol=1e-6)
    assert wh.final_loss == pytest.approx(rh.final_loss, rel=1e-9)


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_outliers_of_weight_zero_change_nothing(loss):
    x, y = curves(count=1, points=300, seed=2)
    x, y = x[0], y[0]
    dirty = y.clone()
    w = torch.ones_like(y)
    dirty[::17] += 50.0
    w[::17] = 0
    clean = torch.ones_like(y, dtype=torch.bool)
    clean[::17] = False
    with_outliers, h1 = fit_curve(x, dirty, 5, weights=w, loss=loss)
    without, h2 = fit_curve(x[clean], y[clean], 5, loss=loss)
    assert_same_module(with_outliers, None, without)
    assert h1.final_loss == h2.final_loss and h1.loss == h2.loss


def test_weighted_least_squares_with_fixed_breakpoints_is_the_weighted_solve():
    x, y = curves(count=1, points=250, seed=6)
    x, y = x[0], y[0]
    w = torch.rand(250, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3
    t = torch.tensor([-1.1, 0.0, 0.9], dtype=torch.float64)
    model, history = fit_curve(x, y, 4, weights=w, breakpoints=t)
    design = hinge_design(x, t)
    root = w.sqrt()[:, None]
    coef = torch.linalg.lstsq(design * root, y * root[:, 0]).solution
    torch.testing.assert_close(predict(model, x), design @ coef, rtol=0, atol=1e-9)
    expected = (w * (design @ coef - y) ** 2).sum() / w.sum()
    assert history.final_loss == pytest.approx(expected.item(), rel=1e-8)


# ------------------------------------------------------------- fixed breakpoints

def test_fixed_breakpoints_are_kept_and_solved_exactly():
    x = torch.linspace(0, 10, 500, dtype=torch.float64)
    y = torch.log1p(x) + 0.1 * torch.sin(5 * x)
    t = torch.tensor([1.0, 2.5, 4.0, 7.5], dtype=torch.float64)
    model, history = fit_curve(x, y, 5, breakpoints=t)
    torch.testing.assert_close(model.to_piecewise().breakpoints, t, rtol=1e-12, atol=1e-12)
    design = hinge_design(x, t)
    coef = torch.linalg.lstsq(design, y).solution
    torch.testing.assert_close(predict(model, x), design @ coef, rtol=0, atol=1e-9)
    assert len(history.loss) == 1
    # Free breakpoints can only do better.
    free, free_history = fit_curve(x, y, 5)
    assert free_history.final_loss <= history.final_loss


def test_fixed_breakpoints_outside_the_data_still_solve():
    x = torch.linspace(0, 1, 100, dtype=torch.float64)
    model, _ = fit_curve(x, 2 * x + 1, 3, breakpoints=[5.0, 6.0])
    torch.testing.assert_close(predict(model, x), 2 * x + 1, rtol=0, atol=1e-9)


# ------------------------------------------------------------------ through

def scale_of(y):
    return (y.max() - y.min()).item()


@pytest.mark.parametrize("options", [{}, {"loss": "mae"}, {"breakpoints": [-1.0, 0.2, 1.3]},
                                     {"weights": "random"}, {"monotone": 1}])
def test_through_points_are_met_to_rounding(options):
    x, y = curves(count=1, points=500, seed=8)
    x, y = x[0], y[0] + 0.5 * x[0]
    if options.get("weights") == "random":
        options = {"weights": torch.rand(500, generator=torch.Generator().manual_seed(3),
                                         dtype=torch.float64)}
    xc = torch.tensor([-1.5, 0.1, 1.7], dtype=torch.float64)
    yc = torch.tensor([-1.0, 0.8, 2.5], dtype=torch.float64)
    model, history = fit_curve(x, y, 4, through=(xc, yc), **options)
    assert (predict(model, xc) - yc).abs().max().item() <= 1e-9 * scale_of(y)
    free, free_history = fit_curve(x, y, 4, **options)
    assert free_history.final_loss <= history.final_loss * (1 + 1e-9)


def test_through_with_a_batch_takes_points_per_curve():
    x, y = curves(count=3, points=200)
    xc = torch.tensor([[0.0], [0.5], [-0.5]], dtype=torch.float64)
    yc = torch.tensor([[1.0], [0.0], [2.0]], dtype=torch.float64)
    model, _ = fit_curve(x, y, 5, through=(xc, yc))
    for c in range(3):
        got = predict(model, xc[c].expand(3, 1))[c]
        assert abs(got.item() - yc[c].item()) <= 1e-9 * scale_of(y[c])


def test_a_point_outside_the_data_is_passed_through_by_extrapolation():
    x = torch.linspace(0, 1, 200, dtype=torch.float64)
    model, _ = fit_curve(x, torch.sin(3 * x), 3, through=([2.0], [0.0]))
    assert abs(predict(model, torch.tensor([2.0], dtype=torch.float64)).item()) <= 1e-9


# ------------------------------------------------------------------ shapes

def assert_shape_holds(pieces, monotone, convex):
    """Exactly, in the piecewise form: slopes signed, changes of slope signed."""
    slopes = pieces.slopes
    if monotone:
        assert (slopes * monotone >= 0).all(), slopes
    if convex is not None:
        change = torch.diff(slopes) * (1 if convex else -1)
        assert (change >= 0).all(), slopes


SHAPES = [(1, None), (-1, None), (None, True), (None, False), (1, True), (1, False),
          (-1, True), (-1, False)]


@pytest.mark.parametrize("monotone, convex", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_shapes_hold_exactly_and_beat_uniform_knots(monotone, convex, dtype):
    g = torch.Generator().manual_seed(5)
    x, _ = torch.sort(torch.rand(800, generator=g, dtype=torch.float64) * 4 - 2)
    # Data that breaks every shape somewhere, so that each constraint binds.
    y = torch.sin(2 * x) + 0.4 * x + 0.1 * torch.randn(800, generator=g, dtype=torch.float64)
    x, y = x.to(dtype), y.to(dtype)
    model, history = fit_curve(x, y, 6, monotone=monotone, convex=convex)
    assert_shape_holds(model.to_piecewise(), monotone, convex)
    # The lattice calibrators' family: the same shape on 6 equally spaced pieces.
    low, high = x.min().item(), x.max().item()
    knots = [low + (high - low) * k / 6 for k in range(1, 6)]
    uniform, uniform_history = fit_curve(x, y, 6, breakpoints=knots, monotone=monotone,
                                         convex=convex)
    assert_shape_holds(uniform.to_piecewise(), monotone, convex)
    assert history.final_loss <= uniform_history.final_loss * (1 + 1e-6)
    unconstrained = fit_curve(x, y, 6)[1].final_loss
    assert unconstrained <= history.final_loss * (1 + 1e-6)


@pytest.mark.parametrize("monotone, convex", [(1, None), (None, True), (-1, False)])
def test_shapes_combine_with_weights_batches_and_mae(monotone, convex):
    x, y = curves(count=4, points=300, seed=9)
    w = torch.rand(4, 300, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for loss in ("mse", "mae"):
        model, _ = fit_curve(x, y, 5, weights=w, monotone=monotone, convex=convex, loss=loss)
        pieces = model.to_piecewise()
        for c in range(4):
            assert_shape_holds(type(pieces)(*(f[c] for f in pieces)), monotone, convex)


def test_one_unit_bends_the_allowed_way_outside_the_data():
    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    for convex, y in ((True, -2 * x), (False, 2 * x), (True, 2 * x), (False, -2 * x)):
        model, _ = fit_curve(x, y, 1, convex=convex)
        assert_shape_holds(model.to_piecewise(), None, convex)
        torch.testing.assert_close(predict(model, x), y, rtol=0, atol=1e-11)


@pytest.mark.parametrize("kwargs", [
    {"monotone": 1, "through": ([0.0, 1.0], [1.0, 0.0])},
    {"monotone": -1, "through": ([0.0, 1.0], [0.0, 1.0])},
    {"convex": True, "through": ([0.0, 0.5, 1.0], [0.0, 1.0, 0.0])},
    {"through": ([0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 0.0, 1.0]), "breakpoints": [0.5]},
])
def test_constraints_no_function_meets_are_named(kwargs):
    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    with pytest.raises(ValueError, match="no continuous piecewise-linear function of 2 units "
                                         "is .*: the constraints contradict each other"):
        fit_curve(x, x, 2, **kwargs)


# ------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("kwargs, error, message", [
    ({"weights": -torch.ones(20)}, ValueError, r"weights must be >= 0, but weights\[0\] is -1"),
    ({"weights": torch.zeros(20)}, ValueError, "weights must not be all zero"),
    ({"weights": torch.ones(19)}, ValueError, r"weights must have shape \(20,\)"),
    ({"weights": torch.full((20,), float("nan"))}, ValueError, r"weights must be finite, but weights\[0\] is nan"),
    ({"weights": "heavy"}, TypeError, "weights must be numbers, a tensor or an array, but got str"),
    ({"breakpoints": [0.5]}, ValueError, r"breakpoints must have shape \(2,\) \(units - 1 = 2\), but got \[1\]"),
    ({"breakpoints": [0.5, 0.5]}, ValueError, r"breakpoints must be strictly increasing, but breakpoints\[1\] = 0.5 is not above breakpoints\[0\] = 0.5"),
    ({"breakpoints": [0.7, 0.2]}, ValueError, "strictly increasing"),
    ({"breakpoints": [0.1, float("inf")]}, ValueError, r"breakpoints must be finite, but breakpoints\[1\] is inf"),
    ({"through": [0.5]}, ValueError, r"through must be a pair \(xc, yc\)"),
    ({"through": ([0.5, 0.5], [1.0, 2.0])}, ValueError, "contradict each other: x = 0.5 is given y = 1.0 and y = 2.0"),
    ({"through": ([0.5, 0.6], [1.0])}, ValueError, "through's xc and yc must have one shape"),
    ({"monotone": 2}, ValueError, r"monotone must be None, \+1 \(non-decreasing\) or -1 \(non-increasing\), but got 2"),
    ({"monotone": True}, ValueError, "monotone must be None, "),
    ({"convex": 1}, ValueError, r"convex must be None, True \(convex\) or False \(concave\), but got 1"),
])
def test_bad_options_are_named(kwargs, error, message):
    x = torch.linspace(0, 1, 20, dtype=torch.float64)
    with pytest.raises(error, match=message):
        fit_curve(x, x**2, 3, **kwargs)


@pytest.mark.parametrize("x", [torch.linspace(-1e300, 1e300, 300, dtype=torch.float64),
                               torch.linspace(1e-200, 3e-200, 300, dtype=torch.float64)])
def test_data_of_any_finite_scale_is_fitted(x):
    # Scaled by a power of two before anything is squared: neither 1e600 nor 1e-400.
    y = torch.abs(x - x[100]) / (x.max() - x.min())
    model, history = fit_curve(x, y, 2)
    assert abs(model.to_piecewise().breakpoints.item() / x[100].item() - 1) < 1e-6
    assert history.final_loss < 1e-15  # y spans [0, 2/3]


def test_empty_data_says_so():
    with pytest.raises(ValueError, match=r"x and y are empty \(shape \[0\]\): there are no points"):
        fit_curve(torch.zeros(0), torch.zeros(0), 2)
    with pytest.raises(ValueError, match=r"x and y are empty \(shape \[3, 0\]\)"):
        fit_curve(torch.zeros(3, 0), torch.zeros(3, 0), 2)


def test_bad_batches_are_named():
    x, y = curves(count=3, points=10)
    with pytest.raises(ValueError, match=r"weights must have shape \(10,\) or \(3, 10\)"):
        fit_curve(x, y, 3, weights=torch.ones(2, 10))
    w = torch.ones(3, 10)
    w[1, 2:] = 0
    with pytest.raises(ValueError, match=r"needs at least as many points as units, but got 2 "
                                         r"points of positive weight \(curve 1\) for units=3"):
        fit_curve(x, y, 3, weights=w)
    w = torch.ones(3, 10)
    w[2] = 0
    with pytest.raises(ValueError, match="weights must not be all zero, but curve 2's are"):
        fit_curve(x, y, 3, weights=w)
    x2 = x.clone()
    x2[1] = 0.5
    with pytest.raises(ValueError, match=r"all its values are equal \(curve 1\)"):
        fit_curve(x2, y, 3)
    y2 = y.clone()
    y2[2, 4] = float("nan")
    with pytest.raises(ValueError, match=r"y must be finite, but y\[2, 4\] is nan"):
        fit_curve(x, y2, 3)


# ---------------------------------------------------------------- array-likes

def test_numpy_lists_and_pandas_go_in_and_numpy_comes_out():
    import numpy as np

    x = np.linspace(0, 4, 200)
    y = np.abs(x - 1.5) + 0.5 * x
    as_tensors, _ = fit_curve(torch.from_numpy(x), torch.from_numpy(y), 2)
    for xs, ys in ((x, y), (x.tolist(), y.tolist())):
        model, history = fit_curve(xs, ys, 2)
        assert model.m.dtype == torch.float64
        assert_same_module(model, None, as_tensors)
        prediction = model.predict(xs)
        assert isinstance(prediction, np.ndarray) and prediction.dtype == np.float64
        np.testing.assert_allclose(prediction, y, atol=1e-9)
    years = np.arange(1990, 2020)  # integers become float64
    model, _ = fit_curve(years, 3.0 * years, 1)
    assert model.m.dtype == torch.float64
    np.testing.assert_allclose(model.predict([2000, 2010]), [6000.0, 6030.0], rtol=1e-12)
    float32, _ = fit_curve(x.astype(np.float32), y.astype(np.float32), 2)
    assert float32.m.dtype == torch.float32


def test_pandas_series_go_in():
    import pandas as pd

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0], "y": [1.0, 0.0, 1.0, 2.0, 3.0]})
    model, _ = fit_curve(frame["x"], frame["y"], 2)
    # The kink sits on the point x = 1, which the search nears from the side
    # where the first segment holds two points: to L-BFGS's tolerance.
    assert abs(model.predict(frame["x"]) - frame["y"].to_numpy()).max() < 1e-7
