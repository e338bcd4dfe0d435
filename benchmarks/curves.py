"""Curve fitting at scale and with options: relu_ext.fit_curve against its anchors.

Three sections, each timing relu_ext and its anchor in the same run:

many_curves
    B noisy curves of N points (default 10,000 × 2,000), y = sin(a·x + φ) +
    c·x² + noise with a, φ, c and the noise level drawn per curve (seeded), x
    sorted uniform on [-2, 2] and different for every curve, fitted with K = 10
    units. relu_ext fits the whole batch in one call (a thread per curve);
    pwlf's ``fitfast(K)`` fits a seeded sample of 20 of the curves, each in a
    child process with a time cap, and its mean time is scaled to B curves.
    The errors are compared on the sample (RMSE ours / pwlf's). relu_ext's
    time for the sample's curves fitted one call each is shown too.

weights_through
    Weighted fits against pwlf's weighted ``fitfast``, and fits through given
    points against pwlf's ``fit(K, x_c=, y_c=)`` (differential evolution: slow,
    capped). pwlf's weights multiply the residuals, it minimises Σ (w·r)²
    (pwlf.PiecewiseLinFit.lstsq: lstsq of (w·A, w·y)); relu_ext's weights
    multiply the squared residuals, Σ W·r². So relu_ext is given W = w² and
    both are judged on the common objective's weighted RMSE,
    sqrt(Σ w²·r² / Σ w²). A fit through points is judged on its RMSE and on
    max |f(xc) - yc|.

shapes
    Monotone, convex and monotone + concave fits on noisy data of that shape,
    relu_ext (free breakpoints, K units) against (a) the exact optimum over K
    equally spaced pieces: least squares over the hinge basis with the K - 1
    interior uniform knots, the shape as bounds after a change of variables
    (``uniform_knot_fit``), solved by scipy.optimize.lsq_linear; and (b)
    sklearn's IsotonicRegression (monotone cases: the best monotone step
    function, unrestricted in its number of steps). relu_ext tries the uniform
    knots among its starts, so its constrained fit must never be worse than
    (a): each case says whether it was.

A case of weights_through passes when relu_ext's error is at most max(1.25 ×
pwlf's, pwlf's + 5e-4 × the target's range) (benchmarks/accuracy.py's rule)
and its time at most a fifth of pwlf's.

    python benchmarks/curves.py                # needs the bench extra for the anchors
    python benchmarks/curves.py --quick        # tiny sizes, no pwlf/scipy/sklearn needed

Prints its tables; writes benchmarks/results/curves.json (after every section;
sections not measured in a run are kept from the file). pwlf, scipy and
scikit-learn are optional: the parts that need a missing one are skipped and
say so.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from common import RESULTS, add_output_options, optional, run_child, run_header, save  # noqa: E402
from relu_ext.nn import to_piecewise  # noqa: E402

SECTIONS = ("many_curves", "weights_through", "shapes")


# --------------------------------------------------------------------------- helpers

def rmse(predicted, y, w2=None):
    """sqrt(Σ W·r² / Σ W), W = 1 without weights; float64 numpy."""
    r2 = (np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2
    if w2 is None:
        return float(np.sqrt(r2.mean()))
    w2 = np.asarray(w2, dtype=np.float64)
    return float(np.sqrt((w2 * r2).sum() / w2.sum()))


def predict(model, x):
    with torch.no_grad():
        return model(x).double().numpy()


def piecewise_eval(breakpoints, slopes, intercepts, x):
    """A piecewise form evaluated at x (numpy): an independent check of the
    model's own prediction."""
    index = np.searchsorted(breakpoints, x, side="right")
    return slopes[index] * x + intercepts[index]


def count_pieces(breakpoints, slopes, lo, hi):
    """Straight pieces over [lo, hi]: 1 + the kinks inside it whose change of
    slope is not zero (to rounding)."""
    breakpoints, slopes = np.asarray(breakpoints, float), np.asarray(slopes, float)
    if breakpoints.size == 0:
        return 1
    change = np.abs(np.diff(slopes))
    tol = 1e-9 * max(np.abs(slopes).max(), 1e-300)
    inside = (breakpoints > lo) & (breakpoints < hi) & np.isfinite(breakpoints)
    return 1 + int(((change > tol) & inside).sum())


def _pwlf_child(x, y, k, w, xc, yc, queue):
    """pwlf in this child: fitfast(k), weighted if ``w``; or fit(k, x_c, y_c)
    (differential evolution) when ``xc`` is given. Its errors, computed by the
    same functions as relu_ext's."""
    try:
        import pwlf

        np.random.seed(0)  # pwlf's starts come from numpy's global generator
        start = time.perf_counter()
        model = pwlf.PiecewiseLinFit(x, y) if w is None else pwlf.PiecewiseLinFit(x, y, weights=w)
        if xc is None:
            model.fitfast(k)
        else:
            model.fit(k, x_c=xc, y_c=yc)
        seconds = time.perf_counter() - start
        out = {"seconds": seconds, "error": rmse(model.predict(x), y, None if w is None else w**2),
               "breakpoints": [float(b) for b in model.fit_breaks[1:-1]]}
        if xc is not None:
            out["through_error"] = float(np.abs(model.predict(xc) - yc).max())
        queue.put(out)
    except Exception as e:  # reported, not raised: the parent goes on
        queue.put({"failed": f"{type(e).__name__}: {e}"})


