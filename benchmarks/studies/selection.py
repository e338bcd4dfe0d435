"""A study, not a benchmark: how long choosing K and summarising a fit take (the
speed figures of the issue "What a curve fit says about itself"), every ratio
taken within one run.

selection
    ``fit_curve(x, y, "auto", max_units=20)`` (select="bic", then "cv")
    against one ``fit_curve(x, y, 20)`` on the same N = 2,000 points; target:
    BIC's ratio < 10×. Data: a smooth curve, a three-segment truth and a
    straight line, each plus noise.
summary
    ``str(curve_summary(model, x, y))`` of a K = 20 fit on N = 2,000 points;
    target < 0.1 s with the default calibrate="auto". A twenty-segment truth
    and the smooth curve; calibrate="f" and "bootstrap" are timed on the same
    fits, so that the bootstrap's cost shows.
pwlf
    For context: pwlf has no automatic number of segments; its ``fit(20)``
    (differential evolution) on the smooth curve and the twenty-segment truth,
    in a child process with a time cap, against one ``fit_curve(x, y, 20)``.

Each time is the median of --runs calls (after one untimed call); the calls
compared with each other are made in turn, run after run, so that a spell of
load from other processes falls on all of them alike.

    python benchmarks/studies/selection.py
    python benchmarks/studies/selection.py --quick      # N = 300, K = 3, one run: seconds

Prints the tables; writes benchmarks/studies/results/selection.json. pwlf is
optional: without it that part says so.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import relu_ext  # noqa: E402
from common import add_output_options, optional, run_child, run_header, save  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SELECTION_TARGET = 10.0       # "auto" by BIC at most this many times one fit of max_units
SUMMARY_TARGET = 0.1          # seconds for str(curve_summary(...)) with the defaults
SELECTION_DATA = ("sine", "three_segment", "line")
SUMMARY_DATA = ("twenty_segment", "sine")
PWLF_DATA = ("sine", "twenty_segment")   # the data K = 20 is meant for
CALIBRATIONS = ("auto", "f", "bootstrap")


def zigzag(x):
    """Slopes 1, −1, 1, … on twenty segments of [0, 1]: kinks every 0.05."""
    kinks = torch.arange(1, 20, dtype=torch.float64) * 0.05
    changes = torch.tensor([(-2.0, 2.0)[k % 2] for k in range(19)], dtype=torch.float64)
    return x + (changes * torch.relu(x[:, None] - kinks)).sum(1)


# name → (description, f, σ): y = f(x) + σ·ε.
DATA = {
    "sine": ("sin(6x) + 0.02·ε", lambda x: torch.sin(6 * x), 0.02),
    "three_segment": ("breakpoints 1/3, 2/3, slopes 1, −1, 1, + 0.1·ε",
                      lambda x: x - 2 * torch.relu(x - 1 / 3) + 2 * torch.relu(x - 2 / 3), 0.1),
    "line": ("0.5 + 2x + 0.1·ε", lambda x: 0.5 + 2 * x, 0.1),
    "twenty_segment": ("breakpoints every 0.05, slopes 1, −1, 1, … (changes ∓2), + 0.02·ε",
                       zigzag, 0.02),
}


def datasets(n):
    """name → (description, x, y): x sorted uniform on [0, 1], seeded per data set."""
    found = {}
    for seed, (name, (description, f, sigma)) in enumerate(DATA.items()):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(n, generator=g, dtype=torch.float64).sort().values
        noise = torch.randn(n, generator=g, dtype=torch.float64)
        found[name] = (description, x, f(x) + sigma * noise)
    return found


def time_in_turn(calls, runs):
    """Each call's result (from one untimed call) and its median, best and
    every time over ``runs`` rounds, the calls made in turn within a round."""
    results = {name: call() for name, call in calls.items()}
    seconds = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return results, {name: {"median_s": statistics.median(s), "min_s": min(s), "all_s": s}
                     for name, s in seconds.items()}


# --------------------------------------------------------------------------- the parts

def selection(args, data):
    """"auto" by BIC and by CV against one fit of max_units, per data set."""
    k = args.units
    cases = []
    for name in SELECTION_DATA:
        description, x, y = data[name]
        found, times = time_in_turn({
            "fixed": lambda: relu_ext.fit_curve(x, y, k),
            "bic": lambda: relu_ext.fit_curve(x, y, "auto", max_units=k),
            "cv": lambda: relu_ext.fit_curve(x, y, "auto", max_units=k, select="cv"),
        }, args.runs)
        case = {"data": name, "description": description, "points": x.numel(), "max_units": k,
                "times": times, "chosen": {s: int(found[s][1].units) for s in ("bic", "cv")},
                "ratio": {s: times[s]["median_s"] / times["fixed"]["median_s"]
                          for s in ("bic", "cv")}}
        progress(f"selection {name}: BIC {case['ratio']['bic']:.3g}×, CV "
                 f"{case['ratio']['cv']:.3g}× one fit of K = {k}")
        cases.append(case)
    return {"target_ratio": SELECTION_TARGET, "cases": cases}


def printed_summary(model, x, y, calibrate):
    """The summary after ``str()``: what ``print(curve_summary(...))`` costs."""
    summary = relu_ext.curve_summary(model, x, y, calibrate=calibrate)
    str(summary)
    return summary


def summary(args, data):
    """str(curve_summary(...)) of a K = max_units fit, per calibration."""
    cases = []
    for name in SUMMARY_DATA:
        description, x, y = data[name]
        model, _ = relu_ext.fit_curve(x, y, args.units)
        found, times = time_in_turn({c: lambda c=c: printed_summary(model, x, y, c)
                                     for c in CALIBRATIONS}, args.runs)
        case = {"data": name, "description": description, "points": x.numel(),
                "units": args.units, "breakpoints": int(found["auto"].breakpoints.numel()),
                "auto_bootstrapped": found["auto"].bootstrapped, "times": times}
        progress(f"summary {name}: " + ", ".join(
            f"{c} {times[c]['median_s']:.3g} s" for c in CALIBRATIONS))
        cases.append(case)
    return {"target_seconds": SUMMARY_TARGET, "cases": cases}


def _pwlf_fit_child(x, y, k, queue):
    """pwlf's fit(k) in this child: its time and RMSE."""
    try:
        import pwlf

        np.random.seed(0)  # differential evolution draws from numpy's global generator
        start = time.perf_counter()
        model = pwlf.PiecewiseLinFit(x, y)
        model.fit(k)
        queue.put({"seconds": time.perf_counter() - start, "error": rmse(model.predict(x), y)})
    except Exception as e:  # reported, not raised: the parent goes on
        queue.put({"failed": f"{type(e).__name__}: {e}"})


