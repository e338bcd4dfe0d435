"""relu_ext.curve_summary: standard errors, intervals and the fit's statistics
against independent computations (explicit weighted least squares, finite
differences, scipy's t distribution, a brute-force profile likelihood)."""

import math

import mpmath
import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch

import relu_ext
from relu_ext import ReLUSum, fit_curve
from relu_ext.curve import CurveSummary, curve_summary
from relu_ext.curve._stats import t_cdf, t_quantile

F64 = torch.float64


def noisy_curve(n=200, breakpoints=(-0.5, 0.8), slopes=(1.0, -1.5, 0.7), noise=0.1, seed=0,
                low=-2.0, high=2.0):
    """Sorted x uniform on (low, high), y a continuous piecewise-linear function plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.sort(torch.rand(n, generator=g, dtype=F64) * (high - low) + low).values
    t = torch.tensor(breakpoints, dtype=F64)
    s = torch.tensor(slopes, dtype=F64)
    y = s[0] * x + ((s[1:] - s[:-1]) * (x[:, None] - t).clamp_min(0)).sum(1)
    return x, y + noise * torch.randn(n, generator=g, dtype=F64)


def hinge_design(x, t):
    """[1, x, relu(x - t_k)]: the design matrix of fixed breakpoints, in NumPy."""
    x = np.asarray(x, dtype=float)
    return np.column_stack([np.ones_like(x), x] + [np.maximum(x - tk, 0) for tk in t])


def lines_of(t):
    """(slopes, intercepts) of c + α·x + Σ β_k·relu(x - t_k), segment by segment, as
    matrices applied to coef = (c, α, β): slope j = α + Σ_{k<j} β_k, intercept
    j = c - Σ_{k<j} β_k·t_k."""
    h = len(t)
    slope_rows, intercept_rows = np.zeros((h + 1, h + 2)), np.zeros((h + 1, h + 2))
    for j in range(h + 1):
        slope_rows[j, 1] = 1
        intercept_rows[j, 0] = 1
        for k in range(j):
            slope_rows[j, 2 + k] = 1
            intercept_rows[j, 2 + k] = -t[k]
    return slope_rows, intercept_rows


# -- the Student t distribution ------------------------------------------------------------------

DOFS = [1, 2, 3, 5, 10, 30, 100, 1000, 1e6]
# Away from p = ½, where scipy's own quantile loses digits (see the closed forms below).
PS = np.logspace(-6, np.log10(0.499), 40)
PS = np.concatenate([PS, 1 - PS])


@pytest.mark.parametrize("dof", DOFS)
def test_t_quantile_and_cdf_match_scipy(dof):
    for p in PS:
        expected = scipy.stats.t.ppf(p, dof)
        assert t_quantile(p, dof) == pytest.approx(expected, rel=1e-10, abs=0)
        assert t_cdf(expected, dof) == pytest.approx(p, rel=1e-10, abs=0)
        assert t_cdf(-expected, dof) == pytest.approx(1 - p, rel=1e-10, abs=0)


def cauchy_quantile(p):
    """tan(π(p - ½)), evaluated where it is well-conditioned (1 - p and ½ - q are exact)."""
    q = min(p, 1 - p)
    lower = -math.tan(math.pi * (0.5 - q)) if q > 0.25 else -1 / math.tan(math.pi * q)
    return lower if p < 0.5 else -lower


def test_t_near_its_centre_and_at_its_ends():
    # Closed forms: ν = 1 is Cauchy, ν = 2 has t = (2p - 1)/√(2p(1 - p)).
    for p in [0.5 - 1e-10, 0.5 - 1e-6, 0.4, 0.5 + 1e-8, 1e-6, 1e-3, 1 - 1e-6]:
        assert t_quantile(p, 1) == pytest.approx(cauchy_quantile(p), rel=1e-13)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)),
                                                 rel=1e-13)
    assert t_quantile(0.5, 7) == 0 and t_cdf(0.0, 7) == 0.5
    assert t_quantile(0.0, 3) == -math.inf and t_quantile(1.0, 3) == math.inf
    assert t_cdf(-math.inf, 3) == 0 and t_cdf(math.inf, 3) == 1
    for bad in [(-0.1, 3), (1.5, 3), (0.5, 0), (0.5, -2)]:
        with pytest.raises(ValueError):
            t_quantile(*bad)


# -- standard errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
def test_fixed_breakpoints_are_weighted_least_squares(weighted):
    # Years: the columns 1 and x are 2000 apart in scale.
    x, y = noisy_curve(n=150, breakpoints=(1995.3, 2008.1), slopes=(0.4, -0.2, 1.1),
                       noise=0.5, seed=1, low=1985.0, high=2020.0)
    t = [1995.3, 2008.1]
    g = torch.Generator().manual_seed(2)
    w = torch.rand(150, generator=g, dtype=F64) * 3 if weighted else None
    if weighted:
        w[::10] = 0  # left out entirely
    model, _ = fit_curve(x, y, 3, breakpoints=t, weights=w)
    summary = curve_summary(model, x, y, weights=w, fixed_breakpoints=True)

    keep = np.ones(150, bool) if w is None else w.numpy() > 0
    xs, ys = x.numpy()[keep], y.numpy()[keep]
    ws = np.ones_like(xs) if w is None else w.numpy()[keep]
    # The textbook formulas, (XᵀWX)⁻¹XᵀWy and s²·(XᵀWX)⁻¹, in 40 digits: in float64
    # the normal equations of years would lose 10 of their 16.
    with mpmath.workdps(40):
        design = mpmath.matrix(hinge_design(xs, t).tolist())
        weighted = mpmath.diag(ws.tolist())
        inverse = (design.T * weighted * design) ** -1
        coef = inverse * design.T * weighted * mpmath.matrix(ys.tolist())
        residual = mpmath.matrix(ys.tolist()) - design * coef
        rss = sum(wi * ri**2 for wi, ri in zip(ws, residual))
        n, p = design.rows, design.cols
        cov = np.array((rss / (n - p) * inverse).tolist(), dtype=float)
        coef, rss = np.array(coef.tolist(), dtype=float)[:, 0], float(rss)
    slope_rows, intercept_rows = lines_of(t)

    assert (int(summary.nobs), int(summary.n_params), int(summary.dof)) == (n, p, n - p)
    np.testing.assert_allclose(summary.breakpoints.numpy(), t, rtol=1e-14)
    # The fit's own coefficients (the intercept at x = 0 is 2000 slopes away from the data).
    np.testing.assert_allclose(summary.slopes.numpy(), slope_rows @ coef, rtol=1e-9)
    np.testing.assert_allclose(summary.intercepts.numpy(), intercept_rows @ coef, rtol=0,
                               atol=1e-9 * 2020 * np.abs(slope_rows @ coef).max())
    np.testing.assert_allclose(float(summary.rss), rss, rtol=1e-10)
    for name, rows in (("se_slopes", slope_rows), ("se_intercepts", intercept_rows)):
        expected = np.sqrt(np.diag(rows @ cov @ rows.T))
        np.testing.assert_allclose(getattr(summary, name).numpy(), expected, rtol=1e-10)
    assert summary.se_breakpoints.isnan().all() and summary.fixed_breakpoints is True
    for bound in summary.conf_int()["breakpoints"]:
        assert bound.isnan().all()


def parameters_of(summary):
    """θ = (c, α, β, t) of a one-curve summary, as a NumPy vector."""
    slopes = summary.slopes.numpy()
    return np.concatenate([[summary.intercepts[0].item(), slopes[0]], np.diff(slopes),
                           summary.breakpoints.numpy()])


def curve_at(theta, x, h):
    c, alpha, beta, t = theta[0], theta[1], theta[2:2 + h], theta[2 + h:]
    return c + alpha * x + (beta * np.maximum(x[:, None] - t, 0)).sum(1)


def outputs_at(theta, h):
    """(slopes, intercepts, breakpoints) of θ, by walking the segments."""
    c, alpha, beta, t = theta[0], theta[1], theta[2:2 + h], theta[2 + h:]
    slopes, intercepts = [alpha], [c]
    for k in range(h):
        slopes.append(slopes[-1] + beta[k])
        intercepts.append(intercepts[-1] - beta[k] * t[k])
    return np.concatenate([slopes, intercepts, t])


def central_difference(f, theta, step):
    columns = []
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = step * max(1.0, abs(theta[i]))
        columns.append((f(theta + e) - f(theta - e)) / (2 * e[i]))
    return np.stack(columns, -1)


def test_standard_errors_match_a_finite_difference_jacobian():
    x, y = noisy_curve(n=120, seed=3, noise=0.2)
    g = torch.Generator().manual_seed(4)
    w = torch.rand(120, generator=g, dtype=F64) + 0.5
    model, _ = fit_curve(x, y, 3, weights=w)
    summary = curve_summary(model, x, y, weights=w)
    theta, h = parameters_of(summary), summary.breakpoints.shape[0]
    xs, ws = x.numpy(), w.numpy()
    # No point within the step of a breakpoint: f is smooth in θ there.
    assert np.abs(xs[:, None] - theta[2 + h:]).min() > 1e-5

    jacobian = central_difference(lambda th: curve_at(th, xs, h), theta, 1e-7)
    cov = float(summary.sigma) ** 2 * np.linalg.inv(jacobian.T @ (ws[:, None] * jacobian))
    gradient = central_difference(lambda th: outputs_at(th, h), theta, 1e-6)
    se = np.sqrt(np.diag(gradient @ cov @ gradient.T))
    k = h + 1
    np.testing.assert_allclose(summary.se_slopes.numpy(), se[:k], rtol=1e-6)
    np.testing.assert_allclose(summary.se_intercepts.numpy(), se[k:2 * k], rtol=1e-6)
    np.testing.assert_allclose(summary.se_breakpoints.numpy(), se[2 * k:], rtol=1e-6)
    # And the summary's θ is the model's function.
    np.testing.assert_allclose(curve_at(theta, xs, h), model(x).detach().numpy(), atol=1e-12)


def test_a_singular_fit_has_nan_standard_errors():
    # Two breakpoints between the same two points: their columns -β·[x > t] coincide.
    model = ReLUSum.from_piecewise([4.2, 4.6], [1.0, -1.0, 0.5], [0.0, 8.4, 1.5], dtype=F64)
    x = torch.arange(10, dtype=F64)
    y = model(x).detach() + 0.1 * torch.sin(7 * x)
    estimated = curve_summary(model, x, y)
    assert all(getattr(estimated, f"se_{name}").isnan().all()
               for name in ("breakpoints", "slopes", "intercepts"))
    assert torch.isfinite(estimated.rss)
    fixed = curve_summary(model, x, y, fixed_breakpoints=True)
    assert torch.isfinite(fixed.se_slopes).all() and torch.isfinite(fixed.se_intercepts).all()


def test_breakpoints_outside_the_data_or_without_a_kink_are_not_parameters():
    x, y = noisy_curve(n=80, breakpoints=(0.3,), slopes=(1.0, -1.0), seed=5)
    inside = ReLUSum.from_piecewise([0.3], [1.0, -1.0], [0.0, 0.6], dtype=F64)
    # The same function on the data, with a kink left of it, one right of it,
    # and two units that cancel at 1.0 (to_piecewise keeps a kink of slope change 0).
    extra = ReLUSum.from_piecewise([-5.0, 0.3, 7.0], [3.0, 1.0, -1.0, 2.0],
                                   [10.0, 0.0, 0.6, -20.4], dtype=F64)
    with torch.no_grad():
        cancel = ReLUSum(extra.units + 2, bias=True, dtype=F64)
        cancel.m.copy_(torch.cat([extra.m, torch.tensor([1.0, 1.0], dtype=F64)]))
        cancel.b.copy_(torch.cat([extra.b, torch.tensor([-1.0, -1.0], dtype=F64)]))
        cancel.a.copy_(torch.cat([extra.a, torch.tensor([2.0, -2.0], dtype=F64)]))
        cancel.bias.copy_(extra.bias)
    assert cancel.to_piecewise().breakpoints.shape[0] == 4
    expected = curve_summary(inside, x, y)
    for other in (extra, cancel):
        found = curve_summary(other, x, y)
        assert int(found.n_params) == 4
        for name in ("breakpoints", "slopes", "intercepts", "se_breakpoints", "se_slopes",
                     "se_intercepts", "rss"):
            torch.testing.assert_close(getattr(found, name), getattr(expected, name),
                                       rtol=1e-9, atol=1e-12)


# -- the fit's statistics ------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fixed", [False, True])
def test_likelihood_and_criteria_by_their_formulas(weighted, fixed):
    x, y = noisy_curve(n=90, seed=6, noise=0.3)
    g = torch.Generator().manual_seed(7)
    w = (torch.rand(90, generator=g, dtype=F64) * 2).where(torch.arange(90) % 7 != 0, 0.0) \
        if weighted else None
    model, _ = fit_curve(x, y, 3, weights=w)
    s = curve_summary(model, x, y, weights=w, fixed_breakpoints=fixed)
    keep = np.ones(90, bool) if w is None else w.numpy() > 0
    ws = np.ones(keep.sum()) if w is None else w.numpy()[keep]
    ys = y.numpy()[keep]
    r = ys - model(x).detach().numpy()[keep]
    n, p = len(ys), (4 if fixed else 6)
    rss = (ws * r**2).sum()
    tss = (ws * (ys - np.average(ys, weights=ws)) ** 2).sum()
    # The Gaussian log-likelihood of r_i ~ N(0, σ²/w_i) at σ̂² = RSS/n (statsmodels' WLS llf).
    llf = scipy.stats.norm.logpdf(r, scale=np.sqrt(rss / n / ws)).sum()
    assert (int(s.nobs), int(s.n_params), int(s.dof)) == (n, p, n - p)
    assert float(s.rss) == pytest.approx(rss, rel=1e-10)
    assert float(s.sigma) == pytest.approx(math.sqrt(rss / (n - p)), rel=1e-10)
    assert float(s.r_squared) == pytest.approx(1 - rss / tss, rel=1e-10)
    assert float(s.log_likelihood) == pytest.approx(llf, rel=1e-10)
    # statsmodels' own expressions, written out.
    assert float(s.log_likelihood) == pytest.approx(
        -n / 2 * np.log(2 * np.pi) - n / 2 * np.log(rss / n) - n / 2 + 0.5 * np.log(ws).sum(),
        rel=1e-10)
    assert float(s.aic) == pytest.approx(2 * p - 2 * llf, rel=1e-10)
    assert float(s.bic) == pytest.approx(p * np.log(n) - 2 * llf, rel=1e-10)
    assert s.level == 0.95 and s.fixed_breakpoints is fixed


# -- batches, fit()'s models, printing ------------------------------------------------------------

FIELDS = ("breakpoints", "slopes", "intercepts", "se_breakpoints", "se_slopes", "se_intercepts",
          "nobs", "n_params", "dof", "rss", "r_squared", "sigma", "log_likelihood", "aic", "bic")


def batch_of_fits():
    """Three curves of 2, 3 and 4 segments and 60, 80 and 100 points, fitted one
    by one, and the batch: (B, 100) rows padded with weight 0 (and NaN), and a
    ReLUSum(channels=3) of the three models (a unit of a = 0 padding the short ones)."""
    curves = [noisy_curve(60, (0.1,), (1.0, -1.0), seed=10),
              noisy_curve(80, (-0.7, 0.9), (0.5, 2.0, -1.0), seed=11),
              noisy_curve(100, (-1.0, 0.0, 1.0), (1.0, -1.0, 1.0, -1.0), seed=12)]
    models = [fit_curve(x, y, len(x) // 20 - 1)[0] for x, y in curves]
    units = max(m.units for m in models)
    batch = ReLUSum(units, channels=3, dim=0, bias=True, dtype=F64)
    xs = torch.full((3, 100), math.nan, dtype=F64)
    ys, ws = xs.clone(), torch.zeros(3, 100, dtype=F64)
    with torch.no_grad():
        for c, (model, (x, y)) in enumerate(zip(models, curves)):
            pad = units - model.units
            batch.m[c] = torch.cat([model.m, torch.ones(pad, dtype=F64)])
            batch.b[c] = torch.cat([model.b, torch.zeros(pad, dtype=F64)])
            batch.a[c] = torch.cat([model.a, torch.zeros(pad, dtype=F64)])
            batch.bias[c] = model.bias
            xs[c, :len(x)], ys[c, :len(x)], ws[c, :len(x)] = x, y, 1.0
    return curves, models, batch, xs, ys, ws


def test_a_batch_summary_is_each_curves_own():
    curves, models, batch, xs, ys, ws = batch_of_fits()
    summary = curve_summary(batch, xs, ys, weights=ws)
    assert len(summary) == 3 and summary.slopes.shape == (3, 4)
    assert summary.breakpoints[0, 1:].isnan().all() and summary.slopes[1, 3].isnan()
    for c, (model, (x, y)) in enumerate(zip(models, curves)):
        alone = curve_summary(model, x, y)
        for one in (summary[c], summary[c - 3]):
            for name in FIELDS:
                torch.testing.assert_close(getattr(one, name), getattr(alone, name),
                                           rtol=1e-9, atol=1e-12)
        k = alone.slopes.shape[0]
        torch.testing.assert_close(summary.slopes[c, :k], alone.slopes)
        wald = summary.conf_int(method="wald")
        for name, (low, high) in alone.conf_int(method="wald").items():
            width = low.shape[0]
            torch.testing.assert_close(wald[name][0][c, :width], low, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(wald[name][1][c, :width], high, rtol=1e-9, atol=1e-12)
    text = str(summary)
    assert "summary[c]" in text and len(text.splitlines()) < 12
    assert repr(summary).startswith("CurveSummary(3 curves")
    with pytest.raises(IndexError, match="curve 3"):
        summary[3]
    with pytest.raises(TypeError, match="int"):
        summary[1.0]
    with pytest.raises(TypeError, match="one curve"):
        len(summary[0])


def test_a_batch_from_fit_curve_and_its_profile_intervals():
    x, y = zip(*[noisy_curve(70, (-0.4, 0.6), (1.0, -1.0, 0.8), noise=0.15, seed=s)
                 for s in (20, 21)])
    xs, ys = torch.stack(x), torch.stack(y)
    model, _ = fit_curve(xs, ys, 3)
    summary = curve_summary(model, xs, ys)
    profile = summary.conf_int()["breakpoints"]
    for c in range(2):
        alone = curve_summary(fit_curve(xs[c], ys[c], 3)[0], xs[c], ys[c])
        low, high = alone.conf_int()["breakpoints"]
        torch.testing.assert_close(profile[0][c], low, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(profile[1][c], high, rtol=1e-9, atol=1e-12)
        # summary[c] reuses the batch's intervals.
        torch.testing.assert_close(summary[c].conf_int()["breakpoints"][0], low, rtol=1e-9,
                                   atol=1e-12)


def test_a_float32_model_trained_by_fit():
    g = torch.Generator().manual_seed(8)
    x = torch.rand(300, generator=g) * 4 - 2
    y = (x - 0.5).abs() + 0.05 * torch.randn(300, generator=g)
    torch.manual_seed(0)
    model = ReLUSum(4, bias=True, input_range=(-2, 2))
    relu_ext.fit(model, x, y, epochs=300, lr=0.05, loss="mse", seed=0, progress=False)
    summary = relu_ext.curve_summary(model, x, y)
    assert summary.slopes.dtype == F64 and summary.rss.dtype == F64
    h = summary.breakpoints.shape[0]
    assert h <= 4 and ((summary.breakpoints > x.min()) & (summary.breakpoints < x.max())).all()
    assert int(summary.n_params) == 2 * h + 2 and int(summary.nobs) == 300
    with torch.no_grad():
        rss = ((model(x) - y).double() ** 2).sum().item()
    assert float(summary.rss) == pytest.approx(rss, rel=1e-4)
    assert torch.isfinite(summary.se_slopes).all()


def test_str_shows_the_numbers():
    x, y = noisy_curve(n=100, seed=9)
    model, _ = fit_curve(x, y, 3)
    s = curve_summary(model, x, y, level=0.9)
    text = str(s)
    profile = s.conf_int()["breakpoints"]
    numbers = [s.sigma, s.r_squared, s.aic, s.bic, s.log_likelihood, *s.breakpoints,
               *s.se_breakpoints, *profile[0], *profile[1], *s.slopes, *s.se_slopes,
               *s.intercepts, *s.se_intercepts, *s.conf_int()["slopes"][0]]
    for value in numbers:
        assert f"{float(value):.6g}" in text
    for value in (s.nobs, s.n_params, s.dof):
        assert str(int(value)) in text
    assert "[0.05" in text and "0.95]" in text
    assert "profile, F test" in text or "profile, bootstrap" in text
    assert "estimated" in text
    assert "fixed" in str(curve_summary(model, x, y, fixed_breakpoints=True))
    assert "\n" not in repr(s) and len(repr(s)) < 150 and "segments=3" in repr(s)


def test_the_profile_intervals_are_computed_once_per_level(monkeypatch):
    x, y = noisy_curve(n=100, seed=9)
    model, _ = fit_curve(x, y, 3)
    s = curve_summary(model, x, y)
    calls = []
    compiled = relu_ext.ops._C.breakpoint_intervals

    def counted(*args, **kwargs):
        calls.append(args)
        return compiled(*args, **kwargs)

    monkeypatch.setattr(relu_ext.ops._C, "breakpoint_intervals", counted)
    first = s.conf_int()["breakpoints"]
    str(s), s.conf_int(), str(s)
    assert len(calls) == 1
    assert s.conf_int(level=0.5)["breakpoints"][0][0] > first[0][0]
    assert len(calls) == 2


# -- profile intervals against brute force --------------------------------------------------------

def least_squares_rss(x, y, w, t):
    """The exact weighted RSS of the best continuous function with breakpoints t."""
    design = hinge_design(x, t) * np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)[0]
    return ((y * np.sqrt(w) - design @ coef) ** 2).sum()


def profile_rss(x, y, w, t, k, tau):
    """min RSS with breakpoint k at tau and the others (H <= 2) re-fitted, kept
    in order: a grid over the other breakpoint, then scipy's bounded search
    around the grid's best."""
    if len(t) == 1:
        return least_squares_rss(x, y, w, [tau])
    low, high = (tau, x.max()) if k == 0 else (x.min(), tau)

    def rss(other):
        return least_squares_rss(x, y, w, sorted([tau, other]))

    grid = np.linspace(low, high, 202)[1:-1]
    values = [rss(v) for v in grid]
    i = int(np.argmin(values))
    found = scipy.optimize.minimize_scalar(
        rss, bounds=(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]), method="bounded",
        options={"xatol": 1e-12 * (x.max() - x.min())})
    return min(found.fun, values[i])


