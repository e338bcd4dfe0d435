"""A study, not a benchmark: how often curve_summary's nominal 95% intervals hold the truth.

A fit's summary is only as good as its intervals' coverage, and a breakpoint's
Wald interval (estimate ± t·se, the delta method pwlf's standard errors and R
segmented's summary use) leans on a linearisation that fails where the kink is
small for the noise. This measures it. Two simulated truths on x ~ Uniform(0, 1),
fresh x and noise in every replication:

    two_segment     f(x) = 2·relu(x - 0.5): slopes 0, 2 (a slope change of 2 at 0.5)
    three_segment   breakpoints 1/3, 2/3, slopes 1, -1, 1 (slope changes -2, +2)

over N ∈ {50, 200, 1000, 5000} points and noise σ ∈ {0.1, 0.5, 2.0}, 500
replications per cell. A cell is fitted as one batch, ``fit_curve(x, y, K)``
with the true K, then ``curve_summary(model, x, y)`` (its defaults:
calibrate="auto", level 0.95) gives two sets of intervals: *ours*,
``conf_int()`` (profile-likelihood breakpoint intervals, bootstrap-calibrated
where "auto" says so, slopes likewise), and the baseline *Wald*,
``conf_int(method="wald")``. A third, the profile intervals at the F test's
limit alone (``calibrate="f"``), shows what the calibration adds. Breakpoints
and slopes are matched to the truth's in order; a fit with fewer breakpoints
inside the data than the truth misses the ones it lacks.

Identifiability of a cell: ξ = min |slope change| / σ · √N (x spans 1), the
issue's "kink / noise · √N"; the target is 92-98% coverage wherever ξ ≥ 20.
Each coverage comes with its Monte Carlo standard error √(p(1-p)/count), count
the intervals pooled (replications × breakpoints, or × segments).

A cell also runs pwlf (if installed): ``fitfast(2)`` and its
``standard_errors()``, both the default (breakpoints taken as known) and
``method="non-linear"`` (the delta method), on the same curves as ours.

    python benchmarks/studies/coverage.py --plot benchmarks/studies/results/coverage.png --plot docs/coverage.png
    python benchmarks/studies/coverage.py --quick       # few cells and replications: seconds

The full run takes 10-20 minutes on 2 cores. Prints the table and verdict;
writes benchmarks/studies/results/coverage.json and the plot
(benchmarks/studies/results/coverage.png, or each --plot). Every cell's data
come from a seed of its own (the cell's name), so a run is reproducible and a
cell's figures do not depend on the grid.
"""

import argparse
import json
import math
import os
import sys
import time
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import relu_ext  # noqa: E402
from common import add_output_options, optional, run_header, save  # noqa: E402

STUDIES = Path(__file__).resolve().parent
RESULTS = STUDIES / "results"
LEVEL = 0.95
TARGET = (0.92, 0.98)   # the band for nominal 95% intervals,
TARGET_XI = 20          # wherever ξ is at least this
GRID = {"ns": (50, 200, 1000, 5000), "sigmas": (0.1, 0.5, 2.0), "reps": 500}
QUICK_GRID = {"ns": (200,), "sigmas": (0.1, 2.0), "reps": 10}
PWLF_CELL = ("two_segment", 200, 0.5)   # ξ ≈ 57: where the target applies


class Truth(NamedTuple):
    """A continuous piecewise-linear f with f(0) = 0."""

    breakpoints: tuple
    slopes: tuple

    @property
    def changes(self):
        return [after - before for before, after in zip(self.slopes, self.slopes[1:])]

    def __call__(self, x):
        return self.slopes[0] * x + sum(c * torch.relu(x - t)
                                        for c, t in zip(self.changes, self.breakpoints))

    def xi(self, n, sigma):
        """ξ = min |slope change| / σ · √N (x spans 1)."""
        return min(map(abs, self.changes)) / sigma * math.sqrt(n)


TRUTHS = {"two_segment": Truth((0.5,), (0.0, 2.0)),
          "three_segment": Truth((1 / 3, 2 / 3), (1.0, -1.0, 1.0))}