def fit_relu_ext(x, y, k, **options):
    """relu_ext.fit_curve timed; the model, or the exception it raised."""
    start = time.perf_counter()
    try:
        model, history = relu_ext.fit_curve(x, y, k, **options)
    except Exception as e:  # e.g. an option the build does not have yet
        return None, None, {"failed": f"{type(e).__name__}: {e}"}
    return model, history, {"seconds": time.perf_counter() - start}


def accurate_fast(ours, theirs, value_range):
    """benchmarks/accuracy.py's verdict on the common error: (accurate, fast),
    None where pwlf gave no figure; a capped pwlf took longer than its cap."""
    if "failed" in ours:
        return None, None
    if "capped" in theirs:
        return None, ours["seconds"] <= theirs["capped"] / 5
    if "error" not in theirs:
        return None, None
    allowed = max(1.25 * theirs["error"], theirs["error"] + 5e-4 * value_range)
    return ours["error"] <= allowed, ours["seconds"] <= theirs["seconds"] / 5


# --------------------------------------------------------------------------- many_curves

def make_curves(curves, points, seed=0):
    """x sorted uniform on [-2, 2] per curve; y = sin(a·x + φ) + c·x² + σ·ε,
    a ∈ [0.5, 4], φ ∈ [0, 2π), c ∈ [-1, 1], σ ∈ [0.02, 0.2]; float64."""
    g = torch.Generator().manual_seed(seed)

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)

    x = uniform(-2, 2, curves, points).sort(dim=1).values
    a, phase = uniform(0.5, 4, curves, 1), uniform(0, 2 * math.pi, curves, 1)
    c, sigma = uniform(-1, 1, curves, 1), uniform(0.02, 0.2, curves, 1)
    y = torch.sin(a * x + phase) + c * x**2 + sigma * torch.randn(curves, points, generator=g,
                                                                   dtype=torch.float64)
    return x, y


def many_curves(args, have):
    B, N, K = args.curves, args.points, args.units
    x, y = make_curves(B, N)
    print(f"many_curves: {B} curves × {N} points, K = {K}", flush=True)
    model, history, ours = fit_relu_ext(x, y, K)
    if model is None:
        return {"conditions": dict(curves=B, points=N, units=K), "relu_ext": ours}
    batch_rmse = history.final_loss.double().sqrt()
    sample = sorted(torch.randperm(B, generator=torch.Generator().manual_seed(1))
                    [:min(args.pwlf_sample, B)].tolist())

    rows, alone_seconds = [], 0.0
    for c in sample:
        xs, ys = x[c].numpy(), y[c].numpy()
        piece = to_piecewise(model.m[c].detach(), model.b[c].detach(), model.a[c].detach(),
                             model.bias[c].detach())
        check = rmse(piecewise_eval(piece.breakpoints.double().numpy(),
                                    piece.slopes.double().numpy(),
                                    piece.intercepts.double().numpy(), xs), ys)
        single, single_history, single_time = fit_relu_ext(x[c], y[c], K)
        alone_seconds += single_time.get("seconds", float("nan"))
        row = {"curve": c, "relu_ext_rmse": batch_rmse[c].item(), "relu_ext_rmse_piecewise": check,
               "relu_ext_alone_rmse": (math.sqrt(single_history.final_loss)
                                       if single is not None else None),
               "relu_ext_alone_seconds": single_time.get("seconds"),
               "relu_ext_alone_bitwise": single is not None and all(
                   torch.equal(getattr(single, p).reshape(-1), getattr(model, p)[c].reshape(-1))
                   for p in ("m", "b", "a", "bias"))}
        if have["pwlf"]:
            theirs = run_child(_pwlf_child, (xs, ys, K, None, None, None), args.pwlf_cap)
            row["pwlf"] = theirs
            if "error" in theirs and theirs["error"] > 0:
                row["ratio"] = row["relu_ext_rmse"] / theirs["error"]
        print(json.dumps(row), flush=True)
        rows.append(row)

    result = {
        "conditions": dict(curves=B, points=N, units=K, sample=len(sample),
                           data="sin(a·x + φ) + c·x² + σ·ε, x sorted uniform on [-2, 2]"),
        "relu_ext": {"seconds": ours["seconds"], "ms_per_curve": 1e3 * ours["seconds"] / B,
                     "rmse_median_all": batch_rmse.median().item(),
                     "sample_alone_seconds": alone_seconds,
                     # fit_curve promises a batch's fit of a curve is bitwise its fit alone
                     "sample_alone_same_as_batch": all(r["relu_ext_alone_bitwise"] for r in rows)},
        "sample": rows,
    }
    timed = [r["pwlf"]["seconds"] for r in rows if "seconds" in r.get("pwlf", {})]
    if have["pwlf"]:
        ratios = [r["ratio"] for r in rows if "ratio" in r]
        pw = {"finished": len(timed), "capped": sum("capped" in r["pwlf"] for r in rows),
              "failed": sum("failed" in r["pwlf"] for r in rows)}
        if timed:
            pw["mean_seconds"] = float(np.mean(timed))
            pw["scaled_seconds"] = pw["mean_seconds"] * B
            pw["time_ratio"] = pw["scaled_seconds"] / ours["seconds"]
        if ratios:
            pw["rmse_ratio_median"] = float(np.median(ratios))
            pw["rmse_ratio_worst"] = float(np.max(ratios))
        result["pwlf"] = pw
    return result


