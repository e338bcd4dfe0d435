"""The accuracy study of relu_ext.ReLUSumLinear as a KAN layer: test error
against training wall time next to pykan, and a small classifier.

(a) The KAN paper's f(x, y) = exp(sin(πx) + y²) on [-1, 1]², 1000 training
    and 1000 test points (pykan's create_dataset(f, n_var=2, train_num=1000,
    test_num=1000, seed=0), reproduced here draw for draw and checked against
    pykan's when it is installed), with a [2, 5, 1] network:
    - pykan 0.2.8: KAN(width=[2, 5, 1], grid=5, k=3, seed=0, auto_save=False),
      model.speed() (no symbolic branch, no saved activations), then
      fit(dataset, opt="LBFGS", steps=...) with its defaults (grid updates
      every 5 steps until step 50); its test RMSE and wall time at every step
      (fit evaluates the test set each step, inside its time);
    - relu_ext: ReLUSumLinear(2, 5, K1) then ReLUSumLinear(5, 1, K2), float32,
      trained by Levenberg-Marquardt on the edges' values at their knots
      (ReLUSumLinear.from_knot_values), full batch, the objective the MSE plus a
      small smoothness penalty, the grids refined (9, 9) → ... → (129, 65) as the
      steps stop gaining (pykan's grid extension), the second layer's knots kept
      over the hidden values (pykan's update_grid); seeds 0, 1, 2; stopped at 1.2×
      pykan's training time. For comparison the earlier recipe, Adam then L-BFGS
      on the layers' own parameters (K = 64). Test RMSE and wall time after every
      step (the clock stopped while the test set is evaluated). pykan runs first,
      then each relu_ext run; 1 thread by default.
    The table reads off both at pykan's checkpoints: at equal time, whose
    test error is lower.
(b) scikit-learn's digits (8×8 images, 1797, 25% held out stratified, features
    standardised on the training set): an MLP 64-H-10 (Linear + ReLU, Linear)
    against ReLUSumLinear(64, H, K) in place of Linear + ReLU (then Linear: an
    additive model), and against the KAN form ReLUSumLinear(64, H, K) →
    ReLUSumLinear(H, 10, K); H = 64, K = 4 and 8, Adam (lr 1e-3, batch 64),
    60 epochs; test accuracy and time per epoch over 5 seeds.

    python benchmarks/kan_accuracy.py            # ~75 s on 1 thread (digits most of it)
    python benchmarks/kan_accuracy.py --quick    # a few steps: checks the script (seconds)
    python benchmarks/kan_accuracy.py --report-only

pykan is an anchor: install the bench extra (pip install "relu_ext[bench]").
Without it the full run stops; --quick skips it with a note.

Prints the tables; writes benchmarks/results/kan_accuracy.json (--json):
"command", "code", "machine", "settings", "function" (the dataset check,
pykan's and each relu_ext run's trace of [seconds, test RMSE]),
"digits" (per model and seed: accuracy, seconds per epoch).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from common import RESULTS, optional, run_header, save  # noqa: E402

BENCH_EXTRA = 'the bench extra: pip install "relu_ext[bench]" (from a checkout: pip install ".[bench]")'


def _progress(message):
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- (a) f(x, y)

def target(x):
    return torch.exp(torch.sin(torch.pi * x[:, [0]]) + x[:, [1]] ** 2)


def make_dataset(train_num=1000, test_num=1000, seed=0):
    """pykan's create_dataset(target, n_var=2, ranges=[-1, 1], seed=seed):
    the same draws in the same order (torch.manual_seed, then per variable a
    training column and a test column, uniform on [-1, 1])."""
    torch.manual_seed(seed)
    train, test = torch.zeros(train_num, 2), torch.zeros(test_num, 2)
    for i in range(2):
        train[:, i] = torch.rand(train_num) * 2 - 1
        test[:, i] = torch.rand(test_num) * 2 - 1
    return {"train_input": train, "test_input": test,
            "train_label": target(train), "test_label": target(test)}


def check_dataset(dataset):
    """Whether pykan's create_dataset gives the same tensors (None: no pykan)."""
    if optional("kan") is None:
        return None
    from kan import create_dataset

    theirs = create_dataset(target, n_var=2, train_num=len(dataset["train_input"]),
                            test_num=len(dataset["test_input"]), seed=0)
    return all(torch.equal(theirs[key], dataset[key]) for key in dataset)


