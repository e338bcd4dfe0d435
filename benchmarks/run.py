"""Speed and memory of relu_ext's fused kernels against the pure-PyTorch
reference in eager mode and under torch.compile.

    python benchmarks/run.py                  # the default grid (minutes)
    python benchmarks/run.py --quick          # a small grid, for CI (< 1 min)
    make bench                                # the default grid, and RESULTS.md

Prints a markdown table on stdout (progress goes to stderr) and writes to
--out-dir: results.json, time_vs_k.png and memory_vs_n.png.

The grid is two sweeps and a few single sizes: K over --ks at N = --at-n
(the time-vs-K plot), N over --ns at K = --at-k (the memory-vs-N plot), and
--sizes (the lesson's 20×8 by default). Every size runs every implementation
and phase. Each case is timed in this process, in the order size → phase →
implementation, so that the implementations of one size are timed close
together (the ratios between them are what the noise of a shared machine
disturbs least). After all timings, each case's memory is measured in a fresh
process of its own.

The JSON holds "machine" (CPU, threads, torch, relu_ext.build_info(), load),
"settings" (the grid and options), "fma_peak_gflops" and its source,
"flops_per_pair", "implementations" (name → label), and "results": one record
per case with impl, phase, n, k, status ("ok" or "skipped", with reason),
predicted_peak_bytes, time (median_s, iqr_s, min_s, blocks, runs,
first_call_s),
g_pairs_per_s, fma_peak_fraction, memory (peak_extra_bytes, baseline_bytes),
and time_error / memory_error when a measurement failed.
"""

import os

# Inductor compiles in a pool of worker processes by default; every fresh
# memory-measuring process would start its own. Compiling in-process is as
# fast for these small graphs and keeps the two cores for the measurements.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import report  # noqa: E402
import sections  # noqa: E402
from cases import FLOPS_PER_PAIR, IMPLEMENTATIONS, PHASES, make_case, predicted_peak_bytes  # noqa: E402
from fma_peak import measure_fma_peak_gflops  # noqa: E402
from machine import machine_info  # noqa: E402
from memory import RESOLUTION_BYTES, MemoryProbe, available_memory_bytes, cpu_peak_measurable  # noqa: E402
from timing import summarize, time_blocks, warm_up  # noqa: E402

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
    "sizes": [report.LESSON_SIZE],
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
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="where results.json and the plots go (default: benchmarks/results)")
    parser.add_argument("--results-md", type=Path,
                        help="also write this markdown report (benchmarks/RESULTS.md)")
    parser.add_argument("--note", default="",
                        help="the conditions of the run, quoted in the markdown report")
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
        "schema_version": 1,
        "machine": machine_info(args.device, args.threads),
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
    doc["machine"]["load_average_at_end"] = list(os.getloadavg())
    phase_order = {p: i for i, p in enumerate(args.phases)}
    impl_order = {name: i for i, name in enumerate(args.impls)}
    records.sort(key=lambda r: (phase_order[r["phase"]], r["n"], r["k"], impl_order[r["impl"]]))
    doc["results"] = records
    return doc


def _time_size(args, dtype, dtype_peak, budget, n, k):
    """Times every phase and implementation at one size, in --rounds rounds
    over all of them (see timing.py for why)."""
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
        _progress(f"{_name(record)}: {report.format_time(timing['median_s'])} "
                  f"(IQR {report.format_time(timing['iqr_s'])})")
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
        record["reason"] = f"skipped (predicted {report.format_bytes(predicted)})"
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
        record["memory"] = probe.measure(record["impl"], record["phase"], record["n"],
                                         record["k"], args.device, dtype, args.threads)
    except RuntimeError as error:
        record["memory_error"] = str(error)
        _progress(f"{name}: memory measurement failed: {error}")
        return
    _progress(f"{name}: peak +{report.format_bytes(record['memory']['peak_extra_bytes'])}")


def write_outputs(args, doc):
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report.write_json(doc, args.out_dir / "results.json")
    report.plot_time_vs_k(doc, args.out_dir / "time_vs_k.png")
    report.plot_memory_vs_n(doc, args.out_dir / "memory_vs_n.png")
    if args.results_md is not None:
        # Links relative to the markdown file, so they work wherever it is viewed.
        where = Path(os.path.relpath(args.out_dir.resolve(), args.results_md.resolve().parent))
        page = report.results_markdown(
            doc, (where / "time_vs_k.png").as_posix(), (where / "memory_vs_n.png").as_posix(),
            (where / "results.json").as_posix(), args.note)
        # The other scripts' sections stay (benchmarks/sections.py).
        kept = sections.sections(args.results_md.read_text()) if args.results_md.exists() else []
        args.results_md.write_text("\n\n".join([page.rstrip("\n"), *kept]) + "\n")


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    doc = run(args)
    write_outputs(args, doc)
    print(report.table_markdown(doc))
    _progress(f"done in {time.perf_counter() - start:.0f} s; results in {args.out_dir}")


if __name__ == "__main__":
    main()
