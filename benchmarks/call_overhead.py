"""The cost of one small training step, where Python and autograd, not the
kernels, take the time: at the lesson's size (20 points, 8 units)

    relu_sum(x, m, b, a).sum().backward()        # m, b, a require grad, x does not

for relu_ext (the public function, the bare op, ReLUSumFunction) against the
same step on the eager reference, `(relu(x[:, None] * m + b) * a).sum(-1)`.

    python benchmarks/call_overhead.py            # prints a table
    python benchmarks/call_overhead.py --quick    # short timings, to check the script

Each implementation is timed in several rounds, interleaved, with
torch.utils.benchmark (blocks of at least --min-run-time seconds); the table
gives the median over all blocks and the ratio to the eager reference, taken
in this one process. Writes benchmarks/results/call_overhead.json.
"""

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from common import (RESULTS, add_timing_options, cpu_model, interleaved_medians,  # noqa: E402
                    run_header, save)

IMPLEMENTATIONS = {
    "relu_ext.relu_sum": relu_ext.relu_sum,
    "torch.ops.relu_ext.relu_sum": torch.ops.relu_ext.relu_sum.default,
    "relu_ext.ReLUSumFunction.apply": relu_ext.ReLUSumFunction.apply,
    "reference, eager": relu_ext.reference.relu_sum,
}
BASELINE = "reference, eager"


def make_step(fn, n, k, seed=0):
    torch.manual_seed(seed)
    x = 2 * torch.randn(n)
    module = relu_ext.ReLUSum(k)
    m, b, a = (p.detach().clone().requires_grad_() for p in (module.m, module.b, module.a))

    def step():
        fn(x, m, b, a).sum().backward()

    return step


def measure(n, k, rounds, min_run_time, threads):
    steps = {name: make_step(fn, n, k) for name, fn in IMPLEMENTATIONS.items()}
    return interleaved_medians(steps, rounds, min_run_time, threads)


def table(n, k, medians, threads):
    base = medians[BASELINE]
    lines = [
        f"### One step at the lesson's size: `relu_sum(x, m, b, a).sum().backward()`, N = {n}, K = {k}",
        "",
        f"{cpu_model()}, {threads} threads, torch {torch.__version__}, load average "
        f"{os.getloadavg()[0]:.2f}; medians of interleaved rounds, in one process "
        "(`python benchmarks/call_overhead.py`). m, b, a require grad, x does not.",
        "",
        "| implementation | time per step | vs eager reference |",
        "|---|---|---|",
    ]
    for name, t in medians.items():
        lines.append(f"| {name} | {t * 1e6:.1f} µs | {base / t:.2f}× |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--k", type=int, default=8)
    add_timing_options(parser, rounds=5, min_run_time=0.5)
    parser.add_argument("--quick", action="store_true", help="one short round: checks the script")
    parser.add_argument("--json", type=Path, default=RESULTS / "call_overhead.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.min_run_time = 1, 0.05
    torch.set_num_threads(args.threads)
    doc = {**run_header(threads=args.threads), "n": args.n, "k": args.k, "rounds": args.rounds,
           "min_run_time_s": args.min_run_time}
    medians = measure(args.n, args.k, args.rounds, args.min_run_time, args.threads)
    doc["median_s"] = medians
    save(args.json, doc)
    print(table(args.n, args.k, medians, args.threads))


if __name__ == "__main__":
    main()
