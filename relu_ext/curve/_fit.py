"""relu_ext.fit_curve(): fit y ≈ f(x) with a K-unit ReLUSum in one call, as accurately as pwlf.

The fitted function is a continuous piecewise-linear one with K - 1 breakpoints
(K straight segments over the data, extended linearly beyond them: the family
pwlf fits with K segments). In standardised coordinates u = (x - mean)/std,
v = (y - mean)/std it is

    f(u) = c + α·u + Σ_{k<K} β_k·relu(u - t_k)

For fixed breakpoints t the coefficients enter linearly, so they are solved
exactly (csrc/curve/hinge_lstsq.h: normal equations from sorted prefix sums;
under shape constraints or points to pass through, csrc/curve/
constrained_lstsq.h's exact constrained least squares); the breakpoints are
moved by L-BFGS on that solved error, the variable-projection objective.
Breakpoints that leave the data or fall on top of another are moved into the
interval with the largest squared error, and L-BFGS runs again. Several
starts (data quantiles, curvature-weighted, random quantiles from the seed)
and the best is kept. The whole search is compiled (csrc/curve/fit.h), and a
batch of curves is fitted by threads, a curve each.

The result is written as K units: one opening to the left at the first
breakpoint carries α, one opening to the right at each breakpoint carries the
change of slope there, and the module's bias the rest; the standardisation
is folded into m, b, a and the bias, so ``model(x)`` predicts y.
"""

import torch

from ..nn import ReLUSum, to_piecewise
from ..ops import _C, relu_sum
from ..train import History
from . import _data as data


