"""Forward + backward time of relu_sum's dense and breakpoint algorithms over K.

    python benchmarks/breakpoints.py                 # N = 262,144, K = 64 ... 65,536
    python benchmarks/breakpoints.py --quick         # small sizes, seconds

For each K it times, in this process, y = relu_sum(x, m, b, a, algorithm=...)
followed by the gradients of x, m, b and a (torch.autograd.grad), with
torch.utils.benchmark (median of blocked runs), and prints a markdown table
with the dense/breakpoints ratio and the crossover K where the breakpoint
algorithm becomes faster (log-interpolated between grid points).

The breakpoint algorithm's speed depends on where the breakpoints -b/m lie
relative to each other, so it is timed on two sets of units:
  gaussian  m, b ~ N(0, 1): breakpoints Cauchy-distributed, heavy tails;
  uniform   |m| = 1, breakpoints uniform on (-3, 3): ReLUSum's initialisation.
The dense algorithm's time does not depend on them (timed on gaussian).
x ~ N(0, 1) in both. Timings on a shared machine are noisy; the ratios are
taken within one process, close together in time. Writes
benchmarks/results/breakpoints.json.
"""

import argparse
import math
import os
import sys
from pathlib import Path

import torch
from torch.utils import benchmark

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from common import RESULTS, run_header, save  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64,
          "float16": torch.float16, "bfloat16": torch.bfloat16}


def make_units(kind, k, dtype, generator):
    if kind == "gaussian":
        m = torch.randn(k, generator=generator)
        b = torch.randn(k, generator=generator)
    else:
        m = torch.randint(0, 2, (k,), generator=generator) * 2.0 - 1.0
        b = -m * (torch.rand(k, generator=generator) * 6 - 3)
    a = torch.randn(k, generator=generator) / math.sqrt(k)
    return [t.to(dtype).requires_grad_() for t in (m, b, a)]


def fwd_bwd_seconds(algorithm, x, m, b, a, grad, min_run_time):
    def step():
        y = relu_ext.relu_sum(x, m, b, a, algorithm=algorithm)
        torch.autograd.grad(y, (x, m, b, a), grad)

    step()  # first call: allocations, lazy initialisation
    # Timer runs single-threaded unless told otherwise.
    timer = benchmark.Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def crossover(ks, ratios):
    """The K where dense/breakpoints first reaches 1, interpolated in log K."""
    for (k0, r0), (k1, r1) in zip(zip(ks, ratios), zip(ks[1:], ratios[1:])):
        if r0 < 1 <= r1:
            f = (0 - math.log(r0)) / (math.log(r1) - math.log(r0))
            return round(math.exp(math.log(k0) + f * (math.log(k1) - math.log(k0))))
    if ratios and ratios[0] >= 1:
        return f"<= {ks[0]}"
    return f"> {ks[-1]}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2**18, help="inputs N (default 262144)")
    parser.add_argument("--ks", type=lambda s: [int(v) for v in s.split(",")],
                        default=[64, 128, 256, 512, 1024, 4096, 16384, 65536], help="comma-separated K")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--min-run-time", type=float, default=1.0,
                        help="seconds of runs per measurement (at least one run)")
    parser.add_argument("--quick", action="store_true", help="N = 16384, K = 64, 256, 1024")
    parser.add_argument("--json", type=Path, default=RESULTS / "breakpoints.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.ks, args.min_run_time = 2**14, [64, 256, 1024], 0.1

    dtype = DTYPES[args.dtype]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, generator=gen).to(dtype).requires_grad_()
    grad = torch.randn(args.n, generator=gen).to(dtype)
    print(f"relu_sum forward + backward (all four gradients), N = {args.n}, {args.dtype}, "
          f"{torch.get_num_threads()} threads, {relu_ext.build_info().get('cpu_isa', '')}",
          file=sys.stderr)

    rows, ratios = [], {"gaussian": [], "uniform": []}
    for k in args.ks:
        units = {kind: make_units(kind, k, dtype, gen) for kind in ratios}
        dense = fwd_bwd_seconds("dense", x, *units["gaussian"], grad, args.min_run_time)
        row = [k, dense]
        for kind in ratios:
            t = fwd_bwd_seconds("breakpoints", x, *units[kind], grad, args.min_run_time)
            ratios[kind].append(dense / t)
            row += [t, dense / t]
        rows.append(row)
        print(f"K = {k}: done", file=sys.stderr)
    crossovers = {kind: crossover(args.ks, ratios[kind]) for kind in ratios}
    save(args.json, {**run_header(), "n": args.n, "dtype": args.dtype,
                     "min_run_time_s": args.min_run_time, "crossover_k": crossovers,
                     "results": [dict(zip(("k", "dense_s", "breakpoints_gaussian_s",
                                           "ratio_gaussian", "breakpoints_uniform_s",
                                           "ratio_uniform"), row)) for row in rows]})

    print("| K | dense (ms) | breakpoints, gaussian (ms) | ratio | breakpoints, uniform (ms) | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for k, dense, tg, rg, tu, ru in rows:
        print(f"| {k} | {dense * 1e3:.2f} | {tg * 1e3:.2f} | {rg:.1f}x | {tu * 1e3:.2f} | {ru:.1f}x |")
    print()
    for kind in ratios:
        print(f"crossover ({kind} breakpoints): K = {crossovers[kind]}")


if __name__ == "__main__":
    main()
