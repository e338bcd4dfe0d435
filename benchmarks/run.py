"""Speed and memory of relu_ext's fused kernels against the pure-PyTorch
reference in eager mode and under torch.compile: the op benchmark (`make bench`).

    python benchmarks/run.py                  # the default grid (minutes)
    python benchmarks/run.py --quick          # a small grid, to check the script (< 1 min)

Prints a markdown table of every case on stdout, then the headline figures
(the sizes docs/benchmarks.md states its targets at); progress goes to stderr.
Writes to --out-dir (default benchmarks/results): results.json, time_vs_k.png
and memory_vs_n.png.

The grid is two sweeps and a few single sizes: K over --ks at N = --at-n
(the time-vs-K plot), N over --ns at K = --at-k (the memory-vs-N plot), and
--sizes (the lesson's 20×8 by default). Every size runs every implementation
and phase. Each case is timed in this process, in the order size → phase →
implementation, so that the implementations of one size are timed close
together (the ratios between them are what the noise of a shared machine
disturbs least). After all timings, each case's memory is measured in a fresh
process of its own (benchmarks/memory.py).

The JSON holds "command", "code" (the commit), "machine" (CPU, threads, torch,
relu_ext.build_info(), load), "settings" (the grid and options),
"fma_peak_gflops" and its source, "flops_per_pair", "implementations" (name →
label), and "results": one record per case with impl, phase, n, k, status
("ok" or "skipped", with reason), predicted_peak_bytes, time (median_s, iqr_s,
min_s, blocks, runs, first_call_s), g_pairs_per_s, fma_peak_fraction, memory
(peak_extra_bytes, baseline_bytes), and time_error / memory_error when a
measurement failed.
"""

import os

# Inductor compiles in a pool of worker processes by default; every fresh
# memory-measuring process would start its own. Compiling in-process is as
# fast for these small graphs and keeps the two cores for the measurements.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.utils.benchmark as benchmark  # noqa: E402
from torch import nn  # noqa: E402

import relu_ext  # noqa: E402
from common import RESULTS, run_header, save  # noqa: E402
from fma_peak import measure_fma_peak_gflops  # noqa: E402
from memory import (RESOLUTION_BYTES, MemoryProbe, available_memory_bytes,  # noqa: E402
                    cpu_peak_measurable, synchronize)
from relu_ext import reference  # noqa: E402

# The sizes docs/benchmarks.md ("Targets") states the op's targets at, and the lesson's.
HEADLINE_SIZE = (262_144, 1024)
LESSON_SIZE = (20, 8)


# --------------------------------------------------------------------------- cases

class FunctionalReLUSum(nn.Module):
    """ReLUSum's parameters with the forward computed by any relu_sum
    implementation: the training step of the reference implementations."""

    def __init__(self, relu_sum, like):
        super().__init__()
        self.relu_sum = relu_sum
        self.m = nn.Parameter(like.m.detach().clone())
        self.b = nn.Parameter(like.b.detach().clone())
        self.a = nn.Parameter(like.a.detach().clone())

    def forward(self, x):
        return self.relu_sum(x, self.m, self.b, self.a)


@dataclass(frozen=True)
class Implementation:
    name: str
    label: str
    # Returns the relu_sum(x, m, b, a) to benchmark. Called once per case, so
    # that whatever it caches (compiled graphs) belongs to that case alone.
    make: Callable[[], Callable]
    # N×K-sized tensors alive at once at the peak of each phase: a
    # deliberately high estimate, used only to skip cases that would not fit
    # in memory. O(N + K) memory is not counted.
    nk_tensors_at_peak: dict
    # The module of the training step, given the relu_sum and a freshly
    # initialised relu_ext.ReLUSum; by default its parameters around relu_sum.
    make_model: Callable[[Callable, nn.Module], nn.Module] = FunctionalReLUSum