def run_pykan(dataset, steps):
    from kan import KAN

    torch.manual_seed(0)
    model = KAN(width=[2, 5, 1], grid=5, k=3, seed=0, auto_save=False).speed()
    start = time.perf_counter()

    def wall_time():  # a metric of fit: evaluated after each step
        return torch.tensor(time.perf_counter() - start, dtype=torch.float64)

    result = model.fit(dataset, opt="LBFGS", steps=steps, metrics=[wall_time], log=max(steps, 1))
    trace = [[t, float(rmse)] for t, rmse in zip(result["wall_time"], result["test_loss"])]
    return {"label": "pykan KAN([2, 5, 1], grid=5, k=3), speed(), fit(opt='LBFGS')",
            "steps": steps,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "trace": trace}


def _rmse(model, x, y):
    with torch.no_grad():
        return math.sqrt(F.mse_loss(model(x), y).item())


def run_relu_ext(dataset, units, adam_steps, lbfgs_steps, knots, every, lr=1e-2, history=10,
                 budget=None, train_knots=True, seed=0):
    """Trains ReLUSumLinear(2, 5, K) → ReLUSumLinear(5, 1, K): Adam, then
    L-BFGS (strong Wolfe, 20 iterations a step as pykan's fit); [seconds,
    test RMSE] every `every` Adam steps and every L-BFGS step. L-BFGS stops
    early once the training time passes `budget` seconds (None: no limit).
    train_knots=False trains only a and bias (m and b, the kinks, stay where
    ReLUSumLinear put them)."""
    torch.manual_seed(seed)
    first, second = relu_ext.ReLUSumLinear(2, 5, units), relu_ext.ReLUSumLinear(5, 1, units)
    model = nn.Sequential(first, second)
    x, y = dataset["train_input"], dataset["train_label"]
    tx, ty = dataset["test_input"], dataset["test_label"]
    elapsed = 0.0
    trace = []

    def checkpoint():
        trace.append([elapsed, _rmse(model, tx, ty)])

    start = time.perf_counter()
    if knots:
        first.update_knots(x)
        with torch.no_grad():
            hidden = first(x)
        second.update_knots(hidden)
    elapsed += time.perf_counter() - start
    checkpoint()

    params = [p for name, p in model.named_parameters()
              if train_knots or name.rsplit(".", 1)[-1] in ("a", "bias")]
    adam = torch.optim.Adam(params, lr=lr)
    for step in range(1, adam_steps + 1):
        start = time.perf_counter()
        adam.zero_grad(set_to_none=True)
        F.mse_loss(model(x), y).backward()
        adam.step()
        elapsed += time.perf_counter() - start
        if step % every == 0 or step == adam_steps:
            checkpoint()

    lbfgs = torch.optim.LBFGS(params, lr=1, max_iter=20, history_size=history,
                              line_search_fn="strong_wolfe")

    def closure():
        lbfgs.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss

    done = 0
    for _ in range(lbfgs_steps):
        if budget is not None and elapsed > budget:
            break
        start = time.perf_counter()
        lbfgs.step(closure)
        elapsed += time.perf_counter() - start
        done += 1
        checkpoint()
    return {"label": f"relu_ext ReLUSumLinear [2, 5, 1], K = {units}, Adam (lr {lr:g}) × "
                     f"{adam_steps} then L-BFGS (history {history}) × {done}"
                     + (", update_knots first" if knots else "")
                     + ("" if train_knots else ", kinks fixed (a, bias trained)"),
            "train_knots": train_knots, "units": units, "adam_steps": adam_steps, "lbfgs_steps": done,
            "update_knots": knots, "lr": lr, "history": history,
            "parameters": sum(p.numel() for p in params),
            "trace": trace}