def brute_force_interval(x, y, w, t, k, limit, steps=400):
    """Where profile_rss stays within limit·(its minimum): walk out from t_k on a
    grid, then brentq between the last two points (the data's ends bound it)."""
    rss_min = min(least_squares_rss(x, y, w, t), profile_rss(x, y, w, t, k, t[k]))
    threshold = limit * rss_min
    step = (x.max() - x.min()) / steps

    def excess(tau):
        return profile_rss(x, y, w, t, k, tau) - threshold

    ends = []
    for direction, end in ((-1, x.min()), (1, x.max())):
        inside = t[k]
        while True:
            outside = inside + direction * step
            if (outside - end) * direction >= 0:
                ends.append(end if excess(end) <= 0 else scipy.optimize.brentq(
                    excess, *sorted([inside, end]), xtol=1e-12))
                break
            if excess(outside) > 0:
                ends.append(scipy.optimize.brentq(excess, *sorted([inside, outside]),
                                                  xtol=1e-12))
                break
            inside = outside
    return ends


@pytest.mark.parametrize("case", ["one", "two"])
def test_profile_intervals_match_brute_force(case):
    if case == "one":
        x, y = noisy_curve(n=60, breakpoints=(0.2,), slopes=(1.0, -0.5), noise=0.3, seed=13)
        w = np.ones(60)
        model, _ = fit_curve(x, y, 2)
    else:
        x, y = noisy_curve(n=80, breakpoints=(-0.8, 0.7), slopes=(1.0, -1.0, 0.5), noise=0.3,
                           seed=14)
        w = np.random.default_rng(15).uniform(0.5, 2.0, 80)
        model, _ = fit_curve(x, y, 3, weights=torch.from_numpy(w))
    summary = curve_summary(model, x, y, weights=None if case == "one" else w, calibrate="f")
    low, high = summary.conf_int()["breakpoints"]
    wald_low, wald_high = summary.conf_int(method="wald")["breakpoints"]
    dof = int(summary.dof)
    limit = 1 + scipy.stats.t.ppf(0.975, dof) ** 2 / dof
    t = summary.breakpoints.numpy()
    for k in range(len(t)):
        expected = brute_force_interval(x.numpy(), y.numpy(), w, t, k, limit)
        # The solver finds each end to 1e-3 of its distance from t_k.
        assert low[k].item() == pytest.approx(expected[0], abs=1e-3 * (t[k] - expected[0]))
        assert high[k].item() == pytest.approx(expected[1], abs=1e-3 * (expected[1] - t[k]))
        assert low[k] < t[k] < high[k]
        assert high[k] - low[k] > 0.5 * (wald_high[k] - wald_low[k])