# --------------------------------------------------------------------------- weights_through

def _kinked(x):
    return (x - 0.3).abs() - 0.6 * torch.relu(x + 1.2) + 0.8 * torch.relu(x - 1.1)


def weighted_targets(points):
    """name → (description, x, y, w): w is pwlf's weight, 1/σ of each point's noise."""
    g = torch.Generator().manual_seed(2)
    x = torch.linspace(-2, 2, points, dtype=torch.float64)

    def noise():
        return torch.randn(points, generator=g, dtype=torch.float64)

    sigma = 0.02 + 0.1 * x.abs()
    growing = ("sin(3x) + σ·ε, σ = 0.02 + 0.1·|x|, w = 1/σ", x, torch.sin(3 * x) + sigma * noise(),
               1 / sigma)
    sigma_e = 0.05 * torch.exp(x)
    multiplicative = ("exp(x)·(1 + 0.05·ε), w = 1/(0.05·exp(x))", x,
                      torch.exp(x) + sigma_e * noise(), 1 / sigma_e)
    # Outliers on [0.5, 1] (σ = 0.5) down-weighted; elsewhere σ = 0.03.
    bad = (x >= 0.5) & (x <= 1.0)
    sigma_o = torch.where(bad, 0.5, 0.03)
    outliers = ("kinked + σ·ε, σ = 0.5 on [0.5, 1] else 0.03, w = 1/σ", x,
                _kinked(x) + sigma_o * noise(), 1 / sigma_o)
    return {"growing_noise": growing, "multiplicative": multiplicative, "outliers": outliers}


def through_targets(points):
    """name → (description, x, y, xc, yc): yc the noiseless target at xc."""
    g = torch.Generator().manual_seed(3)
    x = torch.linspace(-2, 2, points, dtype=torch.float64)
    noise = torch.randn(points, generator=g, dtype=torch.float64)
    ends = torch.tensor([-2.0, 2.0], dtype=torch.float64)
    point = torch.tensor([0.3], dtype=torch.float64)
    return {
        "sin_ends": ("sin(3x) + 0.05·ε through (±2, sin(±6))", x, torch.sin(3 * x) + 0.05 * noise,
                     ends, torch.sin(3 * ends)),
        "tanh_point": ("tanh(4x) + 0.05·ε through (0.3, tanh(1.2))", x,
                       torch.tanh(4 * x) + 0.05 * noise, point, torch.tanh(4 * point)),
    }


def weights_through(args, have):
    weighted, through = weighted_targets(args.points), through_targets(args.points)
    if args.quick:
        weighted = dict(list(weighted.items())[:1])
        through = dict(list(through.items())[:1])
    cases = []
    for k in args.ks:
        for name, (what, x, y, w) in weighted.items():
            model, _, ours = fit_relu_ext(x, y, k, weights=w**2)
            if model is not None:
                ours["error"] = rmse(predict(model, x), y.numpy(), (w**2).numpy())
            theirs = run_child(_pwlf_child, (x.numpy(), y.numpy(), k, w.numpy(), None, None),
                               args.pwlf_cap) if have["pwlf"] else {"skipped": "pwlf not installed"}
            cases.append(_case(name, "weights", what, k, x, y, ours, theirs))
        for name, (what, x, y, xc, yc) in through.items():
            model, _, ours = fit_relu_ext(x, y, k, through=(xc, yc))
            if model is not None:
                ours["error"] = rmse(predict(model, x), y.numpy())
                ours["through_error"] = float((predict(model, xc) - yc.numpy()).__abs__().max())
            job = (x.numpy(), y.numpy(), k, None, xc.numpy(), yc.numpy())
            theirs = run_child(_pwlf_child, job, args.through_cap) if have["pwlf"] else \
                {"skipped": "pwlf not installed"}
            cases.append(_case(name, "through", what, k, x, y, ours, theirs))
    return {"conditions": dict(points=args.points, ks=args.ks, pwlf_cap=args.pwlf_cap,
                               through_cap=args.through_cap), "cases": cases}