def fit_curve(x, y, units, *, max_units=20, select="bic", folds=5, weights=None,
              breakpoints=None, through=None, monotone=None, convex=None, loss="mse", seed=0,
              restarts=4, max_iter=200, revive=3, mae_rounds=12):
    """Fit ``y ≈ model(x)`` with a ``ReLUSum(units, bias=True)``; return ``(model, history)``.

    Args:
        x, y: one curve of N points, 1-D (N,); or B curves at once, 2-D
            (B, N) (pad shorter curves and give the padding weight 0).
            Tensors, or anything ``numpy.asarray`` takes (arrays, lists,
            pandas Series). The model gets x's dtype, float64 for integers;
            the fit is computed in float64. Finite where the weight is
            positive; x must take at least two distinct values.
        units: K >= 1: the fit has K - 1 breakpoints, K straight segments.
            Or "auto": the number the data support, from K = 1 to
            ``max_units``, each K fitted as above (csrc/curve/select.h):
            by the Bayesian information criterion (``select="bic"``,
            counting 2K parameters: K slopes, an intercept, K - 1
            breakpoints, less one per ``through`` point; the Gaussian
            likelihood of the weighted residuals, Laplace's for
            loss="mae"), or by ``folds``-fold cross-validated error
            (``select="cv"``; each point's fold a hash of it and ``seed``).
            Ties go to the smaller K.
        max_units, select, folds: for units="auto" (max_units >= 1, select
            "bic" or "cv", folds >= 2).
        weights: (N,) or (B, N), finite, >= 0, not all zero: weighted least
            squares (weighted absolute error for loss="mae"). A point of weight
            0 is left out entirely; an integer weight counts a point that many
            times.
        breakpoints: K - 1 fixed breakpoints in x's units, strictly increasing,
            (K - 1,) or (B, K - 1): only the slopes and intercepts are fitted
            (pwlf's ``fit_with_breaks``).
        through: ``(xc, yc)``, points the fitted function passes through
            exactly (to rounding), each (P,) or (B, P); the breakpoints stay
            free (pwlf's ``fit(n, x_c=, y_c=)``).
        monotone: +1 non-decreasing or -1 non-increasing everywhere,
            extrapolation included; None for either.
        convex: True convex, False concave; None for either. ``monotone``,
            ``convex``, ``through``, ``weights`` and ``breakpoints`` combine.
        loss: "mse" (least squares, what pwlf minimises) or "mae" (least
            absolute error, by iteratively reweighted least squares from the
            least-squares fit).
        seed: seeds the random starts. The same arguments give bitwise the
            same model.
        restarts: starts tried, the best kept (the first two are the data's
            quantiles and a curvature-weighted placement, then random ones;
            with ``monotone`` or ``convex``, also equally spaced breakpoints,
            so the fit is never worse than the best on K uniform pieces whose
            segments hold two points). A fit whose segments each hold at least
            two points is kept over one with a segment through a single point
            (a line fixed by nothing), whatever their errors.
        max_iter: L-BFGS iterations per run.
        revive: rounds of moving dead breakpoints and running L-BFGS again.
        mae_rounds: reweighting rounds for loss="mae".

    Returns:
        The fitted module and a ``History``. For one curve the module is a
        ``ReLUSum(units, bias=True)`` (with units="auto", ``history.units``
        is the K chosen and ``history.scores`` the criterion for each K
        tried); the history's ``loss`` traces the kept
        run's objective (the loss in y's units) at every evaluation, its
        ``final_loss`` is the model's (weighted) loss on the data, its ``seed``
        is ``seed``. For B curves the module is ``ReLUSum(units, channels=B,
        dim=0, bias=True)``, whose row c is curve c's fit (``model(x)`` of x
        (B, N) predicts y); ``loss`` holds a trace per curve and
        ``final_loss`` is a tensor of B losses. Each curve's fit is bitwise the
        one fitting that curve alone gives; the curves are fitted in parallel,
        a thread per curve. With units="auto" each curve gets its own K and
        the module has the largest; a curve's units beyond its own K have
        m = b = a = 0, exactly zero and without gradient; ``history.units``
        is then a (B,) tensor and ``history.scores`` (B, max_units).

    Raises ValueError or TypeError naming the argument: bad shapes, dtypes,
    non-finite values, negative or all-zero weights, breakpoints that do not
    increase or are not K - 1, ``through`` points that contradict each other,
    constraints that no function of K units meets.

    Example:
        >>> import torch, relu_ext
        >>> x = torch.linspace(0, 4, 101, dtype=torch.float64)
        >>> model, history = relu_ext.fit_curve(x, (x - 1.5).abs(), 2)
        >>> model.to_piecewise().breakpoints
        tensor([1.5000], dtype=torch.float64)
        >>> history.final_loss < 1e-12
        True

    With ``torch.distributed`` initialised: one curve (1-D x) is split by its
    points, each process passing its own share; the sums over points are
    exact and all-reduced, so every process returns bitwise the model one
    process fitting all the points returns, however they are split. A batch
    (2-D x) is split by curves: every process passes all the curves, fits its
    share of them, and every process returns the whole batch's model.
    """
    problem = data.check(x, y, units, max_units=max_units, select=select, folds=folds,
                         weights=weights, breakpoints=breakpoints, through=through,
                         monotone=monotone, convex=convex, loss=loss, restarts=restarts,
                         max_iter=max_iter, revive=revive, mae_rounds=mae_rounds)
    auto = units == "auto"
    options = dict(units=max_units if auto else units,
                   select=_C.Select.__members__[select if auto else "fixed"], folds=folds,
                   loss=_C.Loss.absolute if loss == "mae" else _C.Loss.squared, seed=seed,
                   restarts=restarts,
                   max_iter=max_iter, revive=revive, mae_rounds=mae_rounds,
                   monotone=monotone or 0, convex=0 if convex is None else (1 if convex else -1))
    if problem.batched:
        found = _fit_batch(problem, options)
    else:
        collective = dict(sum=data.all_reduce_sum, max=data.all_reduce_max) \
            if data.distributed() else dict(sum=None, max=None)
        found = _C.fit_curves(problem.x, problem.y, problem.weights, **options,
                              breakpoints=problem.breakpoints, through_x=problem.through_x,
                              through_y=problem.through_y, **collective)
    _raise_for(found, units, problem, monotone, convex)

    model = _to_module(found, problem, convex)
    if monotone:
        _hold_monotone(model, monotone)
    to_y_units = found.y_scale ** (2 if loss == "mse" else 1)
    traces = [(trace * to_y_units[c]).tolist() for c, trace in enumerate(found.traces)]
    with torch.no_grad():
        # Dense, not "auto": the choice depends on this process's share of
        # the points, and the two algorithms differ in the last bits.
        fitted = relu_sum(problem.given_x, model.m, model.b, model.a, dim=0, algorithm="dense")
        fitted = fitted + (model.bias[:, None] if problem.batched else model.bias)
        error = (fitted.reshape(problem.x.shape).double().cpu() - problem.y)
        per_point = error**2 if loss == "mse" else error.abs()
        if problem.weights is not None:
            per_point = torch.where(problem.weights > 0, per_point, 0.0)
        # A batch is fitted whole on every process; one curve's points are shared out.
        final = data.exact_mean(per_point, problem.weights, reduce=not problem.batched)
    if problem.batched:
        history = History(loss=traces, seed=seed, final_loss=final)
        if auto:
            history.units, history.scores = found.units, found.scores
    else:
        history = History(loss=traces[0], seed=seed, final_loss=final[0].item())
        if auto:
            history.units = int(found.units[0])
            # K above N: not tried
            history.scores = [s for s in found.scores[0].tolist() if s == s]
    return model, history