def _at(values, knots, points):
    """Piecewise-linear edges through values (R, C, K) at knots (C, K), sorted
    (their end segments' lines continued), at points (C, M): (R, C, M)."""
    k = torch.searchsorted(knots, points.contiguous()).clamp(1, knots.shape[1] - 1)
    left, right = knots.gather(1, k - 1), knots.gather(1, k)
    w = (points - left) / (right - left)
    lower = values.gather(2, (k - 1).expand(values.shape[0], -1, -1))
    upper = values.gather(2, k.expand(values.shape[0], -1, -1))
    return lower + w * (upper - lower), k, w


def _smoothness(count, spacing, weight):
    """weight·∫f''² of an edge through `count` values `spacing` apart, Σ (Δ²v)²/h³,
    as the matrix R of the quadratic form vᵀRv."""
    d = torch.diff(torch.eye(count, dtype=torch.float64), n=2, dim=0)
    return weight / spacing ** 3 * d.T @ d


def run_relu_ext_lm(dataset, stages, smooth, seed=0, budget=None, margin=0.02, regrid_every=5,
                    tolerance=1e-3, stage_steps=100):
    """Trains ReLUSumLinear(2, 5, K1) → ReLUSumLinear(5, 1, K2) by Levenberg-Marquardt
    on the edges' values at their knots (ReLUSumLinear.from_knot_values), as pykan
    fits its splines' coefficients, and refines the grids stage by stage, as pykan's
    grid extension: `stages` lists (K1, K2), each stage's grids nested in the next's,
    so that a refinement keeps the function. The first layer's knots are uniform on
    [-1, 1]; the second's uniform over the hidden values' range (± margin), moved
    there every `regrid_every` steps keeping the function at the new knots (pykan's
    update_grid). The objective is the training MSE plus smooth = (λ1, λ2) times the
    Σ ∫f''² of each layer's edges (second differences of the values), which keeps
    the fine grids from fitting the gaps between the 1000 points. A stage ends when a
    step improves the objective by less than `tolerance` (relative) or after
    `stage_steps`; the last one when the training time passes `budget` seconds (or
    after `stage_steps` without a budget). Every model evaluated (the loss, the hidden
    values, the test error) is the two ReLUSumLinear layers; the Jacobian is each
    sample's two hat weights per edge (times, in the first layer, the slope of the
    second's edge at the hidden value), the solve float64. The edges start as
    ReLUSumLinear's random initialisation read at the first grid's knots.
    [seconds, test RMSE] after every step."""
    torch.manual_seed(seed)
    x, y = dataset["train_input"], dataset["train_label"]
    tx, ty = dataset["test_input"], dataset["test_label"]
    n, width = x.shape[0], 5
    target = y.double().reshape(-1)
    x64 = x.double()

    def grid(low, high, count):
        steps = torch.linspace(0, 1, count, dtype=torch.float64)
        return low[:, None] + (high - low)[:, None] * steps

    def layers(v1, k2s, v2, c):
        return (relu_ext.ReLUSumLinear.from_knot_values(knots1, v1, dtype=torch.float32),
                relu_ext.ReLUSumLinear.from_knot_values(k2s, v2, c, dtype=torch.float32))

    def hidden_grid(first, count):
        with torch.no_grad():
            h = first(x).double()
        low, high = h.min(0).values, h.max(0).values
        span = (high - low).clamp_min(1e-6)
        return grid(low - margin * span, high + margin * span, count)

    def objective_at(p, model):
        with torch.no_grad():
            fit = F.mse_loss(model[1](model[0](x)).double().reshape(-1), target)
        return (fit + p @ penalty @ p).item()

    elapsed, trace = 0.0, []
    clock = time.perf_counter()
    k1, k2 = stages[0]
    ones = torch.ones(2, dtype=torch.float64)
    knots1 = grid(-ones, ones, k1)
    start = (relu_ext.ReLUSumLinear(2, width, k1, dtype=torch.float64),
             relu_ext.ReLUSumLinear(width, 1, k2, dtype=torch.float64))
    with torch.no_grad():
        # Each edge's share of the first layer's bias goes into its values.
        values1 = start[0].edge_values(knots1.T).permute(1, 2, 0) + start[0].bias[:, None, None] / 2
        first = relu_ext.ReLUSumLinear.from_knot_values(knots1, values1, dtype=torch.float32)
        knots2 = hidden_grid(first, k2)
        values2 = start[1].edge_values(knots2.T).permute(1, 2, 0).contiguous()
        constant = start[1].bias.clone()
    first, second = layers(values1, knots2, values2, constant)
    elapsed += time.perf_counter() - clock
    trace.append([elapsed, _rmse(nn.Sequential(first, second), tx, ty)])

    for stage, (k1, k2) in enumerate(stages):
        last = stage == len(stages) - 1
        clock = time.perf_counter()
        if stage:  # finer grids through the same functions
            fine = grid(knots1[:, 0], knots1[:, -1], k1)
            values1, knots1 = _at(values1, knots1, fine)[0], fine
            fine = grid(knots2[:, 0], knots2[:, -1], k2)
            values2, knots2 = _at(values2, knots2, fine)[0], fine
        damping, objective, step = 1e-3, None, 0
        elapsed += time.perf_counter() - clock
        while True:
            step += 1
            clock = time.perf_counter()
            if objective is None or step % regrid_every == 0:
                if objective is not None:
                    fine = hidden_grid(first, k2)
                    values2, knots2 = _at(values2, knots2, fine)[0], fine
                first, second = layers(values1, knots2, values2, constant)
                spacing1, spacing2 = knots1[0, 1] - knots1[0, 0], knots2[:, 1] - knots2[:, 0]
                penalty = torch.block_diag(
                    *[_smoothness(k1, spacing1, smooth[0])] * (2 * width),
                    *[_smoothness(k2, spacing2[o], smooth[1]) for o in range(width)],
                    torch.zeros(1, 1, dtype=torch.float64))
            params = torch.cat([values1.reshape(-1), values2.reshape(-1), constant])
            if objective is None or step % regrid_every == 0:
                objective = objective_at(params, (first, second))
            with torch.no_grad():
                h = first(x)
                output = second(h).double().reshape(-1)
            # Each sample's cell (its right knot) and weight on it, per input: (2, N), (5, N).
            _, k, w = _at(values1[:1], knots1, x64.T)
            _, kh, wh = _at(values2, knots2, h.double().T)
            rows = torch.arange(width)[:, None]
            slope = ((values2[0][rows, kh] - values2[0][rows, kh - 1])
                     / (knots2[rows, kh] - knots2[rows, kh - 1]))  # (5, N): d output / d hidden
            jac1 = torch.zeros(n, width, 2, k1, dtype=torch.float64)
            index = (k - 1).T[:, None, :, None].expand(n, width, 2, 1)
            jac1.scatter_add_(3, index, (slope.T[:, :, None] * (1 - w).T[:, None, :])[..., None])
            jac1.scatter_add_(3, index + 1, (slope.T[:, :, None] * w.T[:, None, :])[..., None])
            jac2 = torch.zeros(n, width, k2, dtype=torch.float64)
            jac2.scatter_add_(2, (kh - 1).T[..., None], (1 - wh).T[..., None])
            jac2.scatter_add_(2, kh.T[..., None], wh.T[..., None])
            jac = torch.cat([jac1.reshape(n, -1), jac2.reshape(n, -1),
                             torch.ones(n, 1, dtype=torch.float64)], 1)
            normal = jac.T @ jac / n + penalty
            gradient = jac.T @ (output - target) / n + penalty @ params
            scale = torch.diag(normal.diagonal() + 1e-12)
            previous, stuck = objective, True
            while damping < 1e10:  # Marquardt's damping: larger until a step lowers it
                trial = params - torch.cholesky_solve(
                    gradient[:, None], torch.linalg.cholesky(normal + damping * scale))[:, 0]
                t1, t2, tc = trial.split([values1.numel(), values2.numel(), 1])
                t1, t2 = t1.view_as(values1), t2.view_as(values2)
                model = layers(t1, knots2, t2, tc)
                value = objective_at(trial, model)
                if value < objective:
                    values1, values2, constant, (first, second) = t1, t2, tc, model
                    objective, damping, stuck = value, max(damping / 3, 1e-9), False
                    break
                damping *= 2
            elapsed += time.perf_counter() - clock
            trace.append([elapsed, _rmse(nn.Sequential(first, second), tx, ty)])
            if stuck or budget is not None and elapsed > budget:  # no step lowers it: converged
                break
            if last and budget is None and step >= stage_steps:
                break
            if not last and (step >= stage_steps
                             or step >= 5 and previous - objective < tolerance * previous):
                break
        if budget is not None and elapsed > budget or stuck and last:
            break
    return {"label": "relu_ext ReLUSumLinear [2, 5, 1], values at knots, Levenberg-Marquardt, "
                     "grids " + " → ".join(f"({a}, {b})" for a, b in stages)
                     + f", smoothing λ = ({smooth[0]:g}, {smooth[1]:g}), seed {seed}",
            "method": "lm", "stages": [list(s) for s in stages], "smooth": list(smooth),
            "seed": seed, "steps": len(trace) - 1,
            "parameters": values1.numel() + values2.numel() + 1,
            "trace": trace}


