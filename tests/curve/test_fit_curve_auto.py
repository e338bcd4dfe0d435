"""fit_curve(units="auto"): the number of segments chosen from the data, by BIC
or by cross-validation (csrc/curve/select.h)."""

import math

import pytest
import torch

import relu_ext

CRITERIA = ["bic", "cv"]


def piecewise_truth(g, segments):
    """A continuous piecewise-linear function on [0, 1] with `segments`
    pieces: breakpoints at least 0.12 apart (and from 0 and 1), slope changes
    of 1.5 to 3 in size and random sign, a random first slope."""
    while True:
        t = torch.rand(segments - 1, generator=g, dtype=torch.float64).sort().values
        ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
        if (torch.diff(torch.cat([ends[:1], t, ends[1:]])) >= 0.12).all():
            break
    size = 1.5 + 1.5 * torch.rand(segments - 1, generator=g, dtype=torch.float64)
    sign = torch.where(torch.rand(segments - 1, generator=g) < 0.5, -1.0, 1.0).double()
    slope = torch.randn((), generator=g, dtype=torch.float64)
    return lambda x: slope * x + (size * sign * torch.relu(x[..., None] - t)).sum(-1)


def curve_and_points(g, segments):
    """A truth of `segments` pieces and N = 1000 points of it, noise 0.02."""
    f = piecewise_truth(g, segments)
    x = torch.rand(1000, generator=g, dtype=torch.float64)
    return f, x, f(x) + 0.02 * torch.randn(1000, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("select", CRITERIA)
def test_the_number_of_segments_is_recovered(select):
    # 1 to 6 segments, N = 1000, noise 0.02: the issue asks for 90%.
    g = torch.Generator().manual_seed(21)
    reps, xs, ys, segments = 25, [], [], []
    for count in range(1, 7):
        for _ in range(reps):
            _, x, y = curve_and_points(g, count)
            xs.append(x)
            ys.append(y)
            segments.append(count)
    _, history = relu_ext.fit_curve(torch.stack(xs), torch.stack(ys), "auto", max_units=10,
                                    select=select)
    segments = torch.tensor(segments)
    for count in range(1, 7):
        rate = (history.units[segments == count] == count).double().mean().item()
        assert rate >= 0.9, (select, count, history.units[segments == count].tolist())


@pytest.mark.parametrize("select", CRITERIA)
@pytest.mark.parametrize("seed", range(5))
def test_a_straight_line_plus_noise_is_one_segment(select, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(300, generator=g, dtype=torch.float64) * 10
    y = 3 - 0.7 * x + torch.randn(300, generator=g, dtype=torch.float64)
    model, history = relu_ext.fit_curve(x, y, "auto", select=select, seed=seed)
    assert history.units == 1 and model.units == 1


def test_an_exact_line_is_one_segment_rounding_does_not_buy_units():
    x = torch.linspace(0, 1, 200, dtype=torch.float64)
    _, history = relu_ext.fit_curve(x, 2 * x + 1, "auto")
    assert history.units == 1


def test_bic_scores_are_the_gaussian_bic_of_each_fit():
    # BIC = n·log(2π·RSS/n) + n - Σ log w + 2K·log n, from each K's own fit.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(400, generator=g, dtype=torch.float64)
    y = torch.relu(x - 0.4) * 3 + 0.05 * torch.randn(400, generator=g, dtype=torch.float64)
    w = 0.5 + torch.rand(400, generator=g, dtype=torch.float64)
    w[:20] = 0  # left out entirely: n counts the points of positive weight
    model, history = relu_ext.fit_curve(x, y, "auto", max_units=5, weights=w)
    n = 380

    def bic(fitted, k):
        rss = (w * (fitted(x).detach() - y) ** 2).sum().item()
        return n * math.log(2 * math.pi * rss / n) + n - w[20:].log().sum().item() \
            + 2 * k * math.log(n)

    assert history.units == 2 and len(history.scores) == 5
    assert history.scores.index(min(history.scores)) == 1
    assert history.scores[1] == pytest.approx(bic(model, 2), rel=1e-9)
    for k, score in enumerate(history.scores, 1):  # each K's fit at least fit_curve's
        assert score <= bic(relu_ext.fit_curve(x, y, k, weights=w)[0], k) + 1e-9 * abs(score)


@pytest.mark.parametrize("select", CRITERIA)
def test_the_chosen_fit_is_at_least_fit_curve_with_that_many_units(select):
    # Each K starts from fit_curve's starts and from the fit of K - 1 units.
    g = torch.Generator().manual_seed(1)
    x = torch.rand(500, generator=g, dtype=torch.float64)
    y = torch.sin(5 * x) + 0.05 * torch.randn(500, generator=g, dtype=torch.float64)
    model, history = relu_ext.fit_curve(x, y, "auto", max_units=8, select=select)
    fixed, fixed_history = relu_ext.fit_curve(x, y, history.units)
    assert model.units == history.units
    assert history.final_loss <= fixed_history.final_loss


def test_growing_from_fewer_units_finds_what_the_usual_starts_miss():
    # Four segments whose four-unit fit from fit_curve's four starts lands
    # in a local minimum (error 1.7x the truth's); from the three-unit fit
    # plus a breakpoint it does not, and BIC then takes 4, not 5.
    g = torch.Generator().manual_seed(21)
    for i in range(80):  # curve 80 of the recovery test's stream
        curve_and_points(g, i // 25 + 1)
    f, x, y = curve_and_points(g, 4)
    _, alone = relu_ext.fit_curve(x, y, 4)
    model, history = relu_ext.fit_curve(x, y, "auto", max_units=8)
    truth = ((f(x) - y) ** 2).mean().item()
    assert alone.final_loss > 1.5 * truth
    assert history.units == 4 and history.final_loss < truth


def test_scaling_the_weights_changes_nothing():
    # n·log Σ w·r² and Σ log w move together: the likelihood's maximum does
    # not. (The fits agree to rounding, not bitwise: the Cholesky factor of
    # 8·G is √8 times G's, rounded. Beyond 4 units, where the error has
    # several near-equal minima, rounding can pick another.)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(300, generator=g, dtype=torch.float64)
    y = (x - 0.5).abs() + 0.02 * torch.randn(300, generator=g, dtype=torch.float64)
    w = torch.rand(300, generator=g, dtype=torch.float64) + 0.1
    _, one = relu_ext.fit_curve(x, y, "auto", max_units=4, weights=w)
    _, eight = relu_ext.fit_curve(x, y, "auto", max_units=4, weights=8 * w)
    assert one.units == eight.units == 2
    assert eight.scores == pytest.approx(one.scores, rel=1e-9)


@pytest.mark.parametrize("select", CRITERIA)
def test_zero_weight_points_are_left_out(select):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(400, generator=g, dtype=torch.float64)
    y = torch.relu(x - 0.3) * 2 - torch.relu(x - 0.7) * 3 \
        + 0.03 * torch.randn(400, generator=g, dtype=torch.float64)
    w = torch.ones(400, dtype=torch.float64)
    w[::3] = 0
    y_bad = torch.where(w > 0, y, 1e3)
    kept = w > 0
    _, with_zeros = relu_ext.fit_curve(x, y_bad, "auto", max_units=6, select=select, weights=w)
    _, without = relu_ext.fit_curve(x[kept], y[kept], "auto", max_units=6, select=select)
    assert with_zeros.units == without.units
    assert with_zeros.scores == without.scores


def test_cross_validation_is_repeatable_and_ignores_the_points_order():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(300, generator=g, dtype=torch.float64)
    y = torch.sin(4 * x) + 0.05 * torch.randn(300, generator=g, dtype=torch.float64)
    order = torch.randperm(300, generator=g)
    _, first = relu_ext.fit_curve(x, y, "auto", max_units=6, select="cv", seed=7)
    _, again = relu_ext.fit_curve(x, y, "auto", max_units=6, select="cv", seed=7)
    _, shuffled = relu_ext.fit_curve(x[order], y[order], "auto", max_units=6, select="cv", seed=7)
    _, other = relu_ext.fit_curve(x, y, "auto", max_units=6, select="cv", seed=8)
    assert first.scores == again.scores == shuffled.scores
    assert other.scores != first.scores  # the seed draws other folds


@pytest.mark.parametrize("select", CRITERIA)
def test_a_batch_gives_each_curve_its_own_units(select):
    g = torch.Generator().manual_seed(5)
    x = torch.rand(3, 600, generator=g, dtype=torch.float64)
    truths = [piecewise_truth(g, count) for count in (1, 4, 2)]
    y = torch.stack([f(x[c]) for c, f in enumerate(truths)]) \
        + 0.02 * torch.randn(3, 600, generator=g, dtype=torch.float64)
    model, history = relu_ext.fit_curve(x, y, "auto", max_units=7, select=select)
    assert history.units.tolist() == [1, 4, 2]
    assert model.units == 4 and model.channels == 3
    assert history.scores.shape == (3, 7)
    for c in range(3):  # each curve's fit is its fit alone, padded with inert units
        alone, own = relu_ext.fit_curve(x[c], y[c], "auto", max_units=7, select=select)
        k = own.units
        for name in ("m", "b", "a"):
            assert torch.equal(getattr(model, name)[c, :k], getattr(alone, name)), (c, name)
            assert (getattr(model, name)[c, k:] == 0).all(), (c, name)
        assert model.bias[c] == alone.bias
        assert history.scores[c].tolist() == own.scores
    # The inert units add exactly zero and get no gradient.
    model(x).sum().backward()
    for c in range(3):
        k = int(history.units[c])
        for p in (model.m, model.b, model.a):
            assert (p.grad[c, k:] == 0).all()


def test_only_the_units_with_fewer_parameters_than_points_are_tried():
    # 2K parameters must leave a residual degree of freedom: on 20 points,
    # K <= 9. Beyond, the fit interpolates and the criterion measures rounding.
    x = torch.linspace(0, 1, 20, dtype=torch.float64)
    y = torch.sin(7 * x) + 0.1 * torch.cos(31 * x)
    model, history = relu_ext.fit_curve(x, y, "auto", max_units=20)
    assert len(history.scores) == 9
    assert relu_ext.curve_summary(model, x, y).dof >= 2
    _, through = relu_ext.fit_curve(x, y, "auto", max_units=20, through=([0.5], [0.0]))
    assert len(through.scores) == 10  # a point to pass through is one parameter less
    xb = torch.stack([torch.linspace(0, 1, 30, dtype=torch.float64)] * 2)
    w = torch.ones_like(xb)
    w[1, 5:] = 0  # five points: K <= 2
    _, batch = relu_ext.fit_curve(xb, xb, "auto", max_units=5, weights=w)
    assert batch.scores[1, 2:].isnan().all() and not batch.scores[1, :2].isnan().any()
    assert not batch.scores[0].isnan().any()


def test_exact_data_gets_its_own_units_not_rounding_s():
    # |x - 1.5| without noise: two segments; more only fit rounding.
    x = torch.linspace(0, 4, 101, dtype=torch.float64)
    for select in CRITERIA:
        _, history = relu_ext.fit_curve(x, (x - 1.5).abs(), "auto", select=select)
        assert history.units == 2, select


@pytest.mark.parametrize("select", CRITERIA)
def test_constraints_and_through_compose(select):
    g = torch.Generator().manual_seed(6)
    x = torch.rand(500, generator=g, dtype=torch.float64)
    y = torch.sqrt(x) + 0.02 * torch.randn(500, generator=g, dtype=torch.float64)
    model, history = relu_ext.fit_curve(x, y, "auto", max_units=8, select=select, monotone=1,
                                        convex=False, through=([0.0], [0.0]))
    assert history.units >= 3
    piecewise = model.to_piecewise()
    assert (piecewise.slopes >= 0).all() and (torch.diff(piecewise.slopes) <= 0).all()
    assert model(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)


def test_through_points_are_not_free_parameters():
    # A point to pass through is one equation: BIC counts 2K - 1 parameters.
    g = torch.Generator().manual_seed(7)
    x = torch.rand(200, generator=g, dtype=torch.float64)
    y = x + 0.1 * torch.randn(200, generator=g, dtype=torch.float64)
    _, free = relu_ext.fit_curve(x, y, "auto", max_units=1)
    _, through = relu_ext.fit_curve(x, y, "auto", max_units=1, through=([0.5], [0.5]))
    fitted, _ = relu_ext.fit_curve(x, y, 1, through=([0.5], [0.5]))
    rss = ((fitted(x).detach() - y) ** 2).sum().item()
    assert through.scores[0] == pytest.approx(
        200 * math.log(2 * math.pi * rss / 200) + 200 + math.log(200), rel=1e-9)
    assert free.scores[0] != through.scores[0]


@pytest.mark.parametrize("select", CRITERIA)
def test_least_absolute_error_chooses_too(select):
    g = torch.Generator().manual_seed(8)
    x = torch.rand(600, generator=g, dtype=torch.float64)
    noise = torch.distributions.Laplace(0.0, 0.03).sample((600,)).double()
    y = 2 * torch.relu(x - 0.5) - x + noise
    _, history = relu_ext.fit_curve(x, y, "auto", max_units=6, select=select, loss="mae")
    assert history.units == 2


def test_constraints_no_k_can_meet_are_an_error():
    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    with pytest.raises(ValueError, match="up to max_units units is monotone=\\+1"):
        relu_ext.fit_curve(x, x, "auto", max_units=3, monotone=1,
                           through=([0.0, 1.0], [1.0, 0.0]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(units="auto", max_units=0), "max_units must be an int >= 1, but got 0"),
    (dict(units="auto", max_units=2.5), "max_units must be an int >= 1, but got 2.5"),
    (dict(units="auto", select="aic"), "select must be one of 'bic', 'cv', but got 'aic'"),
    (dict(units="auto", select="cv", folds=1), "folds must be an int >= 2, but got 1"),
    (dict(units="auto", breakpoints=[0.5]), "breakpoints fix the number of units"),
    (dict(units="many"), "units must be an int >= 1 or \"auto\", but got 'many'"),
])
def test_bad_arguments_are_named(kwargs, message):
    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        relu_ext.fit_curve(x, x, **kwargs)