def _fit_batch(problem, options):
    """The compiled search over this process's share of the curves, gathered
    from every process (one process: all of them)."""
    mine = data.split(problem.x.shape[0])

    def rows(t):
        return None if t is None else t[mine.start:mine.stop]

    part = _C.fit_curves(rows(problem.x), rows(problem.y), rows(problem.weights), **options,
                         breakpoints=rows(problem.breakpoints), through_x=rows(problem.through_x),
                         through_y=rows(problem.through_y), sum=None, max=None)
    parts = data.gather(part)
    # Each process's breakpoints and coef are as wide as its own curves' most units.
    most = max(p.coef.shape[1] for p in parts)

    def joined(field):
        if field == "traces":
            return [trace for p in parts for trace in p.traces]
        values = [getattr(p, field) for p in parts]
        if field in ("breakpoints", "coef"):
            fill = float("nan") if field == "breakpoints" else 0.0
            values = [torch.nn.functional.pad(v, (0, most - p.coef.shape[1]), value=fill)
                      for v, p in zip(values, parts)]
        return torch.cat(values)

    return type(part)(*(joined(field) for field in part._fields))


def _raise_for(found, units, problem, monotone, convex):
    """The first curve that could not be fitted, as fit_curve's ValueError."""
    bad = (found.status != int(_C.FitStatus.ok)).nonzero()
    if not bad.numel():
        return
    c = int(bad[0, 0])
    where = f" (curve {c})" if problem.batched else ""
    status = _C.FitStatus(int(found.status[c]))
    if status == _C.FitStatus.too_few_points:
        positive = " of positive weight" if problem.weights is not None else ""
        raise ValueError(f"fit_curve(): needs at least as many points as units, but got "
                         f"{int(found.points[c])} points{positive}{where} for units={units!r}")
    if status == _C.FitStatus.constant_x:
        raise ValueError(f"fit_curve(): x must take at least two distinct values, but all its "
                         f"values are equal{where}")
    asked = [f"monotone={monotone:+d}" if monotone else "", "" if convex is None else
             ("convex" if convex else "concave"),
             "through the points" if problem.through_x is not None else ""]
    count = f"{units} units" if units != "auto" else "up to max_units units"
    raise ValueError(f"fit_curve(): no continuous piecewise-linear function of {count} "
                     f"is {', '.join(a for a in asked if a)}{where}: the constraints "
                     f"contradict each other")


def _to_module(found, problem, convex):
    """The module computing y = y_shift + y_scale·f((x - x_shift)/x_scale) per
    curve, curve c with units[c] units; with units="auto" on a batch, the
    module has the most units, and a curve's units beyond its own are inert
    (m = b = a = 0: exactly zero, and without gradient)."""
    units = found.units
    curves, most = units.shape[0], int(units.max())
    m, b, a = (torch.zeros(curves, most, dtype=torch.float64) for _ in range(3))
    bias = torch.zeros(curves, dtype=torch.float64)
    for k in units.unique().tolist():
        rows = (units == k).nonzero()[:, 0]
        m[rows, :k], b[rows, :k], a[rows, :k], bias[rows] = _units_of(
            found, rows, k, convex)
    channels = curves if problem.batched else None
    model = ReLUSum(most, channels, dim=0, bias=True, dtype=problem.dtype, device=problem.device)
    with torch.no_grad():
        for param, value in ((model.m, m), (model.b, b), (model.a, a), (model.bias, bias)):
            param.copy_(value.reshape(param.shape))
    return model