def test_profile_intervals_of_a_small_noisy_sample():
    x, y = noisy_curve(n=16, breakpoints=(0.3,), slopes=(1.0, -1.0), noise=0.5, seed=16)
    model, _ = fit_curve(x, y, 2)
    s = curve_summary(model, x, y)
    (low, high), (wald_low, wald_high) = (s.conf_int()["breakpoints"],
                                          s.conf_int(method="wald")["breakpoints"])
    assert low[0] <= s.breakpoints[0] <= high[0]
    assert x.min() <= low[0] and high[0] <= x.max()
    assert high[0] - low[0] >= 0.8 * (wald_high[0] - wald_low[0])
    wider = s.conf_int(level=0.99)["breakpoints"]
    assert wider[0][0] <= low[0] and high[0] <= wider[1][0]


# -- arguments -----------------------------------------------------------------------------------

def bad_cases():
    x, y = noisy_curve(n=30, breakpoints=(0.1,), slopes=(1.0, -1.0), seed=17)
    model, _ = fit_curve(x, y, 2)
    batch, _ = fit_curve(torch.stack([x, x]), torch.stack([y, y]), 2)
    nan_x = x.clone()
    nan_x[3] = math.nan
    w = torch.ones(30, dtype=F64)
    # Four points around the breakpoint: as many as the parameters.
    near = (x - model.to_piecewise().breakpoints[0]).abs().argsort()[:4].sort().values
    return [
        (dict(model=torch.nn.Linear(1, 1)), TypeError, "model must be a relu_ext.ReLUSum"),
        (dict(model=ReLUSum(3)), ValueError, "model must have a bias"),
        (dict(model=ReLUSum(2, channels=2, dim=1, bias=True)), ValueError, "model must have dim=0"),
        (dict(model=batch), ValueError, "x must have shape (channels, N)"),
        (dict(model=batch, x=torch.stack([x, x, x]), y=torch.stack([y, y, y])), ValueError,
         "x must have shape (channels, N)"),
        (dict(x=torch.stack([x, x]), y=torch.stack([y, y])), ValueError, "x must be 1-D"),
        (dict(y=y[:-1]), ValueError, "data of another length"),
        (dict(x=["a"] * 30), TypeError, "x must be numbers"),
        (dict(y=y.to(torch.complex128)), TypeError, "y must be real"),
        (dict(weights=w[:-1]), ValueError, "weights must have x's shape"),
        (dict(weights=-w), ValueError, "weights must be >= 0"),
        (dict(weights=w * math.inf), ValueError, "weights must be finite"),
        (dict(weights=w * 0), ValueError, "weights must not be all zero"),
        (dict(x=nan_x), ValueError, "x must be finite"),
        (dict(y=y * math.nan), ValueError, "y must be finite"),
        (dict(level=1.0), ValueError, "level must be in (0, 1)"),
        (dict(level=0), ValueError, "level must be in (0, 1)"),
        (dict(level=True), TypeError, "level must be a number"),
        (dict(level="0.9"), TypeError, "level must be a number"),
        (dict(fixed_breakpoints=1), TypeError, "fixed_breakpoints must be a bool"),
        (dict(x=x[near], y=y[near]), ValueError, "needs more points than parameters"),
        (dict(x=x[near], y=y[near], fixed_breakpoints=True, weights=torch.tensor([1.0, 1, 0, 1])),
         ValueError, "3 points of positive weight for 3 parameters"),
    ], dict(model=model, x=x, y=y)