def function_study(args):
    dataset = make_dataset()
    same = check_dataset(dataset)
    _progress(f"dataset: pykan's create_dataset gives the same tensors: {same}")
    out = {"dataset": "create_dataset(f, n_var=2, train_num=1000, test_num=1000, seed=0)",
           "same_as_pykan_create_dataset": same, "relu_ext": [], "pykan": None, "notes": []}
    # Warm-up, not recorded: torch's first autograd, optimizer and thread-pool calls cost ~1 s
    # once per process, which would otherwise land on whichever model trains first (pykan).
    run_relu_ext(dataset, 8, 5, 1, False, 5)
    if optional("kan") is not None:
        run_pykan(dataset, 1)
    if optional("kan") is None:
        out["notes"].append(f"pykan skipped: not installed ({BENCH_EXTRA})")
        _progress(out["notes"][-1])
        budget = None
    else:
        out["pykan"] = run_pykan(dataset, 2 if args.quick else args.pykan_steps)
        last = out["pykan"]["trace"][-1]
        _progress(f"pykan: test RMSE {last[1]:.3g} after {last[0]:.3g} s")
        budget = 1.2 * last[0]  # relu_ext's L-BFGS runs to a little past pykan's last step
    if args.quick:
        lm_runs, lm_steps = [([(5, 5), (9, 9)], (1e-10, 1e-7), 0)], 5
        configs, every = [(8, 20, 2, False, 3e-2, 10, True)], 5
    else:
        # Levenberg-Marquardt on the values at the knots, the grids refined (K1, K2) stage by
        # stage, the smoothing λ = (λ1, λ2). Chosen on a validation split (trained on the
        # first 800 training points, RMSE on the other 200; the test set untouched), 1 thread,
        # 2026-12-08, 4 seeds; pykan on the same split: 0.095 / 0.015 / 0.0074 / 0.0068 /
        # 0.0032 / 0.0014 at 0.14 / 0.62 / 1.5 / 3.3 / 5.0 / 8.4 s. Validation RMSE at those
        # times, the median of the 4 seeds (and the worst seed's at the last time):
        #   (9,9) (17,17) (33,33) (65,65) (129,65), λ (1e-10, 1e-7):
        #                          0.018 / 0.0027 / 0.0014 / 0.0010 / 0.00089 / 0.00076 (0.0011)
        #     worst seed at each:  0.024 / 0.0034 / 0.0019 / 0.0011 / 0.0011 / 0.0011
        #   the same to (65,65):   0.020 / 0.0027 / 0.0015 / 0.0010 / 0.00089 / 0.00089 (0.0011)
        #   to (65,33):            0.016 / 0.0024 / 0.0015 / 0.0011 / 0.0011 / 0.0011 (0.0014)
        #   to (65,33), (129,33):  0.013 / 0.0027 / 0.0016 / 0.0010 / 0.00095 / 0.00084 (0.0013)
        #   from (5,5) to (65,33): 0.044 / 0.0043 / 0.0018 / 0.0012 / 0.0011 / 0.0011 (0.0017)
        #   to (65,65), λ (1e-10, 1e-6):
        #                          0.012 / 0.0020 / 0.0018 / 0.0011 / 0.0011 / 0.0011 (0.0011)
        # In a plain-PyTorch copy of the method (seeds 0-3, random-line starts): λ (1e-10,
        # 1e-8) 0.0012 and (1e-11, 1e-11) 0.0017 at 7.3 s against (1e-10, 1e-7)'s 0.0012,
        # λ = 0 overfits (0.17 at K1 = 64 without stages), and one stage at the finest grid
        # from the start is slow to leave its first steps (0.09-2 at 0.15 s).
        lm_runs = [([(9, 9), (17, 17), (33, 33), (65, 65), (129, 65)], (1e-10, 1e-7), seed)
                   for seed in (0, 1, 2)]
        lm_steps = 100
        # The earlier recipe, gradient steps on the layers' own parameters, for comparison:
        # Adam then L-BFGS (K, Adam steps, L-BFGS steps at most, update_knots first, Adam lr,
        # L-BFGS history, kinks trained), chosen on the same split: it stalls at 4e-3, where
        # K = 32 overfits and larger K trains too slowly in the hinge coefficients.
        configs, every = [(64, 300, 500, False, 3e-2, 50, True)], 25
    for stages, smooth, seed in lm_runs:
        run = run_relu_ext_lm(dataset, stages, smooth, seed=seed, budget=budget,
                              stage_steps=lm_steps)
        _progress(f"{run['label']}: test RMSE {run['trace'][-1][1]:.3g} after "
                  f"{run['trace'][-1][0]:.3g} s")
        out["relu_ext"].append(run)
    for units, adam_steps, lbfgs_steps, knots, lr, history, train_knots in configs:
        run = run_relu_ext(dataset, units, adam_steps, lbfgs_steps, knots, every, lr=lr,
                           history=history, budget=budget, train_knots=train_knots)
        _progress(f"{run['label']}: test RMSE {run['trace'][-1][1]:.3g} after {run['trace'][-1][0]:.3g} s")
        out["relu_ext"].append(run)
    return out