def _units_of(found, rows, units, convex):
    """m, b, a (curves, units) and the bias (curves,) of the curves ``rows``
    of the search ``found``, fitted with the same number of units."""
    x_shift, x_scale, y_shift, y_scale, u_min, u_max = (
        getattr(found, name)[rows] for name in ("x_shift", "x_scale", "y_shift", "y_scale",
                                                "u_min", "u_max"))
    t, coef = found.breakpoints[rows, :units - 1], found.coef[rows, :units + 1]
    c, alpha, beta = coef[:, 0], coef[:, 1], coef[:, 2:]
    curves = coef.shape[0]
    one = torch.ones(curves, 1, dtype=torch.float64)
    if units == 1:
        # A straight line on the data, from one unit: α·u = α·relu(u - u_min) + α·u_min,
        # flat left of the data; or, where that would bend the wrong way for
        # convex (concave), α·u = -α·relu(u_max - u) + α·u_max, flat right of it.
        flat_right = torch.zeros(curves, dtype=torch.bool) if convex is None else \
            (alpha < 0 if convex else alpha > 0)
        sign = torch.where(flat_right, -1.0, 1.0)[:, None].double()
        at = torch.where(flat_right, u_max, u_min)[:, None]
        a = (sign[:, 0] * alpha)[:, None]
        bias = c + alpha * at[:, 0]
    else:
        # α·u = α·relu(u - t_1) - α·relu(t_1 - u) + α·t_1
        sign = torch.cat([-one, one.expand(curves, units - 1)], 1)
        at = torch.cat([t[:, :1], t], 1)
        a = torch.cat([-alpha[:, None], beta[:, :1] + alpha[:, None], beta[:, 1:]], 1)
        bias = c + alpha * t[:, 0]
    # relu(s·(u - t)) = relu(s/σ·x - s·(μ/σ + t))
    m = sign / x_scale[:, None]
    b = -sign * ((x_shift / x_scale)[:, None] + at)
    return m, b, y_scale[:, None] * a, y_shift + y_scale * bias


@torch.no_grad()
def _hold_monotone(model, monotone):
    """Make monotone exact in the piecewise form.

    The constrained solve puts a slope at exactly 0 where its constraint is
    active. The leftmost slope is one unit's a·m, whose sign survives
    rounding, and so does each change of slope (convex, concave: one unit's
    a·m at each kink, fit.cpp makes them exact); but a slope right of a kink
    is a sum of both signs, which, written as units in the model's dtype and
    added up again by ``to_piecewise``, can come out a rounding error on the
    wrong side. Moving the output weight of the unit that opens at that kink
    moves the slope and every slope right of it the same way (floating-point
    sums are monotone in each term), so the violations are mended left to
    right: by the deficit, then an ulp at a time."""
    toward = torch.tensor(float("inf") * monotone, dtype=model.a.dtype)
    params = (model.m, model.b, model.a, model.bias)
    rows = [params] if model.channels is None else zip(*(p.unbind(0) for p in params))
    for m, b, a, bias in rows:  # views: a's writes reach the model
        for _ in range(8 * model.units):
            slopes = to_piecewise(m, b, a, bias).slopes
            wrong = (slopes * monotone < 0).nonzero()
            if not wrong.numel():
                break
            # Unit j opens to the right at the kink left of slope j (j >= 1;
            # slope 0 is unit 0's alone, of α's sign).
            j = int(wrong[0, 0])
            nudged = torch.nextafter(a[j] - slopes[j] / m[j], toward)
            a[j] = nudged if nudged != a[j] else torch.nextafter(a[j], toward)
