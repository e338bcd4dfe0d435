"""The cost of one small training step, where Python and autograd, not the
kernels, take the time: at the lesson's size (20 points, 8 units)

    relu_sum(x, m, b, a).sum().backward()        # m, b, a require grad, x does not

for relu_ext (the public function, the bare op, ReLUSumFunction) against the
same step on the eager reference, `(relu(x[:, None] * m + b) * a).sum(-1)`.

    python benchmarks/call_overhead.py                          # prints a table
    python benchmarks/call_overhead.py --results-md benchmarks/RESULTS.md

Each implementation is timed in several rounds, interleaved, with
torch.utils.benchmark (blocks of at least --min-run-time seconds); the table
gives the median over all blocks and the ratio to the eager reference, taken
in this one process.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
import sections  # noqa: E402
from machine import cpu_model  # noqa: E402
from timing import add_interleaved_options, interleaved_medians  # noqa: E402

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
    add_interleaved_options(parser, rounds=5, min_run_time=0.5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    medians = measure(args.n, args.k, args.rounds, args.min_run_time, args.threads)
    text = table(args.n, args.k, medians, args.threads)
    print(text)
    if args.results_md:
        sections.write_section(args.results_md, "call_overhead", text)


if __name__ == "__main__":
    main()
