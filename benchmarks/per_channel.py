"""Per-channel units as an activation: relu_ext against the pure-PyTorch
reference, eager and torch.compile, with nn.ReLU and nn.PReLU for context.

Two shapes (issue 10), float32 on the CPU, each with (C, K) units drawn at
random (a trained layer's, not the exactly-ReLU initialisation):

- MLP: x (8192, 1024), the channels innermost (dim=-1), K = 16;
- CNN: x (16, 64, 56, 56), NCHW, dim=1, K = 8.

For each: the forward, and forward + backward (the gradients of x and of the
parameters, as a training step needs), medians of interleaved rounds in one
process whose malloc keeps freed memory (keep_freed_memory below: no case
pays page faults for its outputs), and
the peak memory above the inputs of forward + backward in a fresh process
(benchmarks/memory.py) as a multiple of x's size. The reference is relu_ext.reference.relu_sum(x, m, b, a, dim):
x's channel dim moved last, (relu(x[..., None] * m + b) * a).sum(-1).

    python benchmarks/per_channel.py
    python benchmarks/per_channel.py --quick      # toy sizes: checks the script

Writes benchmarks/results/per_channel.json.
"""

import argparse
import ctypes
import os
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from common import (RESULTS, add_timing_options, cpu_model, interleaved_medians,  # noqa: E402
                    run_header, save)
from memory import MemoryProbe  # noqa: E402

# name: (x's shape, channel dim, K)
SHAPES = {
    "MLP": ((8192, 1024), -1, 16),
    "CNN": ((16, 64, 56, 56), 1, 8),
}
# --quick: the same layouts at a toy size, to check the script, not to measure.
QUICK_SHAPES = {
    "MLP": ((64, 32), -1, 4),
    "CNN": ((2, 8, 6, 6), 1, 3),
}


# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory():
    """Has glibc's malloc serve every allocation from its heap and keep what
    is freed there, so that a timed call reuses the memory of the one before.

    Otherwise an output of 32 MiB or more is a fresh mapping on every call,
    and its first touch costs page faults that dominate an elementwise step
    (nn.ReLU's on an (8192, 1024) float32 x: 14 ms here) and that come and go
    with the allocator's history, i.e. with which case ran before. Returns
    whether it took effect (not on other C libraries)."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**62))
    except (OSError, AttributeError):
        return False


IMPLS = ("relu_ext", "torch.compile", "eager", "nn.ReLU", "nn.PReLU")
PHASES = ("forward", "forward_backward")


def _activation(impl, shape, dim, k):
    """(f, parameters): f(x) the activation, parameters what a step also
    differentiates."""
    channels = shape[dim]
    if impl == "nn.ReLU":
        return nn.ReLU(), []
    if impl == "nn.PReLU":  # its channel dim is 1: the C of both shapes
        module = nn.PReLU(channels)
        return module, list(module.parameters())
    params = [torch.randn(channels, k, requires_grad=True) for _ in range(3)]
    if impl == "relu_ext":
        def f(x):
            return relu_ext.relu_sum(x, *params, dim=dim)
    else:
        reference = relu_ext.reference.relu_sum
        if impl == "torch.compile":
            reference = torch.compile(reference, dynamic=False)

        def f(x):
            return reference(x, *params, dim=dim)
    return f, params


def make_step(impl, phase, shape, dim, k, seed=0):
    """One call of the case, ready to time (module-level: the memory probe
    sets it up again in a fresh process)."""
    torch.manual_seed(seed)
    x = torch.randn(shape, requires_grad=phase == "forward_backward")
    f, params = _activation(impl, shape, dim, k)
    if phase == "forward":
        def step():
            with torch.no_grad():
                f(x)
    else:
        grad = torch.randn(shape)

        def step():
            torch.autograd.grad(f(x), [x, *params], grad)
    return step


def measure_times(shapes, rounds, min_run_time, threads):
    """{(shape name, impl, phase): median seconds}. The eager reference's
    forward + backward takes seconds a call, so its blocks are single calls."""
    fns = {(s, i, p): make_step(i, p, *shapes[s]) for s in shapes for i in IMPLS for p in PHASES}
    return interleaved_medians(fns, rounds, min_run_time, threads)


def measure_memory(shapes, threads):
    """{(shape name, impl): peak bytes of forward + backward above the inputs}."""
    probe = MemoryProbe()
    return {(s, i): probe.measure_step(make_step, (i, "forward_backward", *shapes[s]), "cpu",
                                       threads)["peak_extra_bytes"]
            for s in shapes for i in IMPLS}


def report(shapes, times, memory, threads, reused):
    lines = [
        "### Per-channel units as an activation: forward + backward against torch.compile",
        "",
        f"{cpu_model()}, CPU kernels `{relu_ext.build_info()['cpu_isa']}`, {threads} threads, "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}; "
        "`python benchmarks/per_channel.py`. float32, (C, K) units at random; the reference is "
        "`relu_ext.reference.relu_sum` (channel dim moved last, "
        "`(relu(x[..., None] * m + b) * a).sum(-1)`), eager and `torch.compile`d; nn.ReLU and "
        "nn.PReLU(C) for context (one parameter per channel, not K units). Medians of "
        "interleaved rounds in one process"
        + (" whose malloc reuses freed memory (no page faults on outputs)" if reused else "")
        + "; × is the row's time over relu_ext's. Memory: peak "
        "above the inputs during forward + backward, in a fresh process, as a multiple of x's "
        "size.",
        "",
    ]
    for name, (shape, dim, k) in shapes.items():
        x_bytes = 4 * torch.Size(shape).numel()
        lines += [
            f"{name}: x {tuple(shape)}, dim={dim}, C = {shape[dim]}, K = {k}",
            "",
            "| | forward | × | forward + backward | × | peak memory (× x) |",
            "|---|---|---|---|---|---|",
        ]
        ours = {p: times[(name, "relu_ext", p)] for p in PHASES}
        for impl in IMPLS:
            t = {p: times[(name, impl, p)] for p in PHASES}
            extra = memory[(name, impl)] if memory else None
            mem = f"{extra / x_bytes:.2f}× ({extra / 2**20:.0f} MiB)" if memory else "—"
            lines.append(
                f"| {impl} | {t['forward'] * 1e3:.2f} ms | {t['forward'] / ours['forward']:.2f}× | "
                f"{t['forward_backward'] * 1e3:.2f} ms | "
                f"{t['forward_backward'] / ours['forward_backward']:.2f}× | {mem} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_options(parser, rounds=4, min_run_time=0.2)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks the script only")
    parser.add_argument("--json", type=Path, default=RESULTS / "per_channel.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    reused = keep_freed_memory()
    times = measure_times(shapes, args.rounds, args.min_run_time, args.threads)
    memory = None if args.no_memory else measure_memory(shapes, args.threads)
    doc = {**run_header(threads=args.threads), "quick": args.quick, "rounds": args.rounds,
           "min_run_time_s": args.min_run_time, "malloc_keeps_freed_memory": reused,
           "shapes": {name: {"shape": list(shape), "dim": dim, "k": k}
                      for name, (shape, dim, k) in shapes.items()},
           "results": [{"shape": s, "impl": i, "phase": p, "median_s": t,
                        **({} if memory is None or p != "forward_backward"
                           else {"peak_extra_bytes": memory[(s, i)]})}
                       for (s, i, p), t in times.items()]}
    save(args.json, doc)
    print(report(shapes, times, memory, args.threads, reused))


if __name__ == "__main__":
    main()