def _relu_ext(name, algorithm):
    """relu_ext with one algorithm pinned: by default it picks by size
    ("auto"), and each implementation here must be that algorithm's figures."""

    def with_algorithm(relu_sum, model):
        model.algorithm = algorithm
        return model

    return Implementation(
        name=name,
        label=f"relu_ext ({name})",
        make=lambda: functools.partial(relu_ext.relu_sum, algorithm=algorithm),
        # Neither holds anything N×K-sized.
        nk_tensors_at_peak={"forward": 0, "forward_backward": 0, "train_step": 0},
        make_model=with_algorithm,
    )


def _compiled_reference():
    # One graph specialised to this case's shapes (what a training loop with
    # fixed shapes gets). Graphs accumulate on reference.relu_sum's code
    # object: whoever makes many cases resets dynamo between sizes (run.py),
    # or past its recompile limit dynamo would silently fall back to eager.
    return torch.compile(reference.relu_sum, dynamic=False)


# Adding an implementation is one entry here. The first entry is the one the
# others are compared against.
IMPLEMENTATIONS = {
    impl.name: impl
    for impl in (
        _relu_ext("fused", "dense"),
        _relu_ext("breakpoints", "breakpoints"),
        Implementation(
            name="eager",
            label="reference, eager",
            make=lambda: reference.relu_sum,
            # forward: x·m and +b (and each later pair) coexist; backward: the
            # saved relu output and two gradient-sized temporaries (3 measured
            # at N = 2^18, K = 1024), plus one for safety.
            nk_tensors_at_peak={"forward": 2, "forward_backward": 4, "train_step": 4},
        ),
        Implementation(
            name="compiled",
            label="reference, torch.compile",
            make=_compiled_reference,
            # Inductor fuses the forward into one reduction; its backward
            # reduces over both N (dm, db, da) and K (dx) and holds one N×K
            # tensor (measured at N = 2^18, K = 1024), plus one for safety.
            nk_tensors_at_peak={"forward": 1, "forward_backward": 2, "train_step": 2},
        ),
    )
}

BASELINE = next(iter(IMPLEMENTATIONS))

PHASES = ("forward", "forward_backward", "train_step")

PHASE_LABELS = {
    "forward": "forward",
    "forward_backward": "forward + backward",
    "train_step": "SGD training step",
}

# Floating-point operations per (input, unit) pair, counting a multiply and an
# add as one each (an FMA as two) and max/compare/select as none, as the fused
# kernels (csrc/relu_sum_math.h) do them:
#   forward   m·x+b (FMA), y += a·h (FMA)                                 4
#   backward  m·x+b (FMA), g·a, dx += t·m (FMA), dm += t·x (FMA), db += t,
#             da += g·h (FMA)                                             10
# The training step needs no dx (x is data, not a parameter): 4 + 8. Its
# O(N + K) loss and optimizer work is not counted.
FLOPS_PER_PAIR = {"forward": 4, "forward_backward": 14, "train_step": 12}


def predicted_peak_bytes(impl, phase, n, k, dtype):
    itemsize = torch.empty((), dtype=dtype).element_size()
    return IMPLEMENTATIONS[impl].nk_tensors_at_peak[phase] * n * k * itemsize


@dataclass
class Case:
    impl: str
    phase: str
    n: int
    k: int
    # Runs the case once. Holds the inputs, so they stay allocated (part of
    # the memory baseline) for as long as the case does.
    step: Callable[[], None]