@pytest.mark.parametrize("index", range(len(bad_cases()[0])))
def test_bad_arguments_are_named(index):
    cases, good = bad_cases()
    change, error, message = cases[index]
    arguments = {**good, **change}
    options = {name: arguments.pop(name) for name in ("weights", "level", "fixed_breakpoints")
               if name in arguments}
    with pytest.raises(error) as raised:
        curve_summary(arguments["model"], arguments["x"], arguments["y"], **options)
    assert str(raised.value).startswith("curve_summary(): ")
    assert message in str(raised.value)


def test_bad_conf_int_arguments():
    x, y = noisy_curve(n=30, breakpoints=(0.1,), slopes=(1.0, -1.0), seed=17)
    s = curve_summary(fit_curve(x, y, 2)[0], x, y)
    with pytest.raises(ValueError, match="method must be 'profile' or 'wald'"):
        s.conf_int(method="score")
    with pytest.raises(ValueError, match=r"conf_int\(\): level must be in \(0, 1\)"):
        s.conf_int(level=95)


# -- speed ---------------------------------------------------------------------------------------

def test_exported():
    assert relu_ext.curve_summary is curve_summary and "curve_summary" in relu_ext.__all__
    assert {"curve_summary", "CurveSummary"} <= set(relu_ext.curve.__all__)
    x, y = noisy_curve(n=30, breakpoints=(0.1,), slopes=(1.0, -1.0), seed=17)
    assert isinstance(curve_summary(fit_curve(x, y, 2)[0], x, y), CurveSummary)