def _case(name, kind, what, k, x, y, ours, theirs):
    value_range = (y.max() - y.min()).item()
    accurate, fast = accurate_fast(ours, theirs, value_range)
    case = {"target": name, "kind": kind, "description": what, "units": k, "points": x.numel(),
            "range": value_range, "relu_ext": ours, "pwlf": theirs, "accurate": accurate,
            "fast": fast}
    print(json.dumps(case), flush=True)
    return case


# --------------------------------------------------------------------------- shapes

def shape_targets(points):
    """name → (description, x, y, monotone, convex)."""
    g = torch.Generator().manual_seed(4)
    x = torch.linspace(-2, 2, points, dtype=torch.float64)

    def noise(scale):
        return scale * torch.randn(points, generator=g, dtype=torch.float64)

    # Noise large enough that an unconstrained fit with K = 10 breaks the shape.
    return {
        "logistic": ("1/(1 + e^(-3x)) + 0.1·ε", x, torch.sigmoid(3 * x) + noise(0.1), 1, None),
        "exp": ("exp(x) + 0.3·ε", x, torch.exp(x) + noise(0.3), None, True),
        "log1p": ("log1p(x + 2) + 0.1·ε", x, torch.log1p(x + 2) + noise(0.1), 1, False),
        "sqrt": ("sqrt(x + 2) + 0.1·ε", x, torch.sqrt(x + 2) + noise(0.1), 1, None),
        "softplus": ("softplus(3x) + 0.2·ε", x, torch.nn.functional.softplus(3 * x) + noise(0.2),
                     None, True),
        "decay": ("exp(-x) + 0.3·ε", x, torch.exp(-x) + noise(0.3), -1, True),
    }


def shape_name(monotone, convex):
    words = [{1: "increasing", -1: "decreasing"}.get(monotone, ""),
             {True: "convex", False: "concave"}.get(convex, "")]
    return " + ".join(w for w in words if w) or "none"


def uniform_knot_fit(x, y, k, monotone, convex, lsq_linear):
    """The exact least-squares fit on K equally spaced pieces under the shape.

    The function is f(x) = c + α·x + Σ_{j=1}^{K-1} β_j·relu(x - t_j), knots
    t_j = x_min + j·(x_max - x_min)/K: design matrix H = [1, x, relu(x - t_j)],
    parameters p = (c, α, β_1..β_{K-1}). Piece j's slope is s_j = α + β_1 +
    ... + β_j (s_0 = α), and β_j = s_j - s_{j-1} is the change of slope at t_j.
    Each shape is a set of linear inequalities on the slopes; a change of
    variables p = M·z turns them into bounds on single variables z, and
    scipy.optimize.lsq_linear (method "bvls", exact) minimises |H·M·z - y|²
    under those bounds:

    - convex (concave): β_j ≥ 0 (≤ 0). z = p, M = I; bounds on the β's.
    - monotone ±1: ±s_j ≥ 0 for every piece (the extrapolation continues the
      end pieces). z = (c, s_0, ..., s_{K-1}), the slopes themselves:
      α = s_0, β_j = s_j - s_{j-1}; bounds ±s_j ≥ 0.
    - monotone and convex/concave: the slopes are then monotone in j, so the
      monotone constraint only binds the extreme slope e it points at (the
      smallest for +1, the largest for -1: s_0 or s_{K-1}). z = (c, s_e, β):
      e = 0 gives α = s_0; e = K-1 gives α = s_{K-1} - Σ_j β_j. Bounds: ±s_e ≥ 0
      and the β's as for convex/concave.

    Returns (predictions, slopes (K,), knots (K-1,), seconds)."""
    start = time.perf_counter()
    knots = x.min() + (x.max() - x.min()) * np.arange(1, k) / k
    H = np.column_stack([np.ones_like(x), x, *(np.maximum(x - t, 0.0) for t in knots)])
    n = k + 1                                # (c, α, β_1..β_{K-1})
    M = np.eye(n)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    bend = {True: (0.0, np.inf), False: (-np.inf, 0.0), None: (-np.inf, np.inf)}[convex]
    sign = {1: (0.0, np.inf), -1: (-np.inf, 0.0), None: (-np.inf, np.inf)}[monotone]
    if monotone is None:                     # z = (c, α, β): bounds on β only
        lo[2:], hi[2:] = bend
    elif convex is None:                     # z = (c, s_0, ..., s_{K-1})
        M = np.zeros((n, n))
        M[0, 0] = 1.0                        # c
        M[1, 1] = 1.0                        # α = s_0
        for j in range(1, k):                # β_j = s_j - s_{j-1}
            M[1 + j, 1 + j], M[1 + j, j] = 1.0, -1.0
        lo[1:], hi[1:] = sign
    else:                                    # z = (c, s_e, β)
        smallest_first = bool(convex)        # convex: s_0 smallest; concave: s_0 largest
        e_first = smallest_first if monotone == 1 else not smallest_first
        if not e_first:                      # α = s_{K-1} - Σ β_j
            M[1, 2:] = -1.0
        lo[1], hi[1] = sign
        lo[2:], hi[2:] = bend
    solved = lsq_linear(H @ M, y, bounds=(lo, hi), method="bvls")
    p = M @ solved.x
    seconds = time.perf_counter() - start
    slopes = p[1] + np.concatenate([[0.0], np.cumsum(p[2:])])
    return H @ p, slopes, knots, seconds


