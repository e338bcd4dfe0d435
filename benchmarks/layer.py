"""relu_ext.relu_sum_linear as a KAN layer against its anchors: forward +
backward time and peak memory, float32 on the CPU, all in one run.

At B = 4096 inputs of I = 256 features to O = 256 outputs:

- nn.Linear(256, 256) + ReLU, the layer a KAN layer replaces;
- relu_ext.relu_sum_linear at K = 8, 64 and 1024 units per edge,
  algorithm="auto" (which algorithm it ran is recorded: the op it dispatched);
- 8 × a.clone() of the K = 1024 weights a (O·I·K floats, 256 MiB): what 8
  passes over a cost, the yardstick of K = 1024;
- the dense PyTorch form (relu_ext.ops.reference.relu_sum_linear: the B·I·K
  hinge features, then an einsum), eager and under torch.compile, at K = 64;
- pykan 0.2.8's KANLayer(in_dim=256, out_dim=256) (num=5, k=3; `layer(x)[0]`);
- efficient-kan's KANLinear(256, 256) (G = 5, k = 3), re-implemented in
  benchmarks/anchors/efficient_kan.py (it is not on PyPI), with checks of the
  re-implementation against efficient-kan's published figures: parameter
  counts, CPU time against an MLP, activation memory against an MLP.

Each step is y = layer(x) then torch.autograd.grad(y, [x, *parameters], g):
every gradient a training step needs, and x's (a layer inside a network).
x is uniform on [-1, 1] (the KAN layers' grid range); relu_ext's units have
breakpoints uniform on [-1, 1] and slopes ±1. Times are medians of interleaved
rounds in one process whose malloc keeps freed memory (no case pays page
faults for its outputs); memory is the peak above the set-up of one step, in
a fresh process per case (benchmarks/memory.py): parameters and inputs are set
up first, so they are not in the peak, their gradients are.

    python benchmarks/layer.py                 # the sizes above (a few minutes, pykan ~1)
    python benchmarks/layer.py --quick         # B = 256, I = O = 32: checks the script (seconds)
    python benchmarks/layer.py --only linear,relu_ext_k8,pykan
    python benchmarks/layer.py --report-only   # the tables again, from the JSON

pykan is an anchor: install the bench extra (pip install "relu_ext[bench]").
Without it the full run stops; --quick skips it with a note.

Prints the tables and the ratios against their targets (markdown); writes
benchmarks/results/layer.json (--json): "command", "code", "machine",
"settings", "cases" (name → label, k, algorithm, time_s, peak_extra_bytes,
baseline_bytes, parameters, parameter_bytes, status), "ratios" (each with its
value, target and whether it is met) and "efficient_kan_checks".
"""

import os

# Inductor compiles in a pool of worker processes by default; each fresh
# memory-measuring process would start its own (as in run.py).
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relu_ext  # noqa: E402
from anchors.efficient_kan import KAN as EfficientKAN  # noqa: E402
from anchors.efficient_kan import KANLinear  # noqa: E402
from common import (RESULTS, add_timing_options, cpu_model, interleaved_medians,  # noqa: E402
                    optional, run_header, save)
from memory import RESOLUTION_BYTES, MemoryProbe, available_memory_bytes  # noqa: E402
from per_channel import keep_freed_memory  # noqa: E402
from relu_ext.ops import reference  # noqa: E402

FULL = {"batch": 4096, "width": 256}
QUICK = {"batch": 256, "width": 32}
KS = (8, 64, 1024)
DENSE_K = 64
CLONES = 8
BENCH_EXTRA = 'the bench extra: pip install "relu_ext[bench]" (from a checkout: pip install ".[bench]")'

# name: (label, K or None, what to measure)
CASES = {
    "linear": ("nn.Linear + ReLU", None),
    **{f"relu_ext_k{k}": (f"relu_ext.relu_sum_linear, K = {k}", k) for k in KS},
    "clone8_k1024": (f"{CLONES} × a.clone(), a of K = 1024", 1024),
    "dense_eager_k64": ("dense PyTorch form, eager, K = 64", DENSE_K),
    "dense_compiled_k64": ("dense PyTorch form, torch.compile, K = 64", DENSE_K),
    "pykan": ("pykan KANLayer (num = 5, k = 3)", None),
    "efficient_kan": ("efficient-kan KANLinear (G = 5, k = 3), re-implemented", None),
}
TIME_ONLY = {"clone8_k1024"}


def _progress(message):
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the cases