def at_time(trace, t):
    """The best test RMSE of a trace by time t (None: nothing by then)."""
    done = [rmse for seconds, rmse in trace if seconds <= t]
    return min(done) if done else None


# --------------------------------------------------------------------------- (b) digits

def digits_split(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float64)
    y = torch.tensor(data.target)
    train, test = train_test_split(range(len(y)), test_size=0.25, random_state=seed, stratify=data.target)
    # Standardised with the training set's mean and sd (constant pixels: sd taken as 1).
    mean, sd = x[train].mean(0), x[train].std(0)
    sd[sd == 0] = 1
    x = ((x - mean) / sd).float()
    return x[train], y[train], x[test], y[test]


def digits_model(kind, hidden, units):
    """mlp: 64-H-10 with Linear + ReLU; rsl_linear: ReLUSumLinear(64, H, K) in
    place of Linear + ReLU, then Linear (an additive model: no interaction
    between inputs); kan: ReLUSumLinear(64, H, K) → ReLUSumLinear(H, 10, K),
    every layer a KAN layer, as a KAN replaces an MLP."""
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    if kind == "rsl_linear":
        return nn.Sequential(relu_ext.ReLUSumLinear(64, hidden, units), nn.Linear(hidden, 10))
    return nn.Sequential(relu_ext.ReLUSumLinear(64, hidden, units),
                         relu_ext.ReLUSumLinear(hidden, 10, units))


