"""relu_ext.fit_curve(): fit y ≈ f(x) with a K-unit ReLUSum in one call, as accurately as pwlf.

The fitted function is a continuous piecewise-linear one with K - 1 breakpoints
(K straight segments over the data, extended linearly beyond them: the family
pwlf fits with K segments). In standardised coordinates u = (x - mean)/std,
v = (y - mean)/std it is

    f(u) = c + α·u + Σ_{k<K} β_k·relu(u - t_k)

For fixed breakpoints t the coefficients enter linearly, so they are solved
exactly (_hinge_lstsq.py: normal equations from sorted prefix sums); the
breakpoints are moved by L-BFGS (strong Wolfe line search) on that solved
error, the variable-projection objective (csrc/curve/: the solve and L-BFGS
compiled, microseconds a step). Breakpoints that leave the data or
fall on top of another are moved into the interval with the largest squared
error, and L-BFGS runs again. Several starts (data quantiles, curvature-
weighted, random quantiles from the seed) and the best is kept.

The result is written as K units: one opening to the left at the first
breakpoint carries α, one opening to the right at each breakpoint carries the
change of slope there, and the module's bias the rest; the standardisation
is folded into m, b, a and the bias, so ``model(x)`` predicts y.
"""

import contextlib

import torch

from ..nn import ReLUSum
from ..ops import relu_sum
from ..train import History
from . import _data as data
from ._hinge_lstsq import HingeLeastSquares


def fit_curve(x, y, units, *, loss="mse", seed=0, restarts=4, max_iter=200, revive=3,
              mae_rounds=12):
    """Fit ``y ≈ model(x)`` with a ``ReLUSum(units, bias=True)``; return ``(model, history)``.

    Args:
        x, y: 1-D tensors of the same length N >= units, finite, of a floating
            dtype (the model gets x's dtype; the fit is computed in float64).
            x must take at least two distinct values.
        units: K >= 1: the fit has K - 1 breakpoints, K straight segments.
        loss: "mse" (least squares, what pwlf minimises) or "mae" (least
            absolute error, by iteratively reweighted least squares from the
            least-squares fit).
        seed: seeds the random starts. The same arguments give bitwise the
            same model.
        restarts: starts tried, the best kept (the first two are the data's
            quantiles and a curvature-weighted placement, then random ones).
        max_iter: L-BFGS iterations per run.
        revive: rounds of moving dead breakpoints and running L-BFGS again.
        mae_rounds: reweighting rounds for loss="mae".

    Returns:
        The fitted module and a ``History`` whose ``loss`` traces the kept
        run's objective (the loss in y's units) at every evaluation, whose
        ``final_loss`` is the model's loss on the data, and whose ``seed`` is
        ``seed``.

    With ``torch.distributed`` initialised, each process passes its own share
    of the points; the sums over points are exact and all-reduced, so every
    process returns bitwise the model one process fitting all the points
    returns, however they are split.
    """
    x, y = data.check(x, y, units, loss, restarts, max_iter, revive)
    points = data.Points(x, y)
    if points.count < units:
        raise ValueError(f"fit_curve(): needs at least as many points as units, but got "
                         f"{int(points.count)} points for units={units}")
    hinges = units - 1
    ls = HingeLeastSquares(points.u, points.v, reduce=points.reduce_digits)

    with _one_thread():
        best = None
        for start in _starts(ls, points, hinges, restarts, seed):
            run = _optimise(ls, points, start, max_iter, revive)
            if best is None or run[0] < best[0]:
                best = run
        _, t, trace = best
        if loss == "mae":
            t, coef, trace = _mae(points, t, max_iter, mae_rounds)
        else:
            coef = ls.solve(t)[1]

    model = _to_module(points, t, coef, units, x.dtype, x.device)
    to_y_units = float(points.y_std) ** (2 if loss == "mse" else 1)
    history = History(loss=[value * to_y_units for value in trace], seed=seed)
    with torch.no_grad():
        # Dense, not "auto": the choice depends on this process's share of
        # the points, and the two algorithms differ in the last bits.
        fitted = relu_sum(x, model.m, model.b, model.a, algorithm="dense") + model.bias
        error = (fitted - y).double()
        per_point = error**2 if loss == "mse" else error.abs()
        history.final_loss = (data.exact_sum(per_point[None])[0, 0] / points.count).item()
    return model, history