def units(width_in, width_out, k, seed=0):
    """m, b, a, bias of relu_sum_linear: breakpoints uniform on [-1, 1],
    slopes ±1, a ~ N(0, 1/(I·K)), all requiring grad."""
    g = torch.Generator().manual_seed(seed)
    m = torch.where(torch.rand(width_in, k, generator=g) < 0.5, -1.0, 1.0)
    knots = torch.rand(width_in, k, generator=g) * 2 - 1
    b = -m * knots
    a = torch.randn(width_out, width_in, k, generator=g) / math.sqrt(width_in * k)
    bias = torch.zeros(width_out)
    return [t.requires_grad_() for t in (m, b, a, bias)]


def _layer(name, width):
    """(f, parameters) of a case: f(x) the layer's output."""
    label, k = CASES[name]
    if name == "linear":
        linear = nn.Linear(width, width)
        return (lambda x: torch.relu(linear(x))), list(linear.parameters())
    if name.startswith("relu_ext_"):
        params = units(width, width, k)
        return (lambda x: relu_ext.relu_sum_linear(x, *params, algorithm="auto")), params
    if name.startswith("dense_"):
        params = units(width, width, k)
        f = reference.relu_sum_linear
        if name == "dense_compiled_k64":
            f = torch.compile(f, dynamic=False)
        return (lambda x: f(x, *params)), params
    if name == "pykan":
        from kan.KANLayer import KANLayer

        layer = KANLayer(in_dim=width, out_dim=width)
        return (lambda x: layer(x)[0]), [p for p in layer.parameters() if p.requires_grad]
    if name == "efficient_kan":
        layer = KANLinear(width, width)
        return layer, list(layer.parameters())
    raise ValueError(f"unknown case {name!r}")


def make_step(name, batch, width, seed=0):
    """One forward + backward of the case, ready to run (module-level: the
    memory probe sets it up again in a fresh process)."""
    torch.manual_seed(seed)
    if name == "clone8_k1024":
        a = units(width, width, 1024)[2].detach()

        def step():
            for _ in range(CLONES):
                a.clone()
        return step
    f, params = _layer(name, width)
    x = (torch.rand(batch, width) * 2 - 1).requires_grad_()
    grad = torch.randn(batch, width)
    inputs = [x, *params]

    def step():
        torch.autograd.grad(f(x), inputs, grad)
    return step


def parameter_count(name, width):
    if name == "clone8_k1024":
        return 0
    torch.manual_seed(0)
    return sum(p.numel() for p in _layer(name, width)[1])