def pwlf_side(args, data):
    """pwlf's fit(K) against fit_curve(x, y, K), per data set."""
    if optional("pwlf") is None:
        return {"skipped": "pwlf not installed"}
    cases = []
    for name in PWLF_DATA:
        _, x, y = data[name]
        found, times = time_in_turn({"fixed": lambda: relu_ext.fit_curve(x, y, args.units)},
                                    args.runs)
        with torch.no_grad():
            ours = {"seconds": times["fixed"]["median_s"],
                    "error": rmse(found["fixed"][0](x).numpy(), y.numpy())}
        theirs = run_child(_pwlf_fit_child, (x.numpy(), y.numpy(), args.units), args.pwlf_cap)
        progress(f"pwlf {name}: {json.dumps(theirs)}")
        cases.append({"data": name, "units": args.units, "relu_ext": ours, "pwlf": theirs})
    return {"cap_s": args.pwlf_cap, "cases": cases}


def rmse(predicted, y):
    error = np.asarray(predicted, np.float64) - np.asarray(y, np.float64)
    return float(np.sqrt(np.mean(error**2)))


def progress(message):
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report

def seconds(value):
    if value >= 1:
        return f"{value:.3g} s"
    return f"{1e3 * value:.3g} ms"


def met(ok):
    return "met" if ok else "**missed**"