def make_case(impl, phase, n, k, device, dtype, seed=0):
    """Inputs and the step of one case: x ~ N(0, 2²) and the units of a
    freshly initialised ReLUSum, whose breakpoints lie in (-3, 3), so that
    about half of the (input, unit) pairs are active, as when fitting data."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {impl!r}; known: {', '.join(IMPLEMENTATIONS)}")
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; known: {', '.join(PHASES)}")
    torch.manual_seed(seed)
    factory = {"device": device, "dtype": dtype}
    x = 2 * torch.randn(n, **factory)
    seed_module = relu_ext.ReLUSum(k, **factory)
    implementation = IMPLEMENTATIONS[impl]
    relu_sum = implementation.make()

    if phase == "forward":
        m, b, a = (p.detach() for p in (seed_module.m, seed_module.b, seed_module.a))

        def step():
            with torch.no_grad():
                relu_sum(x, m, b, a)

    elif phase == "forward_backward":
        inputs = [t.detach().clone().requires_grad_() for t in (x, seed_module.m, seed_module.b, seed_module.a)]
        grad = torch.randn(n, **factory)

        def step():
            torch.autograd.grad(relu_sum(*inputs), inputs, grad)

    else:
        target = torch.randn(n, **factory)
        model = implementation.make_model(relu_sum, copy.deepcopy(seed_module))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.mse_loss(model(x), target).backward()
            optimizer.step()

    return Case(impl, phase, n, k, step)


def case_step(impl, phase, n, k, device, dtype):
    """The step of one case, set up: what the memory probe measures, in a
    fresh process."""
    return make_case(impl, phase, n, k, device, dtype).step


# --------------------------------------------------------------------------- timing
#
# torch.utils.benchmark: median, interquartile range and best of blocks of
# runs, after a warm-up that absorbs torch.compile's compilation. On a shared
# machine another process can hold one of the CPUs for a while, and then every
# parallel region waits for its preempted thread, in steps of the scheduler's
# tick: a case timed only during such a spell comes out several times too
# slow. The blocks of a case are therefore taken in rounds, spread over the
# time the whole size takes, and summarised together.


def warm_up(case, device):
    """Runs the case once (compilation, lazy initialisation); returns how long
    that first call took, in seconds."""
    start = time.perf_counter()
    case.step()
    synchronize(device)
    return time.perf_counter() - start


def time_blocks(case, threads, min_run_time):
    """The time per run of each block of at least `min_run_time` seconds of
    runs. On CUDA the Timer synchronises the device around every block, so
    these are device times, not launch times."""
    timer = benchmark.Timer(stmt="step()", globals={"step": case.step}, num_threads=threads)
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return [
        {"per_run_s": t, "runs": measurement.number_per_run} for t in measurement.times
    ]


def summarize(blocks, first_call_s):
    times = sorted(b["per_run_s"] for b in blocks)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {
        "median_s": statistics.median(times),
        "iqr_s": quartiles[2] - quartiles[0],
        # The least disturbed block: on a shared machine, closer to what the
        # code can do than the median, which includes others' interference.
        "min_s": times[0],
        "blocks": len(times),
        "runs": sum(b["runs"] for b in blocks),
        "first_call_s": first_call_s,
    }


# --------------------------------------------------------------------------- the run

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
# FMA peak relative to FP32: float64 vectors hold half the lanes; float16 and
# bfloat16 are computed in float32 by the fused kernels.
PEAK_SCALE = {"float32": 1.0, "float64": 0.5, "float16": 1.0, "bfloat16": 1.0}

DEFAULT_GRID = {
    "ns": [2**p for p in range(10, 21, 2)],
    "at_k": 1024,
    # Up to 65,536 for the breakpoint algorithm (O(N + K log K)); the
    # references' N×K tensors are skipped there by the memory budget.
    "ks": [8, 32, 128, 512, 1024, 4096, 16384, 65536],
    "at_n": 2**18,
    "sizes": [LESSON_SIZE],
    "min_run_time": 0.6,
    "rounds": 3,
}
# Three sizes, two points on each sweep: every code path and plot, not figures.
QUICK_GRID = {"ns": [1024, 4096], "at_k": 64, "ks": [16, 64], "at_n": 4096, "sizes": [],
              "min_run_time": 0.05, "rounds": 1}


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _size_list(text):
    sizes = []
    for item in text.split(","):
        try:
            n, k = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected sizes as NxK[,NxK...], got {text!r}")
        sizes.append((n, k))
    return sizes


def _choice_list(choices):
    def parse(text):
        values = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [v for v in values if v not in choices]
        if unknown or not values:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {', '.join(choices)}, got {text!r}")
        return values
    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Benchmark relu_ext's fused relu_sum against eager PyTorch and torch.compile.")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:index]")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--quick", action="store_true",
                        help="a small grid and short timings: under a minute, for CI")
    parser.add_argument("--out-dir", type=Path, default=RESULTS,
                        help="where results.json and the plots go (default: benchmarks/results)")
    parser.add_argument("--fma-peak", type=float, metavar="GFLOPS",
                        help="the FP32 FMA peak in GFLOP/s (default: measured on the CPU)")
    parser.add_argument("--phases", type=_choice_list(PHASES), default=list(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--impls", type=_choice_list(list(IMPLEMENTATIONS)),
                        default=list(IMPLEMENTATIONS),
                        help=f"comma-separated subset of {','.join(IMPLEMENTATIONS)}")
    parser.add_argument("--ns", type=_int_list, help="N of the N sweep (comma-separated)")
    parser.add_argument("--at-k", type=int, help="K of the N sweep")
    parser.add_argument("--ks", type=_int_list, help="K of the K sweep (comma-separated)")
    parser.add_argument("--at-n", type=int, help="N of the K sweep")
    parser.add_argument("--sizes", type=_size_list,
                        help="further sizes NxK (default: the lesson's 20x8; none with --quick)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads (default: torch's, %(default)s here)")
    parser.add_argument("--min-run-time", type=float, help="seconds of timed runs per case")
    parser.add_argument("--rounds", type=int,
                        help="rounds the timed runs of one size are spread over (default 3; 1 "
                             "with --quick)")
    parser.add_argument("--memory-budget-gib", type=float,
                        help="skip cases predicted to need more (default: a third of the memory "
                             "available at the start)")
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else DEFAULT_GRID
    for name, value in grid.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device must be cpu or cuda[:index], got {args.device!r}")
    args.device = str(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda, got {args.device!r}")
    if device.type == "cpu" and not cpu_peak_measurable():
        parser.error("measuring CPU peak memory needs Linux's /proc/self/clear_refs")
    return args


def grid_sizes(args):
    sizes = [(n, args.at_k) for n in args.ns] + [(args.at_n, k) for k in args.ks] + args.sizes
    return sorted(set(sizes))


def memory_budget_bytes(args):
    if args.memory_budget_gib is not None:
        return int(args.memory_budget_gib * 2**30)
    if torch.device(args.device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(args.device)
    else:
        free = available_memory_bytes()
    return free // 3


def fma_peak(args):
    if args.fma_peak is not None:
        return args.fma_peak, "--fma-peak"
    if torch.device(args.device).type != "cpu":
        return None, "unknown: pass --fma-peak for this device"
    return measure_fma_peak_gflops(args.threads, runs=100 if args.quick else 300), (
        f"measured: fastest of many 1 ms runs of independent FMA chains on {args.threads} "
        "threads at once, benchmarks/fma_peak.py")


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def run(args):
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    budget = memory_budget_bytes(args)
    peak, peak_source = fma_peak(args)
    dtype_peak = None if peak is None else peak * PEAK_SCALE[args.dtype]
    doc = {
        **run_header(args.device, args.threads),
        "settings": {
            "device": args.device, "dtype": args.dtype, "quick": args.quick,
            "phases": args.phases, "impls": args.impls, "ns": args.ns, "at_k": args.at_k,
            "ks": args.ks, "at_n": args.at_n, "sizes": [list(s) for s in args.sizes],
            "min_run_time_s": args.min_run_time, "rounds": args.rounds,
            "memory_budget_bytes": budget,
            "memory_resolution_bytes": RESOLUTION_BYTES if args.device == "cpu" else 0,
        },
        "fma_peak_gflops": peak,
        "fma_peak_source": peak_source,
        "flops_per_pair": FLOPS_PER_PAIR,
        "implementations": {name: IMPLEMENTATIONS[name].label for name in args.impls},
        "results": [],
    }
    _progress(f"FP32 FMA peak: {peak_source}" + ("" if peak is None else f", {peak:.4g} GFLOP/s"))

    records = []
    for n, k in grid_sizes(args):
        records += _time_size(args, dtype, dtype_peak, budget, n, k)
    probe = MemoryProbe()
    for record in records:
        _measure_memory(args, dtype, probe, record)
    phase_order = {p: i for i, p in enumerate(args.phases)}
    impl_order = {name: i for i, name in enumerate(args.impls)}
    records.sort(key=lambda r: (phase_order[r["phase"]], r["n"], r["k"], impl_order[r["impl"]]))
    doc["results"] = records
    return doc


def _time_size(args, dtype, dtype_peak, budget, n, k):
    """Times every phase and implementation at one size, in --rounds rounds
    over all of them (see "timing" above for why)."""
    # The compiled graphs of earlier sizes are not needed again; dropping them
    # keeps this size's few graphs well under dynamo's recompile limit.
    torch._dynamo.reset()
    records, cases = [], {}
    for phase in args.phases:
        for impl in args.impls:
            record = _new_record(impl, phase, n, k, dtype, budget)
            records.append(record)
            if record["status"] == "skipped":
                _progress(f"{_name(record)}: {record['reason']}")
                continue
            try:
                case = make_case(impl, phase, n, k, args.device, dtype)
                cases[id(record)] = (case, warm_up(case, args.device), [])
            except Exception as error:  # recorded in the table; the other cases still run
                _timing_failed(record, error)
    for _ in range(args.rounds):
        for record in records:
            if id(record) not in cases:
                continue
            case, _, blocks = cases[id(record)]
            try:
                blocks += time_blocks(case, args.threads, args.min_run_time / args.rounds)
            except Exception as error:
                _timing_failed(record, error)
                del cases[id(record)]
    for record in records:
        if id(record) not in cases:
            continue
        _, first_call, blocks = cases.pop(id(record))
        record["time"] = timing = summarize(blocks, first_call)
        record["g_pairs_per_s"] = n * k / timing["median_s"] / 1e9
        if dtype_peak is not None:
            record["fma_peak_fraction"] = (
                FLOPS_PER_PAIR[record["phase"]] * record["g_pairs_per_s"] / dtype_peak)
        _progress(f"{_name(record)}: {format_time(timing['median_s'])} "
                  f"(IQR {format_time(timing['iqr_s'])})")
    return records


def _new_record(impl, phase, n, k, dtype, budget):
    predicted = predicted_peak_bytes(impl, phase, n, k, dtype)
    record = {
        "impl": impl, "phase": phase, "n": n, "k": k, "status": "ok", "reason": None,
        "predicted_peak_bytes": predicted, "time": None, "g_pairs_per_s": None,
        "fma_peak_fraction": None, "memory": None,
    }
    if predicted > budget:
        record["status"] = "skipped"
        record["reason"] = f"skipped (predicted {format_bytes(predicted)})"
    return record


def _name(record):
    return f"{record['impl']} {record['phase']} N={record['n']} K={record['k']}"


def _timing_failed(record, error):
    record["time_error"] = f"{type(error).__name__}: {error}"
    _progress(f"{_name(record)}: timing failed: {record['time_error']}")


def _measure_memory(args, dtype, probe, record):
    if record["status"] == "skipped":
        return
    name = _name(record)
    try:
        record["memory"] = probe.measure_step(
            case_step, (record["impl"], record["phase"], record["n"], record["k"], args.device,
                        dtype), args.device, args.threads)
    except RuntimeError as error:
        record["memory_error"] = str(error)
        _progress(f"{name}: memory measurement failed: {error}")
        return
    _progress(f"{name}: peak +{format_bytes(record['memory']['peak_extra_bytes'])}")


# --------------------------------------------------------------------------- report

def format_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_bytes(count):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def find(doc, impl, phase, n, k):
    for record in doc["results"]:
        if (record["impl"], record["phase"], record["n"], record["k"]) == (impl, phase, n, k):
            return record
    return None


def _median(record):
    if record is None or record["time"] is None:
        return None
    return record["time"]["median_s"]


def _time_cells(record):
    if record["status"] == "skipped":
        return [record["reason"], "", "", "", ""]
    if record["time"] is None:
        return [record.get("time_error") or "not timed", "", "", "", ""]
    t = record["time"]
    fraction = record["fma_peak_fraction"]
    return [
        format_time(t["median_s"]),
        format_time(t["iqr_s"]),
        format_time(t["min_s"]),
        f"{record['g_pairs_per_s']:.3g}",
        "" if fraction is None else f"{100 * fraction:.3g}%",
    ]


def _memory_cell(record, resolution):
    if record["status"] == "skipped":
        return "skipped"
    if record["memory"] is not None:
        peak = record["memory"]["peak_extra_bytes"]
        return format_bytes(peak) if peak >= resolution else f"< {format_bytes(resolution)}"
    return record.get("memory_error") or "not measured"


def _speedup_cell(doc, record):
    """How many times faster the baseline implementation is on this case."""
    if record["impl"] == BASELINE:
        return "1"
    ours = _median(find(doc, BASELINE, record["phase"], record["n"], record["k"]))
    theirs = _median(record)
    if ours is None or theirs is None:
        return ""
    return f"{theirs / ours:.3g}×"


def table_markdown(doc):
    labels = doc["implementations"]
    header = [
        "phase", "N", "K", "implementation", "median", "IQR", "best", "G pairs/s",
        "of FMA peak", "peak extra memory", f"{labels[BASELINE]} speedup",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in doc["results"]:
        cells = [
            PHASE_LABELS[record["phase"]], f"{record['n']:,}", f"{record['k']:,}",
            labels[record["impl"]], *_time_cells(record),
            _memory_cell(record, doc["settings"]["memory_resolution_bytes"]),
            _speedup_cell(doc, record),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)



def _sweep(doc, impl, phase, vary, fixed_name, fixed_value, value):
    points = []
    for record in doc["results"]:
        if (record["impl"], record["phase"], record[fixed_name]) != (impl, phase, fixed_value):
            continue
        y = value(record)
        if y is not None:
            points.append((record[vary], y))
    return sorted(points)


def _plot(doc, path, vary, fixed_name, fixed_value, value, ylabel, title, floor=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = doc["settings"]["phases"]
    figure, axes = plt.subplots(1, len(phases), figsize=(5 * len(phases), 4), squeeze=False)
    for axis, phase in zip(axes[0], phases):
        for impl, label in doc["implementations"].items():
            points = _sweep(doc, impl, phase, vary, fixed_name, fixed_value, value)
            if points:
                xs, ys = zip(*points)
                axis.plot(xs, ys, marker="o", label=label)
        if floor is not None:
            axis.axhline(floor, color="gray", linestyle="--", linewidth=1,
                         label="resolution (smaller values drawn here)")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(vary.upper())
        axis.set_ylabel(ylabel)
        axis.set_title(PHASE_LABELS[phase])
        axis.grid(True, which="both", alpha=0.3)
    # One legend below the panels, where it hides no data.
    handles, names = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
    machine = doc["machine"]
    figure.suptitle(
        f"{title}, {fixed_name.upper()} = {fixed_value:,}, {doc['settings']['dtype']}, "
        f"{machine['threads']} threads, {machine.get('gpu', machine['cpu_model'])}"
    )
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_time_vs_k(doc, path):
    _plot(doc, path, "k", "n", doc["settings"]["at_n"], _median, "median time per call (s)",
          "Time vs K")


def plot_memory_vs_n(doc, path):
    # A log axis cannot show the zeros of measurements below the resolution
    # (or of exact ones, on CUDA): they are drawn at the resolution, or 1 KiB.
    floor = max(doc["settings"]["memory_resolution_bytes"], 1024)

    def peak(record):
        if record["memory"] is None:
            return None
        return max(record["memory"]["peak_extra_bytes"], floor) / 2**20

    _plot(doc, path, "n", "k", doc["settings"]["at_k"], peak,
          "peak memory above inputs (MiB)", "Peak memory vs N", floor / 2**20)


def headline_lines(doc):
    """The figures docs/benchmarks.md ("Targets") sets targets for, as markdown
    bullets; empty when the run did not cover the headline sizes."""
    labels = doc["implementations"]
    others = [impl for impl in labels if impl != BASELINE]
    n, k = HEADLINE_SIZE
    lines = []

    def ratios(phase, at_n, at_k):
        """The baseline's median and, per other implementation, how many times
        faster the baseline is: by medians and by best blocks."""
        own = find(doc, BASELINE, phase, at_n, at_k)
        ours = _median(own)
        parts = []
        for impl in others:
            record = find(doc, impl, phase, at_n, at_k)
            theirs = _median(record)
            if ours is not None and theirs is not None:
                best = record["time"]["min_s"] / own["time"]["min_s"]
                faster = theirs >= ours  # relu_ext's own breakpoint algorithm may win
                parts.append(f"**{(theirs / ours if faster else ours / theirs):.3g}×** "
                             f"{'faster' if faster else 'slower'} than {labels[impl]} "
                             f"(medians {format_time(ours)} vs {format_time(theirs)}; "
                             f"{(best if faster else 1 / best):.3g}× by best blocks)")
            elif record is not None and record["status"] == "skipped":
                parts.append(f"{labels[impl]} {record['reason']}")
        return ours, parts

    for phase in doc["settings"]["phases"]:
        ours, parts = ratios(phase, n, k)
        if ours is None:
            continue
        record = find(doc, BASELINE, phase, n, k)
        rate = f"{record['g_pairs_per_s']:.3g} G pairs/s"
        if record["fma_peak_fraction"] is not None:
            rate += (f", {100 * record['fma_peak_fraction']:.3g}% of the FP32 FMA peak at "
                     f"{FLOPS_PER_PAIR[phase]} FLOPs per pair")
        lines.append(f"- {PHASE_LABELS[phase]}, N = {n:,}, K = {k:,}: {labels[BASELINE]} "
                     f"{rate}; " + "; ".join(parts) + ".")

    memory = []
    for impl, label in labels.items():
        record = find(doc, impl, "forward_backward", n, k)
        if record is None:
            continue
        memory.append(f"{label} {_memory_cell(record, doc['settings']['memory_resolution_bytes'])}")
    if memory:
        lines.append(f"- Forward + backward peak memory above the inputs, N = {n:,}, K = {k:,}: "
                     + ", ".join(memory) + ".")

    ln, lk = LESSON_SIZE
    ours, parts = ratios("forward_backward", ln, lk)
    if ours is not None:
        lines.append(f"- The lesson's size (N = {ln}, K = {lk}), forward + backward: "
                     f"{labels[BASELINE]} " + "; ".join(parts) + ".")
    return lines


def write_outputs(args, doc):
    save(args.out_dir / "results.json", doc)
    plot_time_vs_k(doc, args.out_dir / "time_vs_k.png")
    plot_memory_vs_n(doc, args.out_dir / "memory_vs_n.png")


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    doc = run(args)
    write_outputs(args, doc)
    print(table_markdown(doc))
    headline = headline_lines(doc)
    if headline:
        print("\n## Headline\n")
        print("\n".join(headline))
    _progress(f"done in {time.perf_counter() - start:.0f} s; results in {args.out_dir}")


if __name__ == "__main__":
    main()