class _RecordOps(TorchDispatchMode):
    """The relu_ext ops dispatched while it is active."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func).startswith("relu_ext."):
            self.ops.add(str(func))
        return func(*args, **(kwargs or {}))


def algorithm_run(k, batch, width):
    """Which algorithm relu_sum_linear(algorithm="auto") ran, by the op it
    dispatched: "breakpoints", "dense", or what it saw."""
    x = (torch.rand(batch, width) * 2 - 1).requires_grad_()
    params = units(width, width, k)
    with _RecordOps() as recorder:
        relu_ext.relu_sum_linear(x, *params, algorithm="auto").sum().backward()
    ops = recorder.ops
    if any("relu_sum_linear_breakpoints" in op for op in ops):
        return "breakpoints"
    if any("relu_sum_linear" in op for op in ops):
        return "dense"
    return "unknown (ops: " + (", ".join(sorted(ops)) or "none") + ")"


def predicted_peak_bytes(name, batch, width):
    """A deliberately high estimate of a case's memory, to skip what cannot
    fit rather than have the machine swap."""
    k = CASES[name][1]
    if name == "dense_eager_k64":
        return 8 * batch * width * k * 4   # hinge, its pre-activation, their grads, copies
    if name == "dense_compiled_k64":
        return 4 * batch * width * k * 4
    if name == "pykan":
        return 8 * batch * width * width * 4  # ~6 B·I·O tensors measured (5.9 GB at 4096×256²)
    if name == "efficient_kan":
        return 40 * batch * width * 4 + 20 * width * width * 4
    if k is not None:
        return 8 * width * width * (k + 1) * 4  # a, its grad and the cell tables
    return 8 * batch * width * 4


# --------------------------------------------------------------------------- efficient-kan's checks

def _mlp(widths, final=None):
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


# efficient-kan's issue 23 / the research notes: [784, 256×4, 10], cross-entropy.
MNIST_WIDTHS = [784, 256, 256, 256, 256, 10]
# pykan issue 92 / Jerry-Master/KAN-benchmarking: efficient-kan [1000, 1000, 1]
# against the MLP [1000, 10000, 1] (ReLU, then a sigmoid), MSE, batch 100.
JM_KAN, JM_MLP, JM_BATCH = [1000, 1000, 1], [1000, 10000, 1], 100
PUBLISHED = {
    "params_mnist_kan": 3_998_720,
    "params_jm_kan": 10_010_000,
    "params_jm_mlp": 10_020_001,
    # effkan-cpu / mlp-cpu on an i9-10900X (Jerry-Master's README).
    "time_ratio_forward": 31.98 / 9.77,
    "time_ratio_backward": 44.49 / 7.27,
    # Peak RSS per sample of forward + backward, real efficient-kan code, this
    # machine (research notes): 1,458 MB vs 54 MB at B = 4096; issue 23 (GPU,
    # with a CUDA context each): 14,468 vs 844 MB at B = 36,864.
    "memory_ratio": 1458 / 54,
}


def make_check_step(kind, batch, phase="forward_backward", seed=0):
    """A step of efficient-kan's published comparisons (module-level: the
    memory probe sets it up in a fresh process)."""
    torch.manual_seed(seed)
    if kind in ("mnist_kan", "mnist_mlp"):
        # The weights' values change neither time nor memory: no lstsq fit.
        model = EfficientKAN(MNIST_WIDTHS, fit_noise=False) if kind == "mnist_kan" else _mlp(MNIST_WIDTHS)
        x = torch.rand(batch, 784) * 2 - 1
        target = torch.randint(0, 10, (batch,))
        loss_fn = F.cross_entropy
    else:
        model = EfficientKAN(JM_KAN, fit_noise=False) if kind == "jm_kan" else _mlp(JM_MLP, nn.Sigmoid())
        x = torch.rand(batch, 1000) * 2 - 1
        target = torch.rand(batch, 1)
        loss_fn = F.mse_loss
    params = list(model.parameters())
    if phase == "forward":
        def step():
            with torch.no_grad():
                model(x)
    else:
        def step():
            torch.autograd.grad(loss_fn(model(x), target), params)
    return step


def efficient_kan_checks(quick, rounds, min_run_time, threads, probe):
    _progress("efficient-kan checks: parameter counts, time and memory against an MLP")
    counts = {
        "params_mnist_kan": sum(p.numel() for p in EfficientKAN(MNIST_WIDTHS, fit_noise=False).parameters()),
        "params_jm_kan": sum(p.numel() for p in EfficientKAN(JM_KAN, fit_noise=False).parameters()),
        "params_jm_mlp": sum(p.numel() for p in _mlp(JM_MLP, nn.Sigmoid()).parameters()),
    }
    fns = {(kind, phase): make_check_step(kind, JM_BATCH, phase)
           for kind in ("jm_kan", "jm_mlp") for phase in ("forward", "forward_backward")}
    times = interleaved_medians(fns, rounds, min_run_time, threads)
    backward = {kind: times[(kind, "forward_backward")] - times[(kind, "forward")]
                for kind in ("jm_kan", "jm_mlp")}
    batch = 256 if quick else 4096
    memory = {kind: probe.measure_step(make_check_step, (kind, batch), "cpu", threads)["peak_extra_bytes"]
              for kind in ("mnist_kan", "mnist_mlp")}
    return {
        **counts,
        "time_forward_s": {kind: times[(kind, "forward")] for kind in ("jm_kan", "jm_mlp")},
        "time_backward_s": backward,
        "time_ratio_forward": times[("jm_kan", "forward")] / times[("jm_mlp", "forward")],
        "time_ratio_backward": backward["jm_kan"] / backward["jm_mlp"],
        "memory_batch": batch,
        "memory_peak_extra_bytes": memory,
        "memory_per_sample_bytes": {kind: v / batch for kind, v in memory.items()},
        "memory_ratio": memory["mnist_kan"] / max(memory["mnist_mlp"], 1),
        "published": PUBLISHED,
    }


# --------------------------------------------------------------------------- the run

def run(args):
    header = run_header(threads=args.threads)  # the machine, its load at the start
    sizes = QUICK if args.quick else FULL
    batch, width = sizes["batch"], sizes["width"]
    names = list(CASES) if args.only is None else args.only
    notes = []
    if not hasattr(relu_ext, "relu_sum_linear") and any(n.startswith("relu_ext_") for n in names):
        sys.exit("benchmarks/layer.py: this relu_ext has no relu_sum_linear (a tree before it); "
                 "use --only without the relu_ext_k* cases")
    if "pykan" in names and optional("kan") is None:
        if not args.quick:
            sys.exit("benchmarks/layer.py: pykan (`import kan`) is not installed; it is an anchor "
                     f"of this benchmark: install {BENCH_EXTRA}; or leave it out with --only "
                     "(or use --quick, which skips it)")
        names.remove("pykan")
        notes.append(f"pykan skipped: not installed ({BENCH_EXTRA})")
        _progress(notes[-1])

    cases = {name: {"label": CASES[name][0], "k": CASES[name][1], "status": "ok"} for name in names}
    available = available_memory_bytes()
    for name in names:
        need = predicted_peak_bytes(name, batch, width)
        # Timed here and measured in a child: leave room for both and for the others'.
        if available is not None and 2 * need > available:
            cases[name]["status"] = "skipped"
            cases[name]["reason"] = (f"needs up to {need / 2**30:.1f} GiB, "
                                     f"{available / 2**30:.1f} GiB available")
            _progress(f"{name}: {cases[name]['reason']}")
    runnable = [n for n in names if cases[n]["status"] == "ok"]

    for name in runnable:
        cases[name]["parameters"] = parameter_count(name, width)
        cases[name]["parameter_bytes"] = 4 * cases[name]["parameters"]
        if name.startswith("relu_ext_"):
            cases[name]["algorithm"] = algorithm_run(CASES[name][1], batch, width)
            _progress(f"{name}: algorithm='auto' ran {cases[name]['algorithm']}")

    _progress(f"timing {len(runnable)} cases, {args.rounds} interleaved rounds")
    start = time.perf_counter()
    fns = {name: make_step(name, batch, width) for name in runnable}
    times = interleaved_medians(fns, args.rounds, args.min_run_time, args.threads)
    del fns
    for name, t in times.items():
        cases[name]["time_s"] = t
        _progress(f"{name}: {t * 1e3:.3g} ms")
    _progress(f"timed in {time.perf_counter() - start:.0f} s")

    probe = MemoryProbe()
    if not args.no_memory:
        for name in runnable:
            if name in TIME_ONLY:
                continue
            try:
                measured = probe.measure_step(make_step, (name, batch, width), "cpu", args.threads)
            except RuntimeError as error:
                cases[name]["memory_error"] = str(error)
                _progress(f"{name}: memory measurement failed: {error}")
                continue
            cases[name]["peak_extra_bytes"] = measured["peak_extra_bytes"]
            cases[name]["baseline_bytes"] = measured["baseline_bytes"]
            _progress(f"{name}: peak +{measured['peak_extra_bytes'] / 2**20:.1f} MiB")

    checks = None
    if not args.no_checks:
        checks = efficient_kan_checks(args.quick, args.rounds, args.min_run_time, args.threads, probe)

    doc = {**header,
           "settings": {"quick": args.quick, "batch": batch, "in_features": width,
                        "out_features": width, "ks": list(KS), "dense_k": DENSE_K,
                        "clones": CLONES, "dtype": "float32", "rounds": args.rounds,
                        "min_run_time_s": args.min_run_time,
                        "malloc_keeps_freed_memory": args.reused},
           "notes": notes, "cases": cases, "efficient_kan_checks": checks}
    doc["ratios"] = ratios(doc)
    return doc


# --------------------------------------------------------------------------- ratios and report

def _get(doc, name, key):
    case = doc["cases"].get(name)
    return None if case is None else case.get(key)


def allowance_bytes(doc, k):
    """The memory relu_ext at K may use: 1.5 × Linear + ReLU's peak, plus a
    and its gradient (O·I·K floats each) and the four cell tables α, β, S0,
    S1 of the breakpoint algorithm (O·I·(K + 1) floats each)."""
    linear = _get(doc, "linear", "peak_extra_bytes")
    if linear is None:
        return None
    o = i = doc["settings"]["in_features"]
    return 1.5 * linear + 4 * (2 * o * i * k + 4 * o * i * (k + 1))


def ratios(doc):
    """[{what, value, target, met}]: the figures docs/contract.md holds
    relu_sum_linear to, and the anchors for context."""
    out = []

    def add(what, num, den, target=None, at_least=None):
        if num is None or den is None or den == 0:
            return
        value = num / den
        met = None if target is None else (value >= target if at_least else value <= target)
        out.append({"what": what, "value": value,
                    "target": None if target is None else ("≥ " if at_least else "≤ ") + f"{target:g}",
                    "met": met})

    t, mem = "time_s", "peak_extra_bytes"
    for k in (8, 64):
        add(f"time: relu_ext K = {k} / nn.Linear + ReLU", _get(doc, f"relu_ext_k{k}", t),
            _get(doc, "linear", t), 4, False)
    k1024, k8, clones = (_get(doc, n, t) for n in ("relu_ext_k1024", "relu_ext_k8", "clone8_k1024"))
    if None not in (k1024, k8, clones):
        add(f"time: relu_ext K = 1024 / (K = 8 + {CLONES} × a.clone())", k1024, k8 + clones, 1, False)
    for k in KS:
        peak = _get(doc, f"relu_ext_k{k}", mem)
        allowance = allowance_bytes(doc, k)
        if peak is not None and allowance is not None:
            a_bytes = 4 * doc["settings"]["in_features"] * doc["settings"]["out_features"] * k
            add(f"memory: relu_ext K = {k} (peak + a) / allowance", peak + a_bytes, allowance, 1, False)
    for name, what in (("dense_eager_k64", "dense eager"), ("dense_compiled_k64", "dense torch.compile")):
        add(f"time: {what} / relu_ext, K = 64", _get(doc, name, t), _get(doc, "relu_ext_k64", t), 10, True)
        add(f"memory: {what} / relu_ext, K = 64", _get(doc, name, mem), _get(doc, "relu_ext_k64", mem),
            10, True)
    add("time: pykan KANLayer / relu_ext K = 8", _get(doc, "pykan", t), _get(doc, "relu_ext_k8", t), 50, True)
    add("memory: pykan KANLayer / relu_ext K = 8", _get(doc, "pykan", mem), _get(doc, "relu_ext_k8", mem),
        20, True)
    add("time: efficient-kan / relu_ext K = 8", _get(doc, "efficient_kan", t), _get(doc, "relu_ext_k8", t))
    add("memory: efficient-kan / relu_ext K = 8", _get(doc, "efficient_kan", mem),
        _get(doc, "relu_ext_k8", mem))
    return out


def _time(seconds):
    if seconds is None:
        return "—"
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def _bytes(count):
    if count is None:
        return "—"
    if count == 0:
        return "0 B"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count:.0f} B"


def _peak(count):
    """A measured peak: below the resolution of the measurement, only a bound."""
    return f"< {_bytes(RESOLUTION_BYTES)}" if count < RESOLUTION_BYTES else _bytes(count)


def report(doc):
    s, machine = doc["settings"], doc["machine"]
    linear_t, linear_m = _get(doc, "linear", "time_s"), _get(doc, "linear", "peak_extra_bytes")
    lines = [
        f"### A KAN layer: forward + backward, B = {s['batch']:,}, I = O = {s['in_features']}, float32"
        + (" (--quick: checks the script, not a measurement)" if s["quick"] else ""),
        "",
        f"{machine['cpu_model']}, CPU kernels `{machine['relu_ext'].get('cpu_isa', '?')}`, "
        f"{machine['threads']} threads, torch {machine['torch']}, load average "
        f"{machine['load_average_at_start'][0]:.2f} at the start, "
        f"{machine.get('load_average_at_end', [float('nan')])[0]:.2f} at the end; commit {doc['code']}; "
        f"`{doc['command']}`. Step: y = layer(x), then the gradients of x and of every "
        "parameter. Time: medians of interleaved rounds in one process; memory: peak above "
        "the step's set-up (inputs and parameters) in a fresh process. × Linear: over "
        "nn.Linear + ReLU's.",
        "",
        "| case | algorithm | time | × Linear | peak memory | × Linear | parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, case in doc["cases"].items():
        if case["status"] != "ok":
            lines.append(f"| {case['label']} | | skipped: {case['reason']} | | | | |")
            continue
        t, m = case.get("time_s"), case.get("peak_extra_bytes")
        lines.append(
            f"| {case['label']} | {case.get('algorithm', '')} | {_time(t)} | "
            f"{'' if t is None or not linear_t else f'{t / linear_t:.3g}×'} | "
            f"{_peak(m) if m is not None else case.get('memory_error', '—' if name not in TIME_ONLY else 'not measured')} | "
            f"{'' if m is None or not linear_m else f'{m / linear_m:.3g}×'} | "
            f"{case.get('parameters', 0):,} ({_bytes(case.get('parameter_bytes', 0))}) |")
    for note in doc.get("notes", []):
        lines += ["", f"Note: {note}."]
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for r in doc["ratios"]:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['what']} | {r['value']:.3g} | {r['target'] or '(context)'} | {met} |")
    o = i = s["in_features"]
    lines += [
        "",
        "Memory allowance of relu_ext at K: 1.5 × nn.Linear + ReLU's peak "
        f"({_bytes(linear_m)}) + 4 bytes × (2·O·I·K + 4·O·I·(K + 1)): a and its gradient, and "
        "the breakpoint algorithm's cell tables α, β, S0, S1. a is set up before the peak is "
        "measured, so its bytes are added to the peak before the comparison: "
        + "; ".join(f"K = {k}: peak {_bytes(_get(doc, f'relu_ext_k{k}', 'peak_extra_bytes'))} "
                    f"+ a {_bytes(4 * o * i * k)} against {_bytes(allowance_bytes(doc, k))}"
                    for k in s["ks"] if _get(doc, f"relu_ext_k{k}", "peak_extra_bytes") is not None)
        + ".",
    ]
    checks = doc.get("efficient_kan_checks")
    if checks:
        p = checks["published"]
        lines += [
            "",
            "efficient-kan re-implementation (benchmarks/anchors/efficient_kan.py) against its "
            "published figures:",
            "",
            "| check | here | published |",
            "|---|---|---|",
            f"| parameters, KAN [784, 256, 256, 256, 256, 10] | {checks['params_mnist_kan']:,} | "
            f"{p['params_mnist_kan']:,} |",
            f"| parameters, KAN [1000, 1000, 1] | {checks['params_jm_kan']:,} | {p['params_jm_kan']:,} |",
            f"| parameters, MLP [1000, 10000, 1] | {checks['params_jm_mlp']:,} | {p['params_jm_mlp']:,} |",
            f"| CPU forward, KAN [1000, 1000, 1] / MLP [1000, 10000, 1], batch {JM_BATCH} | "
            f"{checks['time_ratio_forward']:.3g}× ({_time(checks['time_forward_s']['jm_kan'])} / "
            f"{_time(checks['time_forward_s']['jm_mlp'])}) | {p['time_ratio_forward']:.3g}× "
            "(i9-10900X, Jerry-Master/KAN-benchmarking) |",
            f"| CPU backward, same | {checks['time_ratio_backward']:.3g}× "
            f"({_time(checks['time_backward_s']['jm_kan'])} / {_time(checks['time_backward_s']['jm_mlp'])}) | "
            f"{p['time_ratio_backward']:.3g}× |",
            f"| forward + backward memory, KAN / MLP [784, 256×4, 10], cross-entropy, "
            f"B = {checks['memory_batch']:,} | {checks['memory_ratio']:.3g}× "
            f"({_bytes(checks['memory_peak_extra_bytes']['mnist_kan'])} / "
            f"{_bytes(checks['memory_peak_extra_bytes']['mnist_mlp'])}; "
            f"{checks['memory_per_sample_bytes']['mnist_kan'] / 1e6:.3g} MB / "
            f"{checks['memory_per_sample_bytes']['mnist_mlp'] / 1e6:.3g} MB a sample) | "
            f"~{p['memory_ratio']:.0f}× (0.357 / 0.014 MB a sample, the original code on this "
            "machine's kind; issue 23: 14,468 / 844 MB on a GPU) |",
        ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Defaults: 3 rounds of 0.5 s; --quick: 1 of 0.05 s.
    add_timing_options(parser, rounds=None, min_run_time=None)
    parser.add_argument("--quick", action="store_true",
                        help=f"B = {QUICK['batch']}, I = O = {QUICK['width']}: checks the script")
    parser.add_argument("--only", type=lambda s: [n for n in s.split(",") if n],
                        help="comma-separated cases: " + ", ".join(CASES))
    parser.add_argument("--no-memory", action="store_true", help="time only")
    parser.add_argument("--no-checks", action="store_true", help="skip efficient-kan's checks")
    parser.add_argument("--json", type=Path, default=RESULTS / "layer.json")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: the tables from --json")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.min_run_time is None:
        args.min_run_time = 0.05 if args.quick else 0.5
    unknown = set(args.only or ()) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {', '.join(sorted(unknown))}; known: {', '.join(CASES)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        print(report(json.loads(args.json.read_text())))
        return
    torch.set_num_threads(args.threads)
    args.reused = keep_freed_memory()
    start = time.perf_counter()
    doc = run(args)
    save(args.json, doc)
    print(report(doc))
    _progress(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
