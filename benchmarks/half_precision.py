"""float16 and bfloat16 inputs against float32 on the CPU: speed and memory.

A 16-bit x with float32 units (mixed precision, as torch.autocast gives) is
read and written by the kernels as it is, converted in registers a block at a
time; this measures what that buys at N = 2^24:

- time of the forward and of forward + backward (dx, dm, db, da), dense and
  breakpoints, K = 4 and 64, as the ratio float32 time / 16-bit time taken in
  this one process (medians of interleaved rounds, torch.utils.benchmark);
- peak memory above the inputs (each case in a fresh process, as
  benchmarks/memory.py measures), as a multiple of x's own size;
- optionally (--before PYTHON), float32 forward time of this build against
  another install of relu_ext (e.g. the main branch's venv), alternating
  processes, to show the float32 kernels kept their speed.

    python benchmarks/half_precision.py
    python benchmarks/half_precision.py --before ../main/.venv/bin/python
    python benchmarks/half_precision.py --quick      # N = 2^12, K = 4: checks the script

Writes benchmarks/results/half_precision.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from common import (RESULTS, add_timing_options, cpu_model, interleaved_medians,  # noqa: E402
                    run_header, save)
from memory import RESOLUTION_BYTES, MemoryProbe  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ALGORITHMS = ("dense", "breakpoints")
PHASES = ("forward", "forward_backward")


def make_step(algorithm, phase, n, k, dtype, seed=0):
    """One call of the case; x in `dtype`, the units float32 (a fresh ReLUSum's)."""
    torch.manual_seed(seed)
    x = (2 * torch.randn(n)).to(dtype)
    module = relu_ext.ReLUSum(k)
    m, b, a = (p.detach() for p in (module.m, module.b, module.a))
    if phase == "forward":
        def step():
            with torch.no_grad():
                relu_ext.relu_sum(x, m, b, a, algorithm=algorithm)
    else:
        inputs = [t.clone().requires_grad_() for t in (x, m, b, a)]
        grad = torch.randn(n).to(dtype)

        def step():
            torch.autograd.grad(relu_ext.relu_sum(*inputs, algorithm=algorithm), inputs, grad)
    return step, x.nbytes


def measure_times(n, ks, rounds, min_run_time, threads):
    """{(algorithm, phase, k, dtype name): median seconds}, rounds interleaved."""
    cases = {(alg, phase, k, name): make_step(alg, phase, n, k, dtype)[0]
             for alg in ALGORITHMS for phase in PHASES for k in ks for name, dtype in DTYPES.items()}
    return interleaved_medians(cases, rounds, min_run_time, threads)


# ---------------------------------------------------------------- memory


def _memory_step(algorithm, phase, n, k, dtype_name):
    return make_step(algorithm, phase, n, k, DTYPES[dtype_name])[0]


def measure_memory(n, ks, threads):
    """{(algorithm, phase, k, dtype name): (peak bytes above the inputs, x's bytes)},
    each in a fresh process (benchmarks/memory.py)."""
    probe = MemoryProbe()
    results = {}
    for alg in ALGORITHMS:
        for phase in PHASES:
            for k in ks:
                for name, dtype in DTYPES.items():
                    peak = probe.measure_step(_memory_step, (alg, phase, n, k, name), "cpu",
                                              threads)["peak_extra_bytes"]
                    results[(alg, phase, k, name)] = (peak, n * dtype.itemsize)
    return results


# ------------------------------------------------- float32 against another build

_FLOAT32_PROBE = """
import json, statistics, sys, torch
from torch.utils import benchmark
import relu_ext
n, ks, threads, min_run_time = json.loads(sys.argv[1])
torch.set_num_threads(threads)
out = {"version": relu_ext.build_info().get("version"), "times": {}}
for k in ks:
    torch.manual_seed(0)
    x = 2 * torch.randn(n)
    module = relu_ext.ReLUSum(k)
    m, b, a = (p.detach() for p in (module.m, module.b, module.a))
    with torch.no_grad():
        relu_ext.relu_sum(x, m, b, a, algorithm="dense")
        timer = benchmark.Timer("f(x, m, b, a, algorithm='dense')", num_threads=threads,
                                globals={"f": relu_ext.relu_sum, "x": x, "m": m, "b": b, "a": a})
        out["times"][str(k)] = statistics.median(timer.blocked_autorange(min_run_time=min_run_time).times)
print(json.dumps(out))
"""


def measure_float32_against(before_python, n, ks, rounds, min_run_time, threads):
    """{k: (median seconds with `before_python`, with this Python)}: alternating processes."""
    args = json.dumps([n, list(ks), threads, min_run_time])
    runs = {"before": [], "after": []}
    for _ in range(rounds):
        for label, python in (("before", before_python), ("after", sys.executable)):
            out = subprocess.run([python, "-c", _FLOAT32_PROBE, args], check=True,
                                 capture_output=True, text=True, cwd="/")
            runs[label].append(json.loads(out.stdout.strip().splitlines()[-1])["times"])
    return {k: tuple(statistics.median(r[str(k)] for r in runs[label]) for label in ("before", "after"))
            for k in ks}


# ------------------------------------------------------------------ report


def report(n, ks, times, memory, float32_check, threads, before_python):
    lines = [
        f"### float16 and bfloat16 inputs against float32, N = 2^{n.bit_length() - 1}",
        "",
        f"{cpu_model()}, CPU kernels `{relu_ext.build_info()['cpu_isa']}`, {threads} threads, "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}; "
        "`python benchmarks/half_precision.py`. x in the dtype shown, m, b, a float32 "
        "(mixed precision). Speed: float32 time / 16-bit time, medians of interleaved rounds "
        "in one process (above 1: the 16-bit input is faster).",
        "",
        "| algorithm | phase | K | float32 | bfloat16 | float16 | bfloat16 speed-up | float16 speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for alg in ALGORITHMS:
        for phase in PHASES:
            for k in ks:
                t = {name: times[(alg, phase, k, name)] for name in DTYPES}
                lines.append(
                    f"| {alg} | {phase.replace('_', ' + ')} | {k} | {t['float32'] * 1e3:.2f} ms | "
                    f"{t['bfloat16'] * 1e3:.2f} ms | {t['float16'] * 1e3:.2f} ms | "
                    f"{t['float32'] / t['bfloat16']:.2f}× | {t['float32'] / t['float16']:.2f}× |")
    if memory:
        lines += [
            "",
            "Peak memory above the inputs, as a multiple of x's own size (each case in a fresh "
            f"process, peak RSS as in benchmarks/memory.py, good to ~{RESOLUTION_BYTES // 1024} KiB). "
            "The forward allocates y, forward + backward also dx (and autograd's K-sized "
            "gradients).",
            "",
            "| algorithm | phase | K | float32 | bfloat16 | float16 |",
            "|---|---|---|---|---|---|",
        ]
        for alg in ALGORITHMS:
            for phase in PHASES:
                for k in ks:
                    cells = []
                    for name in DTYPES:
                        extra, x_bytes = memory[(alg, phase, k, name)]
                        cells.append(f"{extra / x_bytes:.2f}× ({extra / 2**20:.0f} MiB)")
                    lines.append(f"| {alg} | {phase.replace('_', ' + ')} | {k} | " + " | ".join(cells) + " |")
    if float32_check:
        lines += [
            "",
            f"float32 forward (dense) of this build against `{before_python}`'s install, "
            "alternating processes, medians:",
            "",
            "| K | before | this build | before / this |",
            "|---|---|---|---|",
        ]
        for k, (before, after) in float32_check.items():
            lines.append(f"| {k} | {before * 1e3:.2f} ms | {after * 1e3:.2f} ms | {before / after:.2f}× |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log2-n", type=int, default=24)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 64])
    # Many short rounds: on a shared machine the load changes within seconds,
    # and interleaving finely lets each ratio see the same load.
    add_timing_options(parser, rounds=8, min_run_time=0.15)
    parser.add_argument("--quick", action="store_true",
                        help="N = 2^12, K = 4, one short round: checks the script")
    parser.add_argument("--json", type=Path, default=RESULTS / "half_precision.json")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also time float32 against the relu_ext installed for this Python")
    args = parser.parse_args(argv)
    if args.quick:
        args.log2_n, args.k, args.rounds, args.min_run_time = 12, [4], 1, 0.01
    torch.set_num_threads(args.threads)
    n = 2 ** args.log2_n
    doc = {**run_header(threads=args.threads), "n": n, "ks": args.k, "rounds": args.rounds,
           "min_run_time_s": args.min_run_time}
    times = measure_times(n, args.k, args.rounds, args.min_run_time, args.threads)
    memory = None if args.no_memory else measure_memory(n, args.k, args.threads)
    float32_check = (measure_float32_against(args.before, n, args.k, args.rounds, args.min_run_time,
                                             args.threads) if args.before else None)
    doc["results"] = [
        {"algorithm": alg, "phase": phase, "k": k, "dtype": name, "median_s": t,
         **({} if memory is None else {"peak_extra_bytes": memory[(alg, phase, k, name)][0],
                                       "x_bytes": memory[(alg, phase, k, name)][1]})}
        for (alg, phase, k, name), t in times.items()]
    if float32_check:
        doc["float32_against"] = {"python": args.before, "median_s": {
            str(k): {"before": before, "this_build": after}
            for k, (before, after) in float32_check.items()}}
    save(args.json, doc)
    print(report(n, args.k, times, memory, float32_check, args.threads, args.before))


if __name__ == "__main__":
    main()