def shape_holds(slopes, monotone, convex, scale):
    """The fitted slopes meet the shape (monotone exactly; convex to rounding)."""
    slopes = np.asarray(slopes, float)
    ok = True
    if monotone:
        ok &= bool((slopes * monotone >= 0).all())
    if convex is not None and slopes.size > 1:
        change = np.diff(slopes) * (1 if convex else -1)
        ok &= bool((change >= -1e-9 * scale).all())
    return ok


def shapes(args, have):
    targets = shape_targets(args.points)
    if args.quick:  # one target of each shape
        targets = {n: targets[n] for n in ("logistic", "exp", "log1p")}
    scipy_optimize = optional("scipy.optimize") if have["scipy"] else None
    isotonic = optional("sklearn.isotonic") if have["sklearn"] else None
    cases = []
    for name, (what, x, y, monotone, convex) in targets.items():
        xs, ys = x.numpy(), y.numpy()
        lo, hi = float(xs.min()), float(xs.max())
        value_range = float(ys.max() - ys.min())
        case = {"target": name, "description": what, "shape": shape_name(monotone, convex),
                "monotone": monotone, "convex": convex, "points": x.numel(), "range": value_range,
                "by_k": []}
        for k in args.ks:
            rows = {}
            model, _, ours = fit_relu_ext(x, y, k, monotone=monotone, convex=convex)
            if model is not None:
                piece = model.to_piecewise()
                slopes = piece.slopes.double().numpy()
                ours.update(rmse=rmse(predict(model, x), ys),
                            pieces=count_pieces(piece.breakpoints.double().numpy(), slopes, lo, hi),
                            shape_holds=shape_holds(slopes, monotone, convex,
                                                    np.abs(slopes).max()))
            rows["relu_ext"] = ours
            free_model, _, free = fit_relu_ext(x, y, k)
            if free_model is not None:
                piece = free_model.to_piecewise()
                free.update(rmse=rmse(predict(free_model, x), ys),
                            pieces=count_pieces(piece.breakpoints.double().numpy(),
                                                piece.slopes.double().numpy(), lo, hi),
                            shape_holds=shape_holds(piece.slopes.double().numpy(), monotone,
                                                    convex, piece.slopes.abs().max().item()))
            rows["relu_ext_unconstrained"] = free
            if scipy_optimize is not None:
                fitted, slopes, knots, seconds = uniform_knot_fit(xs, ys, k, monotone, convex,
                                                                  scipy_optimize.lsq_linear)
                rows["uniform_knots"] = {
                    "seconds": seconds, "rmse": rmse(fitted, ys),
                    "pieces": count_pieces(knots, slopes, lo, hi),
                    "shape_holds": shape_holds(slopes, monotone, convex, np.abs(slopes).max())}
                if "rmse" in ours:
                    best = rows["uniform_knots"]["rmse"]
                    gap = (ours["rmse"] - best) / best
                    ours["vs_uniform_relative"] = gap
                    ours["not_worse_than_uniform"] = gap <= 1e-9
            else:
                rows["uniform_knots"] = {"skipped": "scipy not installed"}
            entry = {"units": k, **rows}
            case["by_k"].append(entry)
        if monotone:
            if isotonic is not None:
                start = time.perf_counter()
                iso = isotonic.IsotonicRegression(increasing=monotone == 1, out_of_bounds="clip")
                fitted = iso.fit_transform(xs, ys)
                case["isotonic"] = {"seconds": time.perf_counter() - start,
                                    "rmse": rmse(fitted, ys),
                                    "pieces": int(np.unique(fitted).size)}
            else:
                case["isotonic"] = {"skipped": "scikit-learn not installed"}
        print(json.dumps(case), flush=True)
        cases.append(case)
    return {"conditions": dict(points=args.points, ks=args.ks), "cases": cases}


# --------------------------------------------------------------------------- report

MARK = {True: "yes", False: "**no**", None: "–"}


def _secs(entry):
    if entry is None:
        return "–"
    if "seconds" in entry and entry["seconds"] is not None:
        s = entry["seconds"]
        return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"
    if "capped" in entry:
        return f"> {entry['capped']:.0f} s (stopped)"
    if "skipped" in entry:
        return "skipped"
    return "failed"


def _times(ratio):
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.3g}×"