def selection_table(part):
    k = part["cases"][0]["max_units"]
    lines = [f"| data | one `fit_curve(x, y, {k})` | `\"auto\"`, BIC | BIC / one fit "
             f"(target < {part['target_ratio']:g}×) | K chosen by BIC | `\"auto\"`, CV | "
             "CV / one fit | K chosen by CV |", "|---|---|---|---|---|---|---|---|"]
    for c in part["cases"]:
        t = c["times"]
        lines.append(f"| {c['data']}: {c['description']} | {seconds(t['fixed']['median_s'])} | "
                     f"{seconds(t['bic']['median_s'])} | **{c['ratio']['bic']:.3g}×** | "
                     f"{c['chosen']['bic']} | {seconds(t['cv']['median_s'])} | "
                     f"{c['ratio']['cv']:.3g}× | {c['chosen']['cv']} |")
    worst = max(c["ratio"]["bic"] for c in part["cases"])
    words = (f"Choosing K by BIC costs {min(c['ratio']['bic'] for c in part['cases']):.3g}–"
             f"{worst:.3g}× one fit of K = {k} (target < {part['target_ratio']:g}×: "
             f"{met(worst < part['target_ratio'])}); by CV "
             f"{min(c['ratio']['cv'] for c in part['cases']):.3g}–"
             f"{max(c['ratio']['cv'] for c in part['cases']):.3g}× (no target).")
    return "\n".join(lines), words


def summary_table(part):
    lines = ["| data | K | breakpoints | calibrate=\"auto\" (target < "
             f"{part['target_seconds']:g} s) | bootstrapped by \"auto\" | \"f\" | \"bootstrap\" | "
             "\"bootstrap\" / \"f\" |", "|---|---|---|---|---|---|---|---|"]
    for c in part["cases"]:
        t = {name: c["times"][name]["median_s"] for name in CALIBRATIONS}
        lines.append(f"| {c['data']}: {c['description']} | {c['units']} | {c['breakpoints']} | "
                     f"**{seconds(t['auto'])}** | {'yes' if c['auto_bootstrapped'] else 'no'} | "
                     f"{seconds(t['f'])} | {seconds(t['bootstrap'])} | "
                     f"{t['bootstrap'] / t['f']:.3g}× |")
    words = " ".join(summary_verdict(c, part["target_seconds"]) for c in part["cases"])
    return "\n".join(lines), words


def summary_verdict(case, target):
    auto = case["times"]["auto"]["median_s"]
    why = ("; calibrate=\"auto\" bootstraps this fit, a breakpoint being poorly determined for "
           "the noise" if case["auto_bootstrapped"] else "")
    return (f"{case['data']}: {seconds(auto)} with the defaults (target < {target:g} s: "
            f"{met(auto < target)}{why}).")


def pwlf_table(part):
    if "skipped" in part:
        return f"pwlf: {part['skipped']}.", ""
    lines = ["| data | K | relu_ext `fit_curve(x, y, K)` | pwlf `fit(K)` | pwlf / ours | RMSE "
             "ours | RMSE pwlf |", "|---|---|---|---|---|---|---|"]
    for c in part["cases"]:
        ours, theirs = c["relu_ext"], c["pwlf"]
        if "seconds" in theirs:
            cells = (f"{seconds(theirs['seconds'])} | {theirs['seconds'] / ours['seconds']:,.0f}× "
                     f"| {ours['error']:.4g} | {theirs['error']:.4g}")
        elif "capped" in theirs:
            cells = (f"> {theirs['capped']:.0f} s (stopped) | > "
                     f"{theirs['capped'] / ours['seconds']:,.0f}× | {ours['error']:.4g} | –")
        else:
            cells = f"failed ({theirs['failed']}) | – | {ours['error']:.4g} | –"
        lines.append(f"| {c['data']} | {c['units']} | {seconds(ours['seconds'])} | {cells} |")
    return "\n".join(lines), ""