def simulate(truth, n, sigma, reps):
    """(reps, n) float64 x ~ U(0, 1) and y = f(x) + σ·ε, from the cell's own seed."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{truth} {n} {sigma}".encode()))
    x = torch.rand(reps, n, generator=g, dtype=torch.float64)
    return x, TRUTHS[truth](x) + sigma * torch.randn(reps, n, generator=g, dtype=torch.float64)


# --------------------------------------------------------------------------- one cell

def matched(values, width):
    """The first ``width`` columns of (reps, w) ``values``, NaN-padded: a fit
    with fewer breakpoints than the truth lacks the last ones (NaN never holds)."""
    values = values[:, :width]
    missing = width - values.shape[1]
    return torch.nn.functional.pad(values, (0, missing), value=math.nan) if missing else values


def holds(bounds, true_values):
    """(reps, len(true_values)) bool: each interval holds its true value."""
    low, high = (matched(b, len(true_values)) for b in bounds)
    true_values = torch.tensor(true_values, dtype=torch.float64)
    return (low <= true_values) & (true_values <= high)


def coverage(held):
    """The fraction held, pooled, with its count and Monte Carlo standard error."""
    p, count = held.double().mean().item(), held.numel()
    return {"coverage": p, "count": count, "mc_se": math.sqrt(p * (1 - p) / count)}


def median_width_ratio(ours, wald, width):
    """Median over the intervals where both are finite of ours' width / Wald's."""
    ratio = (matched(ours[1] - ours[0], width) / matched(wald[1] - wald[0], width)).flatten()
    ratio = ratio[ratio.isfinite()]
    return ratio.median().item() if ratio.numel() else None


def measure_cell(truth_name, n, sigma, reps):
    """Fit a cell's replications as one batch and measure both intervals' coverage."""
    truth = TRUTHS[truth_name]
    x, y = simulate(truth_name, n, sigma, reps)
    start = time.perf_counter()
    model, _ = relu_ext.fit_curve(x, y, len(truth.slopes))
    fitted = time.perf_counter()
    summary = relu_ext.curve_summary(model, x, y, level=LEVEL)
    intervals = {"wald": summary.conf_int(method="wald"), "ours": summary.conf_int()}
    bootstrapped = summary.bootstrapped.double().mean().item()
    done = time.perf_counter()
    intervals["f_test"] = relu_ext.curve_summary(model, x, y, level=LEVEL,
                                                 calibrate="f").conf_int()

    # A fit with a segment too short to fix its line (two breakpoints in one
    # bend: a spike) has a singular JᵀWJ, NaN standard errors and NaN
    # intervals, counted as misses.
    singular = (summary.se_slopes.isnan() & summary.slopes.isfinite()).any(1)
    cell = {"truth": truth_name, "n": n, "sigma": sigma, "reps": reps, "xi": truth.xi(n, sigma),
            "bootstrapped": bootstrapped,
            "lost_breakpoint": (summary.breakpoints.isfinite().sum(1)
                                < len(truth.breakpoints)).double().mean().item(),
            "singular": singular.double().mean().item(),
            "fit_seconds": fitted - start, "summary_seconds": done - fitted}
    for method, found in intervals.items():
        at_breakpoints = holds(found["breakpoints"], truth.breakpoints)
        at_slopes = holds(found["slopes"], truth.slopes)
        cell[method] = {"breakpoints": coverage(at_breakpoints), "slopes": coverage(at_slopes),
                        "per_breakpoint": [h.double().mean().item() for h in at_breakpoints.T],
                        "per_slope": [h.double().mean().item() for h in at_slopes.T]}
        if method == "ours":
            cell["ours_regular"] = {"breakpoints": coverage(at_breakpoints[~singular]),
                                    "slopes": coverage(at_slopes[~singular])}
    cell["width_ratio"] = {
        name: median_width_ratio(intervals["ours"][name], intervals["wald"][name], len(true_values))
        for name, true_values in (("breakpoints", truth.breakpoints), ("slopes", truth.slopes))}
    return cell


def in_target(p):
    return TARGET[0] <= p <= TARGET[1]


# --------------------------------------------------------------------------- pwlf

def pwlf_cell(truth_name, n, sigma, reps, pwlf, t_quantile):
    """pwlf's ``fitfast(2)`` and intervals β ± t·se on the curves of one
    two-segment cell: its default ``standard_errors()`` (the breakpoint taken
    as known) for β1 (the first slope) and β2 (the slope change), and
    ``method="non-linear"`` (the delta method) for those and the breakpoint."""
    truth = TRUTHS[truth_name]
    assert len(truth.breakpoints) == 1, "pwlf's β are (intercept, first slope, slope change)"
    x, y = (t.numpy() for t in simulate(truth_name, n, sigma, reps))
    true_values = np.array([truth.slopes[0], *truth.changes, *truth.breakpoints])
    held = {"linear": [], "non-linear": []}
    np.random.seed(0)  # pwlf's starts come from numpy's global generator
    start = time.perf_counter()
    for xs, ys in zip(x, y):
        fit = pwlf.PiecewiseLinFit(xs, ys)
        fit.fitfast(2)
        estimates = np.concatenate([fit.beta[1:], fit.fit_breaks[1:-1]])
        for method, size in (("linear", 2), ("non-linear", 3)):
            se = fit.standard_errors(method=method)[1:]   # drop the intercept's
            q = t_quantile((1 + LEVEL) / 2, n - len(se) - 1)
            held[method].append(np.abs(estimates[:size] - true_values[:size]) <= q * se)
    seconds = time.perf_counter() - start
    names = ("first_slope", "slope_change", "breakpoint")
    return {"truth": truth_name, "n": n, "sigma": sigma, "reps": reps, "seconds": seconds,
            **{method: {name: float(np.mean(column)) for name, column in zip(names, np.array(h).T)}
               for method, h in held.items()}}


def pwlf_side(args, cells):
    """pwlf's figures for PWLF_CELL (or the quick grid's first cell), with
    ours on the same curves, or why there are none."""
    pwlf, stats = optional("pwlf"), optional("scipy.stats")
    if pwlf is None or stats is None:
        return {"skipped": "pwlf or scipy not installed"}
    truth, n, sigma = PWLF_CELL if not args.quick else ("two_segment", args.ns[0], args.sigmas[0])
    theirs = pwlf_cell(truth, n, sigma, args.reps, pwlf, stats.t.ppf)
    ours = next(c for c in cells if (c["truth"], c["n"], c["sigma"]) == (truth, n, sigma))
    return {**theirs, "relu_ext": ours}


# --------------------------------------------------------------------------- report

def percent(p):
    return "–" if p is None else f"{100 * p:.1f}"


def with_se(figure):
    return f"{percent(figure['coverage'])} ± {100 * figure['mc_se']:.1f}"


def verdict(cells):
    """The target, stated per cell: which cells with ξ ≥ 20 meet it with ours, which do not."""
    judged = [c for c in cells if c["xi"] >= TARGET_XI]
    if not judged:
        return [f"No cell here has ξ ≥ {TARGET_XI}: the target is not judged."]
    misses = [c for c in judged if not (in_target(c["ours"]["breakpoints"]["coverage"])
                                        and in_target(c["ours"]["slopes"]["coverage"]))]
    wald_met = sum(in_target(c["wald"]["breakpoints"]["coverage"])
                   and in_target(c["wald"]["slopes"]["coverage"]) for c in judged)
    f_test = [c["f_test"]["breakpoints"]["coverage"] for c in judged]
    band = f"{100 * TARGET[0]:.0f}–{100 * TARGET[1]:.0f}%"
    words = [f"**Target: {band} coverage wherever ξ ≥ {TARGET_XI}** (breakpoints and slopes, "
             f"pooled). Ours meets it in {len(judged) - len(misses)} of the {len(judged)} cells "
             f"with ξ ≥ {TARGET_XI}" + ("." if not misses else "; it misses in " + "; ".join(
                 f"{name(c)} (breakpoints {percent(c['ours']['breakpoints']['coverage'])}%, "
                 f"slopes {percent(c['ours']['slopes']['coverage'])}%)" for c in misses) + "."),
             f"Wald meets it in {wald_met} of the {len(judged)}; the F test's profile intervals "
             f"alone cover the breakpoints {percent(min(f_test))}–{percent(max(f_test))}% there."]
    single = [f"{name(c)} breakpoint {k + 1} {percent(p)}%" for c in judged
              for k, p in enumerate(c["ours"]["per_breakpoint"]) if not in_target(p)]
    if single:
        words.append("Single breakpoints outside the band (ours, ξ ≥ 20): " + "; ".join(single)
                     + ".")
    below = [c for c in cells if c["xi"] < TARGET_XI]
    if below:
        words.append(f"Below ξ = {TARGET_XI} (no target): ours' breakpoints "
                     + ", ".join(f"{percent(c['ours']['breakpoints']['coverage'])}%"
                                 for c in below)
                     + ", Wald's " + ", ".join(f"{percent(c['wald']['breakpoints']['coverage'])}%"
                                               for c in below)
                     + f" ({', '.join(name(c) for c in below)}).")
    singular = [c for c in misses if c["singular"] > 0]
    if singular:
        words.append("Of those misses' fits, some have a segment too short to fix its line (two "
                     "breakpoints in one bend): their JᵀWJ is singular, and their standard errors "
                     "and intervals are NaN, counted as misses. Their share, and ours' coverage "
                     "over the other fits (breakpoints, slopes): " + "; ".join(
                         f"{name(c)} {percent(c['singular'])}%: "
                         f"{percent(c['ours_regular']['breakpoints']['coverage'])}%, "
                         f"{percent(c['ours_regular']['slopes']['coverage'])}%"
                         for c in singular) + ".")
    lost = [c for c in cells if c["lost_breakpoint"] > 0]
    if lost:
        words.append("Fits that lost a breakpoint (fewer inside the data than the truth; "
                     "counted as misses): " + "; ".join(
                         f"{name(c)} {percent(c['lost_breakpoint'])}%" for c in lost) + ".")
    return words


def name(cell):
    return f"{cell['truth'].replace('_', '-')} N = {cell['n']}, σ = {cell['sigma']:g}"


def cells_table(cells):
    lines = ["| truth | N | σ | ξ | breakpoints Wald, % | breakpoints F test, % | breakpoints "
             "ours, % | ours per breakpoint, % | slopes Wald, % | slopes ours, % | bootstrapped | "
             "singular JᵀWJ | width ours/Wald (breakpoints, slopes) | time (fit + summary) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        mark = "" if c["xi"] < TARGET_XI else (
            " ✓" if in_target(c["ours"]["breakpoints"]["coverage"])
            and in_target(c["ours"]["slopes"]["coverage"]) else " **✗**")
        widths = ", ".join("–" if w is None else f"{w:.2f}" for w in c["width_ratio"].values())
        lines.append(
            f"| {c['truth'].replace('_', '-')} | {c['n']} | {c['sigma']:g} | {c['xi']:.3g}{mark} "
            f"| {with_se(c['wald']['breakpoints'])} | {with_se(c['f_test']['breakpoints'])} | "
            f"{with_se(c['ours']['breakpoints'])} | "
            f"{', '.join(percent(p) for p in c['ours']['per_breakpoint'])} | "
            f"{with_se(c['wald']['slopes'])} | {with_se(c['ours']['slopes'])} | "
            f"{percent(c['bootstrapped'])}% | {percent(c['singular'])}% | {widths} | "
            f"{c['fit_seconds']:.2g} + {c['summary_seconds']:.3g} s |")
    return "\n".join(lines)


def pwlf_table(part):
    if "skipped" in part:
        return [f"pwlf: {part['skipped']}."]
    ours = part["relu_ext"]
    linear, delta = part["linear"], part["non-linear"]
    return [
        f"pwlf on the same {part['reps']} curves of the cell {name(part)} (`fitfast(2)`, "
        f"{part['seconds']:.3g} s in all; β ± t·se at 95%, t on n - p degrees of freedom as pwlf's "
        "variance): its default `standard_errors()` treat the fitted breakpoint as known; "
        "`method=\"non-linear\"` is the delta method, our Wald.",
        "",
        "| intervals | first slope, % | slope change, % | breakpoint, % |",
        "|---|---|---|---|",
        f"| pwlf `standard_errors()` (breakpoint known) | {percent(linear['first_slope'])} | "
        f"{percent(linear['slope_change'])} | – |",
        f"| pwlf `standard_errors(method=\"non-linear\")` | {percent(delta['first_slope'])} | "
        f"{percent(delta['slope_change'])} | {percent(delta['breakpoint'])} |",
        f"| relu_ext Wald (`conf_int(method=\"wald\")`) | {percent(ours['wald']['per_slope'][0])} "
        f"| – | {percent(ours['wald']['per_breakpoint'][0])} |",
        f"| relu_ext ours (`conf_int()`) | {percent(ours['ours']['per_slope'][0])} | – | "
        f"{percent(ours['ours']['per_breakpoint'][0])} |",
    ]


def markdown(doc, plot_link):
    m = doc["machine"]
    build = m["relu_ext"]
    body = [
        "## Coverage: how often curve_summary's 95% intervals hold the truth",
        "",
        f"`{doc['command']}` on {m['cpu_model']} ({m['logical_cpus']} logical CPUs, "
        f"{build['cpu_isa']} kernels), {m['threads']} threads, torch {m['torch']}, relu_ext "
        f"{build['version']} at commit {doc['code']}, load average "
        f"{m['load_average_at_start'][0]:.2f} at the start ({m['date_utc']}); "
        f"{doc['seconds'] / 60:.1f} minutes in all."
        + (" **Quick run: few replications, figures not representative.**" if doc["quick"]
           else ""),
        "",
        "x ~ Uniform(0, 1) and noise N(0, σ²), fresh in each of the "
        f"{doc['reps']} replications of a cell (seeded per cell). two-segment: f(x) = "
        "2·relu(x − 0.5); three-segment: breakpoints 1/3 and 2/3, slopes 1, −1, 1. Each cell is "
        "one batch: `fit_curve(x, y, K)` with the true K, then `curve_summary(model, x, y)` "
        "(calibrate=\"auto\", level 0.95). *Wald*: `conf_int(method=\"wald\")`, estimate ± t·se "
        "from the Jacobian (the delta method). *F test*: the profile-likelihood intervals at the "
        "F(1, dof) test's limit alone (`calibrate=\"f\"`; their slopes are Wald's). *Ours*: "
        "`conf_int()`, the profile-likelihood breakpoint intervals, bootstrap-calibrated for "
        "the curves *bootstrapped* (the share calibrate=\"auto\" chose), the slopes' from the "
        "bootstrap-t there and Wald's elsewhere. *singular JᵀWJ*: the share of fits whose "
        "standard errors are NaN (a segment too short to fix its line). "
        "ξ = min |slope change| / σ · √N. Coverage in percent, pooled over the breakpoints (or "
        "segments) of all curves, ± its Monte Carlo standard error √(p(1 − p)/count) (pooled "
        "intervals of one curve are not independent, so read it as approximate); ✓ / **✗**: ours "
        f"inside / outside {100 * TARGET[0]:.0f}–{100 * TARGET[1]:.0f}% for both (cells with "
        f"ξ ≥ {TARGET_XI}). *width*: median of ours' interval width / Wald's. *time*: the "
        "cell's batch, wall clock.",
        "",
        cells_table(doc["cells"]),
        "",
        " ".join(verdict(doc["cells"])),
        "",
        *pwlf_table(doc["pwlf"]),
        "",
        f"![Coverage against ξ, Wald and ours, breakpoints and slopes]({plot_link})",
    ]
    return "\n".join(body)


def plot(doc, paths):
    """Coverage against ξ, Wald and ours, a panel for breakpoints and one for
    slopes; the target band shaded and ξ = 20 marked. The four series share
    their ξ, so each is nudged sideways a little to keep them apart."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    series = [(method, truth, nudge) for nudge, (method, truth) in zip(
        (0.92, 0.96, 1.04, 1.08),
        [(m, t) for m in ("wald", "ours") for t in TRUTHS])]
    colours = {"wald": "tab:orange", "ours": "tab:blue"}
    labels = {"wald": "Wald (delta method)", "ours": "ours (profile, calibrated)"}
    xis = [c["xi"] for c in doc["cells"]]
    for axis, field in zip(axes, ("breakpoints", "slopes")):
        axis.axhspan(*TARGET, color="tab:green", alpha=0.15, label="target 92–98%")
        axis.axhline(LEVEL, color="grey", lw=0.8, ls=":")
        axis.axvline(TARGET_XI, color="grey", lw=1, ls="--", label=f"ξ = {TARGET_XI}")
        for method, truth, nudge in series:
            cells = sorted((c for c in doc["cells"] if c["truth"] == truth), key=lambda c: c["xi"])
            figures = [c[method][field] for c in cells]
            colour = colours[method]
            axis.errorbar([nudge * c["xi"] for c in cells], [f["coverage"] for f in figures],
                          yerr=[1.96 * f["mc_se"] for f in figures],
                          fmt="o" if truth == "two_segment" else "s", color=colour,
                          mfc=colour if truth == "two_segment" else "white", capsize=2,
                          label=f"{labels[method]}, {truth.replace('_', '-')}")
        axis.set_xscale("log")
        axis.set_xlim(min(xis) / 1.4, max(xis) * 1.4)
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("ξ = min |slope change| / σ · √N")
        axis.set_title(f"{field}: coverage of nominal 95% intervals (± 1.96 MC s.e.)",
                       fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("coverage")
    axes[0].set_ylim(top=1.01)
    axes[1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    plt.close(figure)


# --------------------------------------------------------------------------- main

def run(args):
    """Every cell, in order (progress on stderr), and pwlf's cell."""
    cells = []
    for truth in TRUTHS:
        for n in args.ns:
            for sigma in args.sigmas:
                cell = measure_cell(truth, n, sigma, args.reps)
                cells.append(cell)
                print(f"{name(cell)}: ξ = {cell['xi']:.3g}, breakpoints Wald "
                      f"{percent(cell['wald']['breakpoints']['coverage'])}% ours "
                      f"{percent(cell['ours']['breakpoints']['coverage'])}%, slopes Wald "
                      f"{percent(cell['wald']['slopes']['coverage'])}% ours "
                      f"{percent(cell['ours']['slopes']['coverage'])}%, bootstrapped "
                      f"{percent(cell['bootstrapped'])}%, "
                      f"{cell['fit_seconds'] + cell['summary_seconds']:.3g} s",
                      file=sys.stderr, flush=True)
    return cells


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, help="replications per cell (500; 10 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="N = 200, σ 0.1 and 2, 10 replications: seconds, for tests")
    parser.add_argument("--plot", type=Path, action="append",
                        help="where the plot goes; repeat for several (default "
                             "benchmarks/studies/results/coverage.png)")
    add_output_options(parser, RESULTS / "coverage.json")
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else GRID
    args.ns, args.sigmas = grid["ns"], grid["sigmas"]
    args.reps = grid["reps"] if args.reps is None else args.reps
    if args.reps < 2:
        parser.error(f"--reps must be at least 2, got {args.reps}")
    plots = args.plot or [RESULTS / "coverage.png"]

    if args.report_only:
        doc = json.loads(args.json.read_text())
    else:
        torch.set_num_threads(args.threads)
        doc = {**run_header(), "quick": args.quick, "reps": args.reps}
        start = time.perf_counter()
        doc["cells"] = run(args)
        doc["pwlf"] = pwlf_side(args, doc["cells"])
        doc["seconds"] = time.perf_counter() - start
        save(args.json, doc)
    plot(doc, plots)
    # The link as benchmarks/studies/RESULTS.md, which quotes this output, has it.
    print(markdown(doc, Path(os.path.relpath(Path(plots[0]).resolve(), STUDIES)).as_posix()))


if __name__ == "__main__":
    main()
