"""What the ONNX export of ReLUSum costs: onnxruntime running the exported
graph (the reference in standard ONNX ops, relu_ext/ops/_onnx.py) against the
fused op and the eager reference, forward only, float32, CPU.

    python benchmarks/onnx_export.py            # prints a table
    python benchmarks/onnx_export.py --quick    # N = 1000, K = 4: checks the script

Time: medians of interleaved rounds of torch.utils.benchmark blocks, in one
process, with onnxruntime given the same number of intra-op threads as torch.
Memory: the peak rise of the resident set during one run in a fresh process,
after a warm-up (as benchmarks/memory.py measures, with onnxruntime's memory
arena off so that its buffers are returned and counted again): the memory
that run needs beyond its inputs and model. Writes
benchmarks/results/onnx_export.json.
"""

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnxruntime  # noqa: E402

import relu_ext  # noqa: E402
from common import (RESULTS, add_timing_options, cpu_model, interleaved_medians,  # noqa: E402
                    run_header, save)
from memory import MemoryProbe  # noqa: E402

MiB = 2**20


def export(k):
    """The ONNX model (bytes) of ReLUSum(k), with a dynamic length."""
    torch.manual_seed(0)
    model = relu_ext.ReLUSum(k, algorithm="dense").eval()
    program = torch.onnx.export(model, (torch.randn(16),), dynamo=True, verbose=False,
                                dynamic_shapes=({0: torch.export.Dim("n")},))
    return model, program.model_proto.SerializeToString()


def session(onnx_bytes, threads):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    # Idle onnxruntime threads would spin, taking the cores from torch's.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def steps(model, onnx_bytes, n, threads):
    """The three forwards on the same input, as zero-argument callables."""
    x = 2 * torch.randn(n)
    sess = session(onnx_bytes, threads)
    feed = {sess.get_inputs()[0].name: x.numpy()}
    m, b, a = (p.detach() for p in (model.m, model.b, model.a))
    return {
        "relu_ext.relu_sum (fused)": lambda: relu_ext.relu_sum(x, m, b, a, algorithm="dense"),
        "onnxruntime, exported graph": lambda: sess.run(None, feed),
        "reference, eager": lambda: relu_ext.reference.relu_sum(x, m, b, a),
    }


def measure_time(model, onnx_bytes, n, threads, rounds, min_run_time):
    with torch.no_grad():
        fns = steps(model, onnx_bytes, n, threads)
        return interleaved_medians(fns, rounds, min_run_time, threads)


def _memory_step(name, model, onnx_bytes, n, threads):
    fn = steps(model, onnx_bytes, n, threads)[name]

    def step():
        with torch.no_grad():
            fn()
    return step


def measure_peak(probe, name, model, onnx_bytes, n, threads):
    return probe.measure_step(_memory_step, (name, model, onnx_bytes, n, threads), "cpu",
                              threads)["peak_extra_bytes"]


def table(n, results, threads):
    lines = [
        f"### ONNX export: onnxruntime {onnxruntime.__version__} on the exported ReLUSum, forward, N = {n}, float32",
        "",
        f"{cpu_model()}, {threads} threads (torch and onnxruntime), torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}; time: medians of interleaved rounds in one process; "
        "memory: peak rise of the resident set in one run, in a fresh process "
        "(`python benchmarks/onnx_export.py`). The exported graph is the reference "
        "(`Relu(x·m + b)·a` summed over K), so it holds N×K activations.",
        "",
        "| K | implementation | time | time / fused | peak memory above inputs |",
        "|---|---|---|---|---|",
    ]
    for k, (medians, peaks) in results.items():
        fused = medians["relu_ext.relu_sum (fused)"]
        for name, t in medians.items():
            lines.append(f"| {k} | {name} | {t * 1e3:.2f} ms | {t / fused:.2f}× | "
                         f"{peaks[name] / MiB:.1f} MiB |")
    sizes = ", ".join(f"{n * k * 4 / MiB:.0f} MiB at K = {k}" for k in results)
    lines += ["", f"One N×K float32 tensor: {sizes}. Memory resolution: about 0.1 MiB."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=262_144)
    parser.add_argument("--k", type=int, nargs="+", default=[16, 256])
    add_timing_options(parser, rounds=3, min_run_time=0.5)
    parser.add_argument("--quick", action="store_true",
                        help="N = 1000, K = 4, one short round: checks the script")
    parser.add_argument("--json", type=Path, default=RESULTS / "onnx_export.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.k, args.rounds, args.min_run_time = 1000, [4], 1, 0.01
    torch.set_num_threads(args.threads)
    doc = {**run_header(threads=args.threads), "onnxruntime": onnxruntime.__version__,
           "n": args.n, "ks": args.k, "rounds": args.rounds, "min_run_time_s": args.min_run_time}
    probe = MemoryProbe()
    results = {}
    for k in args.k:
        model, onnx_bytes = export(k)
        medians = measure_time(model, onnx_bytes, args.n, args.threads, args.rounds,
                               args.min_run_time)
        peaks = {name: measure_peak(probe, name, model, onnx_bytes, args.n, args.threads)
                 for name in medians}
        results[k] = (medians, peaks)
    doc["results"] = [{"k": k, "implementation": name, "median_s": t,
                       "peak_extra_bytes": peaks[name]}
                      for k, (medians, peaks) in results.items() for name, t in medians.items()]
    save(args.json, doc)
    print(table(args.n, results, args.threads))


if __name__ == "__main__":
    main()