def markdown(doc):
    m = doc["machine"]
    build = m["relu_ext"]
    parts = doc["parts"]
    k = parts["selection"]["cases"][0]["max_units"]
    n = parts["selection"]["cases"][0]["points"]
    selection_md, selection_words = selection_table(parts["selection"])
    summary_md, summary_words = summary_table(parts["summary"])
    pwlf_md, _ = pwlf_table(parts["pwlf"])
    return "\n".join([
        "## Choosing K and summarising a fit: speed",
        "",
        f"`{doc['command']}` on {m['cpu_model']} ({m['logical_cpus']} logical CPUs, "
        f"{build['cpu_isa']} kernels), {m['threads']} threads, torch {m['torch']}, relu_ext "
        f"{build['version']} at commit {doc.get('code', 'unrecorded')}, load average "
        f"{m['load_average_at_start'][0]:.2f} at the start and "
        f"{m['load_average_at_end'][0]:.2f} at the end ({m['date_utc']}). N = {n:,} points, x "
        "sorted uniform on [0, 1] (seeded). Each time is the median of "
        f"{doc['runs']} calls after an untimed one, the calls of one table row made in turn, "
        "run after run, so that each ratio is taken under the same load."
        + (" **Quick run: tiny sizes, figures not representative.**" if doc["quick"] else ""),
        "",
        f"### Choosing K: `fit_curve(x, y, \"auto\", max_units={k})` against one "
        f"`fit_curve(x, y, {k})`",
        "",
        selection_md,
        "",
        selection_words,
        "",
        f"### `str(curve_summary(model, x, y))` of a K = {k} fit",
        "",
        "The summary printed (its intervals computed), per `calibrate`; \"auto\" is the "
        "default, \"bootstrap\" fits 200 simulated curves per breakpoint's limit (each "
        "breakpoint with its neighbours, on their points).",
        "",
        summary_md,
        "",
        summary_words,
        "",
        f"### pwlf for context: `fit({k})`",
        "",
        "pwlf has no automatic number of segments: choosing K with it means a fit per K. Its "
        f"`fit(K)` (differential evolution, its defaults; numpy's global seed 0) in a child "
        f"process stopped after {parts['pwlf'].get('cap_s', 0):.0f} s, against relu_ext's "
        "`fit_curve(x, y, K)` on the same data.",
        "",
        pwlf_md,
    ])


# --------------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=2_000, help="N (2,000)")
    parser.add_argument("--units", type=int, default=20,
                        help="K: max_units of \"auto\", the fixed fit's and the summary's (20)")
    parser.add_argument("--runs", type=int, default=7, help="timed calls of each (7)")
    parser.add_argument("--pwlf-cap", type=float, default=300.0,
                        help="seconds per pwlf fit (300)")
    parser.add_argument("--quick", action="store_true",
                        help="N = 300, K = 3, one run, pwlf capped at 20 s: for tests")
    add_output_options(parser, RESULTS / "selection.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.units, args.runs = 300, 3, 1
        args.pwlf_cap = min(args.pwlf_cap, 20.0)
    if args.runs < 1 or args.units < 2 or args.points <= 2 * args.units:
        parser.error("needs --runs >= 1, --units >= 2 and --points > 2 × --units")

    if args.report_only:
        doc = json.loads(args.json.read_text())
    else:
        torch.set_num_threads(args.threads)
        doc = {**run_header(), "quick": args.quick, "runs": args.runs}
        data = datasets(args.points)
        doc["parts"] = {name: part(args, data) for name, part in
                        (("selection", selection), ("summary", summary), ("pwlf", pwlf_side))}
        save(args.json, doc)
    print(markdown(doc))


if __name__ == "__main__":
    main()