def digits_run(kind, hidden, units, epochs, seed, batch=64, lr=1e-3):
    x, y, tx, ty = digits_split(seed)
    torch.manual_seed(seed)
    model = digits_model(kind, hidden, units)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    epoch_times = []
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        start = time.perf_counter()
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
        epoch_times.append(time.perf_counter() - start)
    with torch.no_grad():
        accuracy = (model(tx).argmax(1) == ty).float().mean().item()
    return {"accuracy": accuracy, "epoch_s": statistics.median(epoch_times),
            "parameters": sum(p.numel() for p in model.parameters())}


def digits_study(args):
    if optional("sklearn") is None:
        return {"skipped": "scikit-learn is not installed (the examples or sklearn extra)"}
    seeds = range(1 if args.quick else args.seeds)
    epochs = 2 if args.quick else args.epochs
    h = args.hidden
    models = {"mlp": (f"MLP 64-{h}-10 (Linear + ReLU, Linear)", 0)}
    for k in args.units:
        models[f"rsl_linear_k{k}"] = (f"ReLUSumLinear(64, {h}, K = {k}), Linear({h}, 10)", k)
    for k in args.units:
        models[f"kan_k{k}"] = (f"ReLUSumLinear(64, {h}, K = {k}) → ReLUSumLinear({h}, 10, K = {k})", k)
    runs = {key: [] for key in models}
    for seed in seeds:
        for key, (_, k) in models.items():  # interleaved: load falls on all alike
            run = digits_run(key.rsplit("_k", 1)[0], h, k, epochs, seed)
            runs[key].append({"seed": seed, **run})
            _progress(f"digits {key} seed {seed}: accuracy {run['accuracy']:.4f}, "
                      f"{_time(run['epoch_s'])} an epoch")
    return {"hidden": h, "units": list(args.units), "epochs": epochs, "batch": 64, "lr": 1e-3,
            "preprocessing": "standardised (training set mean, sd); stratified 75/25 split by seed",
            "labels": {key: label for key, (label, _) in models.items()}, "runs": runs}