def test_an_auto_batch_summary_reports_the_bic_the_selection_used():
    # fit_curve(units="auto") and curve_summary count the same 2K parameters
    # with the same likelihood: the chosen K's score is the summary's BIC,
    # for each curve of a batch with its own K (inert units left out).
    g = torch.Generator().manual_seed(11)
    x = torch.rand(3, 400, generator=g, dtype=torch.float64)
    y = torch.stack([0.5 * x[0], (x[1] - 0.5).abs(), torch.sin(6 * x[2])])
    y = y + 0.03 * torch.randn(3, 400, generator=g, dtype=torch.float64)
    w = 0.5 + torch.rand(3, 400, generator=g, dtype=torch.float64)
    model, history = relu_ext.fit_curve(x, y, "auto", max_units=8, weights=w)
    summary = relu_ext.curve_summary(model, x, y, weights=w)
    units = history.units.tolist()
    assert units[0] == 1 and units[1] == 2 and units[2] > 2
    for c, k in enumerate(units):
        assert summary[c].slopes.shape == (k,)
        assert summary.bic[c].item() == pytest.approx(history.scores[c, k - 1].item(), rel=1e-9)


@pytest.mark.parametrize("through", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("exact", [False, True])
def test_the_chosen_ks_score_is_the_summarys_bic(through, weighted, exact):
    # One likelihood, one parameter count (csrc/curve/criteria.h): each point
    # passed through takes a parameter away in both, and an exact fit's
    # error is floored alike in both (else the summary's BIC would be the
    # log of rounding).
    g = torch.Generator().manual_seed(23)
    x = torch.sort(torch.rand(150, generator=g, dtype=F64) * 10).values
    y = 2 + 0.8 * x - 1.2 * torch.relu(x - 3) - 0.5 * torch.relu(x - 7)  # through (1, 2.8)
    if not exact:
        y = y + 0.3 * torch.randn(150, generator=g, dtype=F64)
    w = 0.2 + 2 * torch.rand(150, generator=g, dtype=F64) if weighted else None
    points = ([1.0], [2.8]) if through else None
    model, history = fit_curve(x, y, "auto", max_units=6, weights=w, through=points)
    summary = curve_summary(model, x, y, weights=w, through=points, calibrate="f")
    k = history.units
    assert summary.slopes.shape == (k,)
    assert int(summary.n_params) == 2 * k - (1 if through else 0)
    assert summary.bic.item() == pytest.approx(history.scores[k - 1], rel=1e-12, abs=1e-9)
    if exact:
        assert k == 3


def test_a_through_points_standard_errors_are_the_constrained_fits():
    # Through (0.5, 0), with the breakpoint known, the model is linear and
    # constrained: its covariance is the least squares' on the constraint's
    # null space, σ²·N(NᵀJᵀWJN)⁻¹Nᵀ.
    x, y = noisy_curve(n=120, breakpoints=(1.0,), slopes=(1.0, -1.0), noise=0.2, seed=24,
                       low=0.0, high=3.0)
    through = ([0.5], [0.0])
    model, _ = fit_curve(x, y, 2, breakpoints=[1.0], through=through)
    s = curve_summary(model, x, y, through=through, fixed_breakpoints=True)
    assert int(s.n_params) == 2
    design = np.stack([np.ones(120), x.numpy(), np.maximum(x.numpy() - 1.0, 0)], 1)
    null = np.array([[-0.5, 0.0], [1.0, 0.0], [0.0, 1.0]])  # c + 0.5·α = 0
    reduced = design @ null
    covariance = null @ np.linalg.inv(reduced.T @ reduced) @ null.T * float(s.sigma) ** 2
    for rows, se in (([[0.0, 1.0, 0.0], [0.0, 1.0, 1.0]], s.se_slopes),
                     ([[1.0, 0.0, 0.0], [1.0, 0.0, -1.0]], s.se_intercepts)):
        rows = np.array(rows)
        np.testing.assert_allclose(se.numpy(), np.sqrt(np.einsum("ij,jk,ik->i", rows, covariance,
                                                                 rows)), rtol=1e-9)
    with pytest.raises(ValueError, match="calibrate='bootstrap'.*through"):
        curve_summary(model, x, y, through=through, calibrate="bootstrap")


# -- the bootstrap's calibration ------------------------------------------------------------

def weak_curves(curves=60, n=50, noise=0.5, seed=30):
    """Two-segment truths (breakpoint 0.5, slope 0 then 2) on [0, 1], too few
    points for the noise for the F test: kink/noise·√N = 28."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(curves, n, generator=g, dtype=F64)
    return x, 2 * (x - 0.5).clamp_min(0) + noise * torch.randn(curves, n, generator=g, dtype=F64)


def test_the_bootstrap_widens_where_the_f_test_is_short_and_is_repeatable():
    x, y = weak_curves()
    model, _ = fit_curve(x, y, 2)
    f = curve_summary(model, x, y, calibrate="f")
    boot = curve_summary(model, x, y, calibrate="bootstrap", replicates=100, seed=3)
    again = curve_summary(model, x, y, calibrate="bootstrap", replicates=100, seed=3)
    other = curve_summary(model, x, y, calibrate="bootstrap", replicates=100, seed=4)
    (f_low, f_high), (low, high) = f.conf_int()["breakpoints"], boot.conf_int()["breakpoints"]
    # The limit is never below F's (each end found to 1e-3 of its distance).
    t = f.breakpoints
    assert (low <= f_low + 1e-3 * (t - f_low)).all()
    assert (high >= f_high - 1e-3 * (f_high - t)).all()
    assert ((high - low) > 1.05 * (f_high - f_low)).double().mean() > 0.5
    for name in ("breakpoints", "slopes", "intercepts"):
        assert all(torch.equal(a, b) for a, b in zip(boot.conf_int()[name],
                                                     again.conf_int()[name]))
    assert not torch.equal(other.conf_int()["breakpoints"][0], low)
    assert boot.bootstrapped.all() and not f.bootstrapped.any()
    # It covers the truth more often: 56 of these 60 against the F test's 53.
    truth = 0.5
    covered = [((lo <= truth) & (truth <= hi)).sum().item()
               for lo, hi in (f.conf_int()["breakpoints"], boot.conf_int()["breakpoints"])]
    assert covered[1] > covered[0]


def fixed_breakpoint_fit(x, y, t):
    """(RSS, slopes) of least squares with the breakpoints t held."""
    design = hinge_design(x, t)
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    residual = y - design @ coef
    slope_rows, _ = lines_of(t)
    return residual @ residual, slope_rows @ coef


def test_a_weak_breakpoints_interval_is_its_whole_calibrated_set():
    # One breakpoint: its profile is least squares with it held, on a grid
    # here. Where the kink is weak the set under the limit comes in pieces;
    # the interval spans them all, not the piece around the fit alone.
    x, y = weak_curves()
    model, _ = fit_curve(x, y, 2)
    summary = curve_summary(model, x, y, calibrate="bootstrap", replicates=100, seed=3)
    found = relu_ext.ops._C.breakpoint_intervals(
        x, y, None, summary.breakpoints.contiguous(), torch.full((60,), 1.1, dtype=F64), None,
        replicates=100, level=0.95, dof=summary.dof, seed=3)
    low, high, limits = found.low, found.high, found.limits
    pieces = []
    for b in range(60):
        xs, ys = x[b].numpy(), y[b].numpy()
        grid = np.linspace(xs.min(), xs.max(), 2001)
        least = fixed_breakpoint_fit(xs, ys, [summary.breakpoints[b, 0].item()])[0]
        under = np.array([fixed_breakpoint_fit(xs, ys, [tau])[0] for tau in grid]) \
            <= limits[b, 0].item() * least
        pieces.append(np.count_nonzero(np.diff(under.astype(int)) == 1) + under[0])
        assert low[b, 0].item() == pytest.approx(grid[under].min(), abs=2e-3)
        assert high[b, 0].item() == pytest.approx(grid[under].max(), abs=2e-3)
    assert sum(p > 1 for p in pieces) >= 5


def test_the_lines_beside_a_weak_breakpoint_follow_it_across_its_interval():
    # The slopes' intervals hold the slopes of the curve with the breakpoint
    # at either end of its interval; near the data's ends, where the end
    # segment still holds two points (a line through fewer is fixed by
    # nothing, and fit_curve fits none).
    x, y = weak_curves()
    model, _ = fit_curve(x, y, 2)
    summary = curve_summary(model, x, y, calibrate="bootstrap", replicates=100, seed=3)
    (low, high), (slope_low, slope_high) = (summary.conf_int()[name]
                                            for name in ("breakpoints", "slopes"))
    at_the_ends = 0
    for b in range(60):
        xs, ys = x[b].numpy(), y[b].numpy()
        ordered = np.sort(xs)
        ends = (max(low[b, 0].item(), ordered[1]), min(high[b, 0].item(), ordered[-3]))
        at_the_ends += ends != (low[b, 0].item(), high[b, 0].item())
        for end in ends:
            slopes = fixed_breakpoint_fit(xs, ys, [end])[1]
            for j in range(2):
                slack = 1e-3 * (1 + abs(slopes[j]))  # two close points fix a steep line loosely
                assert slope_low[b, j] - slack <= slopes[j] <= slope_high[b, j] + slack
    assert at_the_ends > 0


def test_auto_bootstraps_the_weak_fits_and_not_the_well_determined_ones():
    x, y = weak_curves(curves=10)
    model, _ = fit_curve(x, y, 2)
    assert curve_summary(model, x, y).bootstrapped.all()
    x, y = noisy_curve(n=1000, breakpoints=(-0.5, 0.8), noise=0.02, seed=31)
    model, _ = fit_curve(x, y, 3)
    summary = curve_summary(model, x, y)
    assert not summary.bootstrapped
    assert all(torch.equal(a, b) for a, b in zip(
        summary.conf_int()["breakpoints"],
        curve_summary(model, x, y, calibrate="f").conf_int()["breakpoints"]))


def test_the_replicates_lines_are_in_the_datas_units():
    # With almost no noise every replicate refits the curve itself: its
    # slopes and intercepts are the fit's, through the two standardisations.
    x, y = noisy_curve(n=300, breakpoints=(2000, 2015), noise=1e-9, seed=32, low=1990, high=2030)
    model, _ = fit_curve(x, y, 3)
    summary = curve_summary(model, x, y, calibrate="f")
    t = summary.breakpoints[None].contiguous()
    limit = torch.tensor([1.1], dtype=F64)
    found = relu_ext.ops._C.breakpoint_intervals(
        x[None].contiguous(), y[None].contiguous(), None, t, limit, None, replicates=5,
        level=0.95, dof=summary.dof[None].contiguous(), seed=0)
    slopes, intercepts = found.slopes, found.intercepts
    assert slopes.shape == intercepts.shape == found.se_slopes.shape == \
        found.se_intercepts.shape == (1, 5, 3)
    torch.testing.assert_close(slopes[0], summary.slopes.expand(5, 3), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(intercepts[0], summary.intercepts.expand(5, 3), rtol=1e-6,
                               atol=1e-6 * 2030)


def test_the_replicates_standard_errors_are_curve_summarys():
    # Well-determined breakpoints: each replicate's standard errors are the
    # fit's but for its own σ and breakpoints (a few % on 300 points), in
    # the data's units (x in years: the slopes' and intercepts' scales
    # 2000 apart).
    x, y = noisy_curve(n=300, breakpoints=(2000, 2015), noise=0.1, seed=32, low=1990, high=2030)
    model, _ = fit_curve(x, y, 3)
    summary = curve_summary(model, x, y, calibrate="f")
    found = relu_ext.ops._C.breakpoint_intervals(
        x[None].contiguous(), y[None].contiguous(), None, summary.breakpoints[None].contiguous(),
        torch.tensor([1.1], dtype=F64), None, replicates=40, level=0.95,
        dof=summary.dof[None].contiguous(), seed=0)
    for own, fits in ((found.se_slopes[0], summary.se_slopes),
                      (found.se_intercepts[0], summary.se_intercepts)):
        ratio = own / fits
        assert ((ratio - 1).abs() < 0.25).all()
        torch.testing.assert_close(ratio.mean(0), torch.ones(3, dtype=F64), rtol=0.05, atol=0)


def test_the_bootstraps_quantile_is_its_rank_among_the_replicates():
    _rank_quantile = relu_ext.ops._C.rank_quantile
    values = torch.tensor([[9., 1, 5, 3, 7, 2, 8, 4, 6]], dtype=F64)[:, :, None]
    assert _rank_quantile(values, 0.5).item() == 5  # ⌈0.5·10⌉ = 5th smallest
    assert _rank_quantile(values, 0.95).item() == 9
    nan, inf = math.nan, math.inf
    padded = torch.cat([values, torch.full((1, 4, 1), nan, dtype=F64)], 1)
    assert _rank_quantile(padded, 0.5).item() == 5  # NaN: not a replicate
    unbounded = torch.tensor([[1., inf, 2, inf, nan]], dtype=F64)[:, :, None]
    assert _rank_quantile(unbounded, 0.5).item() == inf  # 3rd of 4
    assert _rank_quantile(unbounded, 0.2).item() == 1
    assert _rank_quantile(torch.full((2, 3, 1), nan, dtype=F64), 0.9).isnan().all()


def seven_kinks_one_weak():
    """Seven breakpoints on (-2, 2), 800 points: the third's slope change 0.15
    (kink/noise·√N·range = 170, weak), the others' 2 or more."""
    return noisy_curve(n=800, breakpoints=(-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5),
                       slopes=(1.0, -1.0, 1.0, 1.15, -1.0, 1.0, -1.0, 1.0), noise=0.1, seed=40)


def bootstrap_limits(x, y, summary, marked, seed, replicates=400):
    """The compiled bootstrap's limits (H,) and replicates' slopes (R, K) for
    the breakpoints marked, at a floor of 1 (no F test)."""
    t = summary.breakpoints[None].contiguous()
    chosen = torch.zeros(t.shape, dtype=torch.bool)
    chosen[0, marked] = True
    found = relu_ext.ops._C.breakpoint_intervals(
        x[None].contiguous(), y[None].contiguous(), None, t, torch.ones(1, dtype=F64), None,
        replicates=replicates, level=0.95, dof=summary.dof[None].contiguous(), seed=seed,
        bootstrap=chosen)
    return found.limits[0], found.slopes[0]


def test_a_weak_breakpoint_is_bootstrapped_with_its_neighbours_alone():
    x, y = seven_kinks_one_weak()
    model, _ = fit_curve(x, y, 8)
    f, auto = curve_summary(model, x, y, calibrate="f"), curve_summary(model, x, y)
    assert auto.bootstrapped
    weak, others = 2, [0, 1, 3, 4, 5, 6]
    (f_low, f_high), (low, high) = f.conf_int()["breakpoints"], auto.conf_int()["breakpoints"]
    assert torch.equal(low[others], f_low[others]) and torch.equal(high[others], f_high[others])
    assert high[weak] - low[weak] > 1.05 * (f_high[weak] - f_low[weak])
    # Its block re-fits breakpoints 1-3 on the points between 0 and 4: the
    # replicates hold segments 2 and 3 (1 and 4 end at a breakpoint the
    # block holds fixed), the others keep the t distribution's.
    wald = auto.conf_int(method="wald")["slopes"]
    outside = [0, 1, 4, 5, 6, 7]
    assert all(torch.equal(a[outside], b[outside]) for a, b in zip(auto.conf_int()["slopes"], wald))
    limits, slopes = bootstrap_limits(x, y, f, [weak], seed=0, replicates=20)
    assert slopes[:, outside].isnan().all() and slopes[:, 2:4].isfinite().all()
    assert (limits[others] == 1).all() and limits[weak] > 1


def test_the_local_bootstrap_agrees_with_the_whole_curves():
    # The weak breakpoint's limit from its block against re-fitting all seven
    # breakpoints on every point (every breakpoint marked: one block), each
    # the mean over 4 seeds of 400 replicates: ~4% Monte Carlo error.
    x, y = seven_kinks_one_weak()
    model, _ = fit_curve(x, y, 8)
    summary = curve_summary(model, x, y, calibrate="f")
    weak = 2
    local = [bootstrap_limits(x, y, summary, [weak], seed)[0][weak] for seed in range(4)]
    whole = [bootstrap_limits(x, y, summary, list(range(7)), seed)[0][weak] for seed in range(4)]
    # As statistics (limit - 1)·dof: near χ²(1)'s 3.84, a little above.
    local, whole = ((torch.stack(v) - 1) * summary.dof for v in (local, whole))
    assert 3.84 < local.mean() < 5.5 and 3.84 < whole.mean() < 5.5
    assert abs(local.mean() - whole.mean()) < 0.12 * whole.mean()


def test_a_two_breakpoint_curve_is_one_block():
    # Either breakpoint marked, the replicates re-fit both on every point:
    # the same replicates, so the same limit to the bit.
    x, y = noisy_curve(n=60, noise=0.5, seed=41)
    model, _ = fit_curve(x, y, 3)
    summary = curve_summary(model, x, y, calibrate="f")
    first, _ = bootstrap_limits(x, y, summary, [0], seed=5, replicates=50)
    both, slopes = bootstrap_limits(x, y, summary, [0, 1], seed=5, replicates=50)
    assert first[0] == both[0] and first[1] == 1 and both[1] > 1
    assert slopes.isfinite().all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(calibrate="exact"), "calibrate must be one of 'auto', 'f', 'bootstrap', but got 'exact'"),
    (dict(replicates=0), "replicates must be an int >= 1, but got 0"),
    (dict(replicates=2.5), "replicates must be an int >= 1, but got 2.5"),
    (dict(seed=-1), "seed must be an int >= 0, but got -1"),
])
def test_bad_calibration_arguments_are_named(kwargs, message):
    x, y = noisy_curve(n=40, seed=33)
    model, _ = fit_curve(x, y, 3)
    with pytest.raises(ValueError, match=message):
        curve_summary(model, x, y, **kwargs)


