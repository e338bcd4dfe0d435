"""How accurate: relu_ext.fit_curve against pwlf (fitfast), error and time side by side.

Targets of several kinds (smooth, kinked, steep, oscillating, exponential
growth, noisy) sampled at 2000 evenly spaced points on [-2, 2], fitted with K
units (relu_ext) and K segments (pwlf): the same family of functions, a
continuous piecewise-linear one with K - 1 breakpoints. Both minimise the
squared error, so the error compared is the root mean squared error (RMSE);
the mean absolute error is shown too.

A case passes when relu_ext's RMSE is at most max(1.25 × pwlf's, pwlf's +
5e-4 × the target's range) and its time at most a fifth of pwlf's. Each pwlf
fit runs in a child process with a time cap (--pwlf-cap); a capped case has no
pwlf figure. --large adds N = 2^20 points, K = 256 units (pwlf capped at 10
minutes).

    python benchmarks/accuracy.py                  # needs the bench extra (pwlf)
    python benchmarks/accuracy.py --report-only    # the table and plot from the JSON

Prints the table; writes benchmarks/results/accuracy.json (after every case,
so a long run that is cut keeps what it measured) and the plot
benchmarks/results/accuracy_vs_k.png.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from common import RESULTS, optional, run_child, run_header  # noqa: E402
from relu_ext.data import add_noise  # noqa: E402


def _kinked(x):
    return (x - 0.3).abs() - 0.6 * torch.relu(x + 1.2) + 0.8 * torch.relu(x - 1.1)


def _noisy(x):
    # The lesson's noise on its quadratic (mult 0.15, add 1.5), seeded.
    return add_noise(3 * x**2 + 2 * x + 1, 0.15, 1.5, torch.Generator().manual_seed(0))


TARGETS = {
    "smooth": ("3x² + 2x + 1", lambda x: 3 * x**2 + 2 * x + 1),
    "kinked": ("|x - 0.3| - 0.6·relu(x + 1.2) + 0.8·relu(x - 1.1)", _kinked),
    "steep": ("tanh(8x)", lambda x: torch.tanh(8 * x)),
    "oscillating": ("sin(3x)", lambda x: torch.sin(3 * x)),
    "exponential": ("exp(x)", torch.exp),
    "noisy": ("3x² + 2x + 1 with the lesson's noise", _noisy),
}


def run_relu_ext(x, y, k):
    start = time.perf_counter()
    model, _ = relu_ext.fit_curve(x, y, k)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        error = (model(x) - y).double()
    breakpoints = model.to_piecewise().breakpoints.double()
    return {"seconds": seconds, "rmse": error.pow(2).mean().sqrt().item(),
            "mae": error.abs().mean().item(), "breakpoints": breakpoints.tolist()}


def _pwlf_child(x, y, k, queue):
    import numpy as np
    import pwlf

    np.random.seed(0)  # pwlf's starts come from numpy's global generator
    start = time.perf_counter()
    model = pwlf.PiecewiseLinFit(x, y)
    model.fitfast(k)
    seconds = time.perf_counter() - start
    error = model.predict(x) - y
    queue.put({"seconds": seconds, "rmse": float(np.sqrt(np.mean(error**2))),
               "mae": float(np.mean(np.abs(error)))})


def pwlf_with_breaks(x, y, breakpoints):
    """pwlf's own least squares at relu_ext's breakpoints: an independent check
    of the error relu_ext reports."""
    import numpy as np
    import pwlf

    xs, ys = x.double().numpy(), y.double().numpy()
    model = pwlf.PiecewiseLinFit(xs, ys)
    model.fit_with_breaks([xs.min(), *breakpoints, xs.max()])
    return float(np.sqrt(np.mean((model.predict(xs) - ys) ** 2)))


def verdict(ours, theirs, value_range):
    """(accurate, fast); None where pwlf gave no figure. A capped pwlf took
    longer than the cap, so a fit within a fifth of the cap is fast."""
    if "capped" in theirs:
        return None, ours["seconds"] <= theirs["capped"] / 5
    if "rmse" not in theirs:
        return None, None
    allowed = max(1.25 * theirs["rmse"], theirs["rmse"] + 5e-4 * value_range)
    return ours["rmse"] <= allowed, ours["seconds"] <= theirs["seconds"] / 5


def measure(names, ks, points, cap, out):
    results = json.loads(out.read_text()) if out.exists() else {}
    cases = results.setdefault("cases", [])
    done = {(c["target"], c["units"], c["points"]) for c in cases}
    # K in the outer loop: a run cut short has every target at the smaller K.
    for k in ks:
        for name in names:
            x = torch.linspace(-2, 2, points)
            y = TARGETS[name][1](x)
            if (name, k, points) in done:
                continue
            ours = run_relu_ext(x, y, k)
            theirs = run_child(_pwlf_child, (x.double().numpy(), y.double().numpy(), k), cap)
            breakpoints = ours.pop("breakpoints")
            # (pwlf's least squares builds the N×K matrix: 2 GiB at the large size)
            check = pwlf_with_breaks(x, y, breakpoints) if points <= 100_000 else None
            value_range = (y.max() - y.min()).item()
            accurate, fast = verdict(ours, theirs, value_range)
            case = {"target": name, "units": k, "points": points, "range": value_range,
                    "relu_ext": ours, "pwlf": theirs, "pwlf_rmse_at_our_breaks": check,
                    "accurate": accurate, "fast": fast}
            cases.append(case)
            print(json.dumps(case), flush=True)
            results.update(run_header())
            out.write_text(json.dumps(results, indent=1))
    return results


def _fmt_time(entry):
    if "seconds" in entry:
        return f"{entry['seconds']:.3g} s"
    if "capped" in entry:
        return f"> {entry['capped']:.0f} s (stopped)"
    return "failed"


def table(results):
    lines = ["| target | K | N | RMSE relu_ext | RMSE pwlf | ratio | MAE relu_ext | MAE pwlf | "
             "time relu_ext | time pwlf | pwlf time / ours | accurate | ≤ 1/5 time |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in results["cases"]:
        ours, theirs = c["relu_ext"], c["pwlf"]
        has = "rmse" in theirs
        ratio = f"{ours['rmse'] / theirs['rmse']:.3f}" if has and theirs["rmse"] > 0 else "–"
        speed = f"{theirs['seconds'] / ours['seconds']:.1f}×" if has else "–"
        mark = {True: "yes", False: "**no**", None: "–"}
        lines.append(
            f"| {c['target']} | {c['units']} | {c['points']} | {ours['rmse']:.4g} | "
            f"{theirs['rmse']:.4g} | {ratio} | {ours['mae']:.4g} | {theirs['mae']:.4g} | "
            if has else
            f"| {c['target']} | {c['units']} | {c['points']} | {ours['rmse']:.4g} | – | – | "
            f"{ours['mae']:.4g} | – | ")
        lines[-1] += (f"{_fmt_time(ours)} | {_fmt_time(theirs)} | {speed} | "
                      f"{mark[c['accurate']]} | {mark[c['fast']]} |")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    small = [c for c in results["cases"] if c["points"] == 2000]
    names = list(dict.fromkeys(c["target"] for c in small))
    if not names:
        return
    fig, axes = plt.subplots(2, math.ceil(len(names) / 2), figsize=(12, 6.5), squeeze=False)
    for ax, name in zip(axes.flat, names):
        rows = sorted((c for c in small if c["target"] == name), key=lambda c: c["units"])
        ks = [c["units"] for c in rows]
        ax.loglog(ks, [c["relu_ext"]["rmse"] for c in rows], "o-", label="relu_ext.fit_curve")
        theirs = [(c["units"], c["pwlf"]["rmse"]) for c in rows if "rmse" in c["pwlf"]]
        if theirs:
            ax.loglog(*zip(*theirs), "s--", label="pwlf fitfast")
        ax.set_title(f"{name}: {TARGETS[name][0]}", fontsize=9)
        ax.set_xlabel("K (units = segments)")
        ax.set_ylabel("RMSE")
    axes.flat[0].legend()
    fig.suptitle("Error against K, 2000 points on [-2, 2]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--pwlf-cap", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--large", action="store_true", help="also N = 2^20, K = 256")
    parser.add_argument("--only-large", action="store_true", help="only N = 2^20, K = 256")
    parser.add_argument("--json", type=Path, default=RESULTS / "accuracy.json",
                        help="results so far; cases already in it are not measured again")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: the table and plot from --json")
    args = parser.parse_args(argv)
    if not args.report_only and optional("pwlf") is None:
        parser.error("pwlf is not installed: pip install '.[bench]' (or --report-only)")

    torch.set_num_threads(2)
    # A first fit pays one-off costs (lazy imports, first kernel calls): not timed.
    relu_ext.fit_curve(torch.linspace(-2, 2, 200), torch.linspace(-2, 2, 200).sin(), 5)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.report_only:
        results = json.loads(args.json.read_text())
    elif not args.only_large:
        results = measure(args.targets, args.ks, 2000, args.pwlf_cap, args.json)
    if (args.large or args.only_large) and not args.report_only:
        results = measure(["oscillating"], [256], 2**20, 600.0, args.json)
    for c in results.get("cases", []):  # judged again: the rule may be newer than the figures
        c["accurate"], c["fast"] = verdict(c["relu_ext"], c["pwlf"], c["range"])
    print(table(results))
    cases = results.get("cases", [])
    judged = [c for c in cases if c["accurate"] is not None]
    timed = [c for c in cases if c["fast"] is not None]
    print(f"\nAccurate on {sum(bool(c['accurate']) for c in judged)} of {len(judged)} cases "
          f"where pwlf finished; at most a fifth of pwlf's time (or of its cap, where it was "
          f"stopped) on {sum(bool(c['fast']) for c in timed)} of {len(timed)}.")
    plot(results, RESULTS / "accuracy_vs_k.png")


if __name__ == "__main__":
    main()