@contextlib.contextmanager
def _one_thread():
    """The search works on K-sized tensors (and makes one histogram of the
    points), where OpenMP's fork and join cost more than the work: measured,
    a histogram of 2000 points 0.08 ms on one thread, 8 ms on two with the
    other core busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _starts(ls, points, hinges, restarts, seed):
    """Initial breakpoints: quantiles, curvature-weighted, then random quantiles."""
    if hinges == 0:
        yield points.u.new_empty(0)
        return
    grid = torch.arange(1, hinges + 1, dtype=torch.float64) / (hinges + 1)
    yield points.quantile(grid)
    if restarts > 1:
        yield _curvature_weighted(ls, points, hinges)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(restarts - 2):
        probabilities, _ = torch.sort(torch.rand(hinges, generator=generator, dtype=torch.float64))
        yield points.quantile(probabilities)


def _curvature_weighted(ls, points, hinges):
    """Breakpoints spaced as |f''|^(2/5), the density of the best L2 knots of a
    smooth f, with f'' read off a least-squares fit with 4× as many quantile
    hinges (its slope change per unit length), mixed with a quarter of uniform
    spacing so that flat stretches keep some breakpoints."""
    fine = min(4 * hinges, max(hinges, int(points.count) // 4))
    q = points.quantile(torch.arange(1, fine + 1, dtype=torch.float64) / (fine + 1))
    beta = ls.solve(q)[1][2:]
    edges = torch.cat([points.u_min[None], (q[1:] + q[:-1]) / 2, points.u_max[None]])
    width = (edges[1:] - edges[:-1]).clamp_min(1e-12)
    density = (beta.abs() / width) ** 0.4
    mass = density * width
    mass = 0.75 * mass / mass.sum().clamp_min(1e-300) + 0.25 * width / width.sum()
    cumulative = torch.cat([mass.new_zeros(1), torch.cumsum(mass, 0)])
    targets = torch.arange(1, hinges + 1, dtype=torch.float64) / (hinges + 1)
    return data.interpolate(targets, cumulative, edges)


def _optimise(ls, points, t, max_iter, revive):
    """L-BFGS on the breakpoints, then revive dead ones and run again."""
    trace = []
    if t.numel() == 0:
        mse = ls.solve(t)[0]
        return mse, t, [mse]
    for round_ in range(revive + 1):
        t = _lbfgs(ls, t, max_iter, trace)
        dead = _dead(ls, points, t)
        if not dead.any() or round_ == revive:
            break
        t = _revive(ls, points, t, dead)
    mse = ls.solve(t)[0]
    trace.append(mse)
    return mse, t, trace


def _lbfgs(ls, t, max_iter, trace):
    t, errors = ls.minimize(t, max_iter)
    trace.extend(errors)
    return t


def _dead(ls, points, t):
    """Breakpoints outside the data, or with no point between them and the
    previous one (their hinge duplicates another)."""
    outside = (t <= points.u_min) | (t >= points.u_max)
    count_right = ls.suffix_sums(t)[0]
    duplicate = torch.zeros_like(outside)
    duplicate[1:] = count_right[1:] >= count_right[:-1]
    return outside | duplicate


def _revive(ls, points, t, dead):
    """Move dead breakpoints, one by one, into the live interval with the
    largest squared error, at its error-weighted mean position (inside the
    interval's points, never in a gap of the data), counting a split interval's
    error as a quarter."""
    alive = t[~dead]
    coef = ls.solve(alive)[1]
    squared = (points.v - _evaluate(points.u, alive, coef)) ** 2
    interval = torch.searchsorted(alive, points.u)
    sse, moment = data.exact_sum(torch.stack([squared, squared * points.u]), interval,
                                 alive.numel() + 1)
    centre = moment / sse.clamp_min(1e-300)
    new = []
    for _ in range(int(dead.sum())):
        i = int(torch.argmax(sse))
        new.append(centre[i])
        sse[i] /= 4
    return torch.sort(torch.cat([alive, torch.stack(new)]))[0]


def _evaluate(u, t, coef):
    """c + α·u + Σ β_k·relu(u - t_k), with the fused kernels: the dense ones,
    which compute each point alike whatever the others (so a split fit sees
    what one process would)."""
    hinges = relu_sum(u, torch.ones_like(t), -t, coef[2:], algorithm="dense") if t.numel() else 0
    return coef[0] + coef[1] * u + hinges


def _mae(points, t, max_iter, rounds):
    """Least absolute error by iteratively reweighted least squares: each round
    weights the squared error by 1/|residual| of the last round's fit and
    refits breakpoints and coefficients; the round with the least absolute
    error is kept (the reweighting need not decrease it every round)."""
    ls = HingeLeastSquares(points.u, points.v, reduce=points.reduce_digits)
    coef = ls.solve(t)[1]
    trace, best = [], None
    for round_ in range(rounds + 1):
        residual = (points.v - _evaluate(points.u, t, coef)).abs()
        trace.append((data.exact_sum(residual[None])[0, 0] / points.count).item())
        if best is None or trace[-1] < best[0]:
            best = (trace[-1], t, coef)
        if round_ == rounds:
            break
        # The floor keeps points the fit passes through from taking all the weight.
        ls = HingeLeastSquares(points.u, points.v, 1 / residual.clamp_min(1e-9),
                               reduce=points.reduce_digits)
        if t.numel():
            t = _lbfgs(ls, t, max_iter, [])
        coef = ls.solve(t)[1]
    return best[1], best[2], trace


def _to_module(points, t, coef, units, dtype, device):
    """K units computing y = mean_y + std_y·f((x - mean_x)/std_x)."""
    c, alpha, beta = coef[0], coef[1], coef[2:]
    one = torch.ones(1, dtype=torch.float64)
    if t.numel() == 0:
        # A straight line: α·u = α·relu(u - u_min) + α·u_min on the data.
        sign, at, a = one, points.u_min[None], alpha[None]
        bias = c + alpha * points.u_min
    else:
        # α·u = α·relu(u - t_1) - α·relu(t_1 - u) + α·t_1
        sign = torch.cat([-one, one.expand(t.numel())])
        at = torch.cat([t[:1], t])
        a = torch.cat([-alpha[None], beta[:1] + alpha, beta[1:]])
        bias = c + alpha * t[0]
    # relu(s·(u - t)) = relu(s/σ·x - s·(μ/σ + t))
    m = sign / points.x_std
    b = -sign * (points.x_mean / points.x_std + at)
    model = ReLUSum(units, bias=True, dtype=dtype, device=device)
    with torch.no_grad():
        model.m.copy_(m)
        model.b.copy_(b)
        model.a.copy_(points.y_std * a)
        model.bias.copy_(points.y_mean + points.y_std * bias)
    return model