def test_through_points_counted_once_and_only_within_the_data():
    # A point given twice is one constraint, in the summary as in the BIC
    # that chose K; an empty pair is no constraint (the bootstrap stays on);
    # beyond the data, the breakpoint that takes a point up sits where the
    # data do not say, so the summary refuses rather than give errors.
    x, y = noisy_curve(n=120, breakpoints=(0.3,), slopes=(1.0, -1.0), noise=0.2, seed=25)
    once, twice = ([0.0], [0.0]), ([0.0, 0.0], [0.0, 0.0])
    model, history = fit_curve(x, y, "auto", max_units=4, through=twice)
    single = curve_summary(model, x, y, through=once, calibrate="f")
    double = curve_summary(model, x, y, through=twice, calibrate="f")
    k = history.units
    assert int(double.n_params) == int(single.n_params) == 2 * k - 1
    assert double.se_slopes.isfinite().all()
    torch.testing.assert_close(double.se_slopes, single.se_slopes, rtol=1e-12, atol=0)
    assert double.bic.item() == pytest.approx(history.scores[k - 1], rel=1e-12)
    model, _ = fit_curve(x, y, 2)
    assert curve_summary(model, x, y, through=([], []), calibrate="bootstrap",
                         replicates=20).bootstrapped
    with pytest.raises(ValueError, match=r"through\[0\]\[0\] is 5: beyond the data"):
        curve_summary(model, x, y, through=([5.0], [0.0]))
