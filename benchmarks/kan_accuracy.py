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
    - relu_ext: ReLUSumLinear(2, 5, K) then ReLUSumLinear(5, 1, K), full-batch
      MSE, float32, Adam then L-BFGS (strong Wolfe, 20 iterations a step),
      L-BFGS stopped at 1.2× pykan's training time; test RMSE and wall time
      at checkpoints (the clock stopped while the test set is evaluated).
      pykan runs first, then each relu_ext recipe; 1 thread by default.
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
pykan's and each relu_ext configuration's trace of [seconds, test RMSE]),
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
        configs = [(8, 20, 2, False, 3e-2, 10, True)]
        every = 5
    else:
        # (K, Adam steps, L-BFGS steps at most, update_knots first, Adam lr, L-BFGS history)
        # Chosen on a validation split (trained on the first 800 training points, RMSE on the
        # other 200; the test set untouched), 1 thread, 2026-12-07 with the compiled kernels
        # (a step ~1.2-1.5 ms at K = 16-256 when the machine is quiet). Validation RMSE at
        # pykan's times 0.12 / 0.54 / 1.07 / 2.29 / 3.38 / 5.6 s:
        #   K = 32, Adam 100 lr 3e-2, L-BFGS hist 10:  0.16 / 0.019 / 0.011 / 0.010 / 0.010 / 0.0093
        #   K = 32, Adam 300 lr 3e-2, L-BFGS hist 50:  0.16 / 0.027 / 0.013 / 0.011 / 0.0099 / 0.0078
        #   K = 32, Adam 300 lr 1e-2 (the old recipe): 0.25 / 0.054 / 0.026 / 0.017 / 0.013 / 0.013
        #   K = 32, Adam 300 lr 3e-2, update_knots:    0.18 / 0.038 / 0.023 / 0.017 / 0.015 / 0.014
        #   K = 32, Adam 300 lr 1e-1:                  0.84 / 0.25 / 0.089 / 0.054 / 0.044 / 0.040
        #   K = 16, Adam 100 lr 3e-2:                  0.15 / 0.031 / 0.019 / 0.015 / 0.015 / 0.015
        #   K = 48, Adam 300 lr 3e-2:                  0.25 / 0.060 / 0.031 / 0.014 / 0.014 / 0.014
        #   K = 64, Adam 100 lr 1e-2:                  0.17 / 0.053 / 0.029 / 0.013 / 0.0088 / 0.0088
        # Also tried and worse (0.013-0.24 at 5.6 s): Adam alone (K = 32-128, 4000 steps),
        # update_knots on the hidden layer every 20 Adam steps, a least-squares solve for the
        # last layer's a and bias every 10 Adam steps, and variable projection (that solve
        # inside every L-BFGS evaluation, L-BFGS on the first layer only) at K = 16-128: it
        # starts best (0.04-0.07 at 0.12 s for K = 16-32) but stalls at 0.013-0.018, and
        # at K >= 64 at 0.15-0.24. 2 threads were 3-10x slower than 1 while other
        # processes ran: the default here is 1 thread, for pykan and relu_ext alike.
        # Training RMSE was 1.6-3e-3 where validation was 5-8e-3: at K = 32 (934 parameters for
        # 800 points) it overfits. Then, Adam 300 lr 3e-2 and L-BFGS hist 50:
        #   K = 32, kinks fixed (only a, bias trained): 0.18 / 0.036 / 0.014 / 0.0069 / 0.0054 / 0.0051
        #   the same, seeds 1, 2 at 1.07 / 5.6 s: 0.021 / 0.0077, 0.025 / 0.0068
        #   K = 32, all trained, seeds 1, 2:             0.028 / 0.0078, 0.014 / 0.0072
        #   K = 64, all trained, seeds 0, 1, 2 at 5.6 s: 0.0061, 0.011, 0.0097; float64 (K = 32) no better
        #   K = 24 / 48 kinks fixed: 0.010 / 0.0087; Adam 100 or hist 10 (kinks fixed): 0.019 / 0.0099
        #   update_knots on the hidden layer when L-BFGS starts, or every 5 steps to step 50: 0.0088, 0.012
        # Kept: K = 32 all trained (the most even over seeds), K = 32 kinks fixed, K = 64.
        configs = [(32, 300, 500, False, 3e-2, 50, True), (32, 300, 500, False, 3e-2, 50, False),
                   (64, 300, 500, False, 3e-2, 50, True)]
        every = 25
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