# --------------------------------------------------------------------------- report

def _mean_sd(values):
    mean = statistics.mean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def _time(seconds):
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def report(doc):
    machine, fn = doc["machine"], doc["function"]
    lines = [
        "### (a) f(x, y) = exp(sin(πx) + y²), [2, 5, 1]: test RMSE against training time"
        + (" (--quick: checks the script, not a measurement)" if doc["settings"]["quick"] else ""),
        "",
        f"{machine['cpu_model']}, {machine['threads']} threads, torch {machine['torch']}, "
        f"load average {machine['load_average_at_start'][0]:.2f} at the start; commit "
        f"{doc['code']}; `{doc['command']}`. Dataset: {fn['dataset']} (the same tensors as "
        f"pykan's: {fn['same_as_pykan_create_dataset']}).",
        "",
        "| model | trainable parameters | final test RMSE | training time |",
        "|---|---|---|---|",
    ]
    runs = ([fn["pykan"]] if fn["pykan"] else []) + fn["relu_ext"]
    for run in runs:
        t, rmse = run["trace"][-1]
        lines.append(f"| {run['label']} | {run['parameters']} | {rmse:.3g} | {t:.3g} s |")
    for note in fn["notes"]:
        lines += ["", f"Note: {note}."]
    if fn["pykan"]:
        trace = fn["pykan"]["trace"]
        marks = sorted({i for i in (0, 4, 9, 19, 29, 49, 99, len(trace) - 1) if i < len(trace)})
        header = ["pykan step", "time", "pykan test RMSE"]
        for r in fn["relu_ext"]:
            if r.get("method") == "lm":
                header += [f"relu_ext LM to ({r['stages'][-1][0]}, {r['stages'][-1][1]}), "
                           f"seed {r['seed']}", "lower?"]
                continue
            name = f"relu_ext K = {r['units']}, Adam {r['adam_steps']} lr {r['lr']:g}" + (
                f", hist {r['history']}" if "history" in r else "") + (" (knots)" if r["update_knots"] else "") + (
                "" if r.get("train_knots", True) else ", kinks fixed")
            header += [name, "lower?"]
        lines += ["", "At equal time: each model's best test RMSE reached by pykan's checkpoints "
                  "(— : not started training by then); lower?: whether relu_ext's is below pykan's.",
                  "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i in marks:
            t, rmse = trace[i]
            best = at_time(trace, t)
            cells = [str(i + 1), f"{t:.3g} s", f"{best:.3g}"]
            for r in fn["relu_ext"]:
                value = at_time(r["trace"], t)
                cells += ["—", "no"] if value is None else [
                    f"{value:.3g}", "yes" if value < best else f"no ({value / best:.2g}×)"]
            lines.append("| " + " | ".join(cells) + " |")
    digits = doc["digits"]
    lines += ["", "### (b) digits: test accuracy and time per epoch", ""]
    if "skipped" in digits:
        lines.append(f"Skipped: {digits['skipped']}.")
    else:
        lines += [f"{len(next(iter(digits['runs'].values())))} seeds (split and initialisation), "
                  f"{digits.get('preprocessing', 'pixels scaled to [-1, 1]')}, "
                  f"{digits['epochs']} epochs of Adam (lr {digits['lr']:g}, batch {digits['batch']}); "
                  "time per epoch: the median epoch of each run, then the median over seeds.", "",
                  "| model | parameters | test accuracy (mean ± sd) | time per epoch | × MLP |",
                  "|---|---|---|---|---|"]
        mlp_time = statistics.median(r["epoch_s"] for r in digits["runs"]["mlp"])
        for kind, label in digits["labels"].items():
            rs = digits["runs"][kind]
            mean, sd = _mean_sd([r["accuracy"] for r in rs])
            t = statistics.median(r["epoch_s"] for r in rs)
            lines.append(f"| {label} | {rs[0]['parameters']:,} | {100 * mean:.2f}% ± {100 * sd:.2f} | "
                         f"{_time(t)} | {t / mlp_time:.3g}× |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps: checks the script")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: a [2, 5, 1] network on 1000 points gains nothing from more, and on a shared machine loses much)")
    parser.add_argument("--pykan-steps", type=int, default=50, help="pykan's fit steps (L-BFGS)")
    parser.add_argument("--seeds", type=int, default=5, help="digits: seeds")
    parser.add_argument("--epochs", type=int, default=60, help="digits: epochs")
    parser.add_argument("--hidden", type=int, default=64, help="digits: H")
    parser.add_argument("--units", type=int, nargs="+", default=[4, 8],
                        help="digits: the K of each ReLUSumLinear network")
    parser.add_argument("--json", type=Path, default=RESULTS / "kan_accuracy.json")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: the tables from --json")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        print(report(json.loads(args.json.read_text())))
        return
    if not hasattr(relu_ext, "ReLUSumLinear"):
        sys.exit("benchmarks/kan_accuracy.py: this relu_ext has no ReLUSumLinear (a tree before it)")
    if not args.quick and optional("kan") is None:
        sys.exit("benchmarks/kan_accuracy.py: pykan (`import kan`) is not installed; it is the "
                 f"anchor of this study: install {BENCH_EXTRA} (or use --quick, which skips it)")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    doc = {**run_header(threads=args.threads),
           "settings": {"quick": args.quick, "pykan_steps": args.pykan_steps, "dtype": "float32", "threads": args.threads}}
    doc["function"] = function_study(args)
    doc["digits"] = digits_study(args)
    save(args.json, doc)
    print(report(doc))
    _progress(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