def _num(value, fmt=".4g"):
    return "–" if value is None else format(value, fmt)


def many_curves_table(part):
    c, ours = part["conditions"], part["relu_ext"]
    if "seconds" not in ours or "sample" not in part:
        return f"relu_ext failed: {ours.get('failed')}", []
    B, n = c["curves"], c["sample"]
    lines = ["| quantity | value |", "|---|---|",
             f"| relu_ext, all {B:,} curves in one call | {ours['seconds']:.3g} s "
             f"({ours['ms_per_curve']:.3g} ms per curve) |",
             f"| relu_ext, the {n} sampled curves one call each | "
             f"{ours['sample_alone_seconds']:.3g} s ({1e3 * ours['sample_alone_seconds'] / n:.3g} "
             f"ms per curve; bitwise the batch's fits: "
             f"{MARK[ours['sample_alone_same_as_batch']]}) |",
             f"| relu_ext median RMSE over all curves | {ours['rmse_median_all']:.4g} |"]
    pw = part.get("pwlf")
    words = []
    if pw is None:
        lines.append("| pwlf | not installed: skipped |")
    else:
        lines.append(f"| pwlf `fitfast({c['units']})`, the {n} sampled curves | "
                     f"{pw['finished']} finished, {pw['capped']} stopped at the cap, "
                     f"{pw['failed']} failed; mean {_num(pw.get('mean_seconds'), '.3g')} s |")
        if "scaled_seconds" in pw:
            scaled = pw["scaled_seconds"]
            lines.append(f"| pwlf scaled to {B:,} curves | {scaled:.4g} s" +
                         (f" ({scaled / 3600:.3g} h)" if scaled >= 3600 else
                          f" ({scaled / 60:.3g} min)" if scaled >= 60 else "") + " |")
            lines.append(f"| pwlf's scaled time / relu_ext's | {_times(pw['time_ratio'])} |")
        if "rmse_ratio_median" in pw:
            lines.append(f"| RMSE ours / pwlf's on the sample: median, worst | "
                         f"{pw['rmse_ratio_median']:.4f}, {pw['rmse_ratio_worst']:.4f} |")
            words.append(f"RMSE ratio ours / pwlf's over the {n} sampled curves: median "
                         f"{pw['rmse_ratio_median']:.3f}, worst {pw['rmse_ratio_worst']:.3f} "
                         "(target ≤ 1.25: "
                         f"{'met' if pw['rmse_ratio_worst'] <= 1.25 else 'missed'}).")
        if "time_ratio" in pw:
            words.insert(0, f"pwlf `fitfast` would take about {pw['scaled_seconds']:,.0f} s for "
                            f"the same batch (its mean over {pw['finished']} curves × {B:,}), "
                            f"{_times(pw['time_ratio'])} relu_ext's time.")
    words.insert(0, f"relu_ext fitted {B:,} curves of {c['points']:,} points with K = "
                    f"{c['units']} in {ours['seconds']:.3g} s (target < 30 s at 10,000 × 2,000: "
                    + ("met" if ours["seconds"] < 30 else "missed")
                    + ("" if (B, c["points"]) == (10_000, 2_000) else ", but this run's size "
                       "differs") + ").")
    return "\n".join(lines), words


def weights_through_table(part):
    lines = ["| target | kind | K | error relu_ext | error pwlf | ratio | max \\|f(xc) - yc\\| "
             "relu_ext | pwlf | time relu_ext | time pwlf | pwlf time / ours | accurate | "
             "≤ 1/5 time |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in part["cases"]:
        ours, theirs = c["relu_ext"], c["pwlf"]
        has = "error" in theirs and "error" in ours
        ratio = f"{ours['error'] / theirs['error']:.3f}" if has and theirs["error"] > 0 else "–"
        speed = (_times(theirs["seconds"] / ours["seconds"])
                 if "seconds" in theirs and "seconds" in ours else "–")
        lines.append(
            f"| {c['target']} | {c['kind']} | {c['units']} | {_num(ours.get('error'))} | "
            f"{_num(theirs.get('error'))} | {ratio} | {_num(ours.get('through_error'), '.2g')} | "
            f"{_num(theirs.get('through_error'), '.2g')} | {_secs(ours)} | {_secs(theirs)} | "
            f"{speed} | {MARK[c['accurate']]} | {MARK[c['fast']]} |")
    cases = part["cases"]
    failed = [c for c in cases if "failed" in c["relu_ext"]]
    judged = [c for c in cases if c["accurate"] is not None]
    timed = [c for c in cases if c["fast"] is not None]
    words = [f"Weighted and through-point fits: accurate on {sum(c['accurate'] for c in judged)} "
             f"of {len(judged)} cases pwlf finished, at most a fifth of pwlf's time (or of its "
             f"cap) on {sum(c['fast'] for c in timed)} of {len(timed)}."]
    through = [c["relu_ext"]["through_error"] for c in cases if "through_error" in c["relu_ext"]]
    if through:
        words.append(f"relu_ext passes through the given points to within {max(through):.2g}.")
    if failed:
        words.append("relu_ext could not run " + "; ".join(
            f"{c['target']} K={c['units']} ({c['relu_ext']['failed']})" for c in failed) + ".")
    if cases and all("skipped" in c["pwlf"] for c in cases):
        words.append("pwlf is not installed: its side was skipped.")
    return "\n".join(lines), words


def shapes_table(part):
    lines = ["| target | shape | K | method | RMSE | pieces | time | shape holds | "
             "vs uniform-knot optimum |", "|---|---|---|---|---|---|---|---|---|"]
    labels = {"relu_ext": "relu_ext (constrained)", "uniform_knots": "uniform knots, lsq_linear",
              "relu_ext_unconstrained": "relu_ext, no constraint"}
    checked, worse, failed, broken = 0, [], [], []
    for c in part["cases"]:
        for entry in c["by_k"]:
            for key, label in labels.items():
                row = entry[key]
                if "skipped" in row:
                    lines.append(f"| {c['target']} | {c['shape']} | {entry['units']} | {label} | "
                                 f"skipped ({row['skipped']}) | | | | |")
                    continue
                gap = row.get("vs_uniform_relative")
                lines.append(
                    f"| {c['target']} | {c['shape']} | {entry['units']} | {label} | "
                    f"{_num(row.get('rmse'))} | {row.get('pieces', '–')} | {_secs(row)} | "
                    f"{MARK[row.get('shape_holds')]} | "
                    + ("–" if gap is None else f"{gap:+.2e}"
                       + ("" if row["not_worse_than_uniform"] else " **worse**")) + " |")
            ours = entry["relu_ext"]
            if "failed" in ours:
                failed.append(f"{c['target']} K={entry['units']} ({ours['failed']})")
            if "not_worse_than_uniform" in ours:
                checked += 1
                if not ours["not_worse_than_uniform"]:
                    worse.append(f"{c['target']} K={entry['units']}")
            if ours.get("shape_holds") is False:
                broken.append(f"{c['target']} K={entry['units']}")
        iso = c.get("isotonic")
        if iso is not None:
            lines.append(f"| {c['target']} | {c['shape']} | – | isotonic regression | "
                         + (f"skipped ({iso['skipped']}) | | | | |" if "skipped" in iso else
                            f"{iso['rmse']:.4g} | {iso['pieces']} steps | {_secs(iso)} | yes | "
                            "– |"))
    words = []
    if checked:
        words.append(f"relu_ext's constrained fit is never worse than the exact uniform-knot "
                     f"optimum: {'true' if not worse else 'FALSE'} ({checked - len(worse)} of "
                     f"{checked} cases not worse"
                     + (f"; worse: {', '.join(worse)}" if worse else "") + ").")
    else:
        words.append("The uniform-knot optimum was not computed (scipy missing or relu_ext "
                     "failed): relu_ext's constrained fits are not checked against it.")
    words.append("The shape holds in every relu_ext constrained fit." if not broken else
                 f"The shape does NOT hold in: {', '.join(broken)}.")
    if failed:
        words.append("relu_ext could not run " + "; ".join(failed) + ".")
    return "\n".join(lines), words


def markdown(results):
    m = results["machine"]
    version = m["relu_ext"]
    version = version.get("version", "?") if isinstance(version, dict) else version
    parts = results.get("sections", {})
    body = ["## Curves: relu_ext.fit_curve at scale and with options",
            "",
            f"`python benchmarks/curves.py` on {m['cpu_model']} ({m['logical_cpus']} logical "
            f"CPUs), {m['threads']} threads, torch {m['torch']}, relu_ext {version}"
            f", load average {m['load_average_at_start'][0]:.2f} at the start ({m['date_utc']}). "
            "relu_ext and its anchor are timed in the same run, wall-clock of each call; pwlf "
            "runs in a child process with a time cap (numpy's global seed 0 before each fit). "
            "K units (relu_ext) against K segments (pwlf): the same family."
            + (" **Quick run: tiny sizes, figures not representative.**" if results.get("quick")
               else "")]
    if results.get("missing"):
        body.append("")
        body.append("Not installed, so skipped: " + ", ".join(
            f"{name} ({what})" for name, what in results["missing"].items()) + ".")
    verdicts = []
    if "many_curves" in parts:
        c = parts["many_curves"]["conditions"]
        table, words = many_curves_table(parts["many_curves"])
        body += ["", "### Many curves", "",
                 f"{c['curves']:,} curves of {c['points']:,} points, K = {c['units']}: "
                 f"{c.get('data', '')}, a, φ, c, σ drawn per curve (seeded). relu_ext fits the "
                 f"batch in one call; pwlf `fitfast` fits {c.get('sample', '?')} sampled curves "
                 "one at a time, its mean time scaled to the batch.", "", table]
        verdicts += words
    if "weights_through" in parts:
        part = parts["weights_through"]
        table, words = weights_through_table(part)
        targets = {c["target"]: (c["kind"], c["description"]) for c in part["cases"]}
        body += ["", "### Weights and points to pass through", "",
                 f"{part['conditions']['points']:,} points on [-2, 2]. *weights*: pwlf minimises "
                 "Σ (w·r)² (its weights multiply the residuals), relu_ext Σ W·r², so relu_ext is "
                 "given W = w²; the error is the common objective's weighted RMSE, "
                 "sqrt(Σ w²·r² / Σ w²), against pwlf's weighted `fitfast(K)`. *through*: against "
                 "pwlf's `fit(K, x_c=, y_c=)` (differential evolution, stopped after "
                 f"{part['conditions']['through_cap']:.0f} s); the error is the RMSE, and "
                 "max |f(xc) - yc| is shown for each. *accurate*: error ≤ max(1.25 × pwlf's, "
                 "pwlf's + 5e-4 × range).", "",
                 "Targets: " + "; ".join(f"{n} ({k}): {d}" for n, (k, d) in targets.items()) + ".",
                 "", table]
        verdicts += words
    if "shapes" in parts:
        part = parts["shapes"]
        table, words = shapes_table(part)
        body += ["", "### Shape constraints", "",
                 f"{part['conditions']['points']:,} points on [-2, 2]. relu_ext with `monotone` / "
                 "`convex` against the exact least-squares fit on K equally spaced pieces under "
                 "the same shape (hinge basis with the K - 1 interior uniform knots, the shape as "
                 "bounds after a change of variables: the slope changes for convex/concave, the "
                 "slopes themselves for monotone, the extreme slope and the slope changes for "
                 "both; `scipy.optimize.lsq_linear`, bvls), against sklearn's "
                 "IsotonicRegression for the monotone ones (a step function, as many steps as "
                 "it likes), and relu_ext without the constraint for reference. *pieces*: "
                 "straight pieces over the data (kinks with a nonzero change of slope + 1). "
                 "*vs uniform-knot optimum*: (RMSE - optimum's) / optimum's, which must be ≤ 0 "
                 "(to 1e-9).", "",
                 "Targets: " + "; ".join(f"{c['target']} ({c['shape']}): {c['description']}"
                                         for c in part["cases"]) + ".", "", table]
        verdicts += words
    if verdicts:
        body += ["", "**Verdicts.** " + " ".join(verdicts)]
    return "\n".join(body)


# --------------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curves", type=int, default=10_000, help="B for many_curves (10,000)")
    parser.add_argument("--points", type=int, default=2_000, help="N per curve (2,000)")
    parser.add_argument("--units", type=int, default=10, help="K for many_curves (10)")
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10],
                        help="K for weights_through and shapes (5 10)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {', '.join(SECTIONS)} (all)")
    parser.add_argument("--pwlf-sample", type=int, default=20,
                        help="curves pwlf fits in many_curves (20)")
    parser.add_argument("--pwlf-cap", type=float, default=600.0,
                        help="seconds per pwlf fitfast (600)")
    parser.add_argument("--through-cap", type=float, default=300.0,
                        help="seconds per pwlf fit through points (300)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (B=50, N=300, K=5, a few targets, small pwlf sample)")
    add_output_options(parser, RESULTS / "curves.json")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.quick:
        args.curves, args.points, args.units, args.ks = 50, 300, 5, [5]
        args.pwlf_sample = min(args.pwlf_sample, 3)
        args.pwlf_cap, args.through_cap = min(args.pwlf_cap, 60.0), min(args.through_cap, 60.0)

    if args.report_only:
        results = json.loads(args.json.read_text())
    else:
        torch.set_num_threads(args.threads)
        # One-off costs (lazy imports, first kernel calls) are paid here, untimed.
        warm = torch.linspace(-2, 2, 200, dtype=torch.float64)
        relu_ext.fit_curve(warm, warm.sin(), 5)
        relu_ext.fit_curve(torch.stack([warm, warm]), torch.stack([warm.sin(), warm.cos()]), 5)
        have = {"pwlf": optional("pwlf") is not None,
                "scipy": optional("scipy.optimize") is not None,
                "sklearn": optional("sklearn.isotonic") is not None}
        what_for = {"pwlf": "the pwlf side of many_curves and weights_through",
                    "scipy": "the uniform-knot optimum of shapes",
                    "sklearn": "the isotonic regression of shapes"}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        results = json.loads(args.json.read_text()) if args.json.exists() else {}
        results.update(quick=args.quick, **run_header(),
                       missing={n: what_for[n] for n, ok in have.items() if not ok})
        parts = results.setdefault("sections", {})
        for name in chosen:
            parts[name] = globals()[name](args, have)
            args.json.write_text(json.dumps(results, indent=1))
        save(args.json, results)
    print(markdown(results))


if __name__ == "__main__":
    main()
