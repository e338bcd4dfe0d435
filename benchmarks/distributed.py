"""fit() in one process against two under torchrun: time per epoch on a large
problem (N = 2^20 points, K = 256 units, one thread per process), with the
cost of the all-reduces that DDP and fit() add per step.

    python benchmarks/distributed.py            # prints a table
    python benchmarks/distributed.py --quick    # N = 16,384, K = 16: checks the script

(--points and --units, not --n and --k: torchrun, which this script launches
itself under, would take --n for its own --nnodes.) Every configuration runs in
a fresh process (or torchrun group), in interleaved rounds; the table gives the
median epoch time over all rounds and the speedup over one process with one
thread, taken in this one run. Writes benchmarks/results/distributed.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import RESULTS, cpu_model, run_header, save  # noqa: E402

LIMITS = """What limits scaling here: the two cores are all there is, and other jobs share
them (the load average above), so two processes, or two threads, compete for them with
everything else; gloo's all-reduce goes through the kernel's TCP stack on those same cores,
and with 768 parameters it is pure latency, paid twice per step (DDP's gradients, and the
batch loss that keeps every rank's History and NaN stop equal), so fewer, larger steps
(a larger global batch) scale better than many small ones. On separate machines or GPUs,
the compute per rank shrinks with W while the all-reduce of a few KiB stays constant."""

# (processes, threads per process)
CONFIGS = [(1, 1), (2, 1), (1, 2)]


class _Timed(torch.nn.Module):
    """The model, noting when each training step starts: epoch times without
    fit()'s setup and final loss."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.starts = []

    def forward(self, x):
        if torch.is_grad_enabled():
            self.starts.append(time.perf_counter())
        return self.model(x)


def _allreduce_seconds(numel, repeats=200):
    import torch.distributed as dist

    tensor = torch.zeros(numel)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(tensor)
    return (time.perf_counter() - start) / repeats


def worker(args):
    """One process (one rank): fit, and report epoch times (and, with several
    ranks, all-reduce latencies) as JSON."""
    import torch.distributed as dist

    import relu_ext
    from relu_ext import distributed

    torch.set_num_threads(args.threads)
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    if ranks > 1:
        distributed.process_group("cpu")  # fit() uses it; kept for the all-reduce timing
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.points, generator=g) * 4 - 2
    y = torch.sin(3 * x) + 0.1 * torch.randn(args.points, generator=g)
    torch.manual_seed(0)
    model = _Timed(relu_ext.ReLUSum(args.units, input_range=(-2.0, 2.0)))
    batch = args.batch_size or args.points
    steps = -(-args.points // batch)
    relu_ext.fit(model, x, y, epochs=args.epochs, lr=1e-3, batch_size=args.batch_size,
                 seed=0, progress=False)
    epoch_starts = model.starts[::steps] + [model.starts[-1]]
    # The first epoch warms up (allocations, gloo's first messages); the last
    # ends at its last step's start, so it is left out too.
    epochs = [b - a for a, b in zip(epoch_starts[1:-2], epoch_starts[2:-1])]
    result = {"epoch_s": statistics.median(epochs), "steps": steps}
    # Work every rank repeats whatever the group's size: the epoch's shuffle.
    start = time.perf_counter()
    torch.randperm(args.points, generator=torch.Generator().manual_seed(0))
    result["shuffle_s"] = time.perf_counter() - start
    if ranks > 1:
        params = sum(p.numel() for p in model.parameters())
        result["allreduce_scalar_s"] = _allreduce_seconds(1)
        result["allreduce_params_s"] = _allreduce_seconds(params)
        result["params"] = params
        dist.barrier()
        dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.out).write_text(json.dumps(result))


def launch(processes, threads, args, out):
    options = ["--worker", "--threads", str(threads), "--points", str(args.points),
               "--units", str(args.units), "--epochs", str(args.epochs), "--out", out]
    if args.batch_size:
        options += ["--batch-size", str(args.batch_size)]
    script = os.path.abspath(__file__)
    if processes == 1:
        command = [sys.executable, script, *options]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={processes}", script, *options]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(Path(out).read_text())


def measure(args):
    runs = {config: [] for config in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for config in CONFIGS:
                runs[config].append(launch(*config, args, os.path.join(tmp, "result.json")))
    return runs


def header(args):
    return "\n".join([
        f"### fit() under torchrun: N = {args.points:,} points, K = {args.units} units",
        "",
        f"{cpu_model()}, {os.cpu_count()} logical CPUs (shared with other jobs), torch "
        f"{torch.__version__}, gloo over localhost, load average {os.getloadavg()[0]:.2f} at the "
        f"end; median epoch time of {args.rounds} interleaved rounds of {args.epochs} epochs, "
        "each configuration in fresh processes (`python benchmarks/distributed.py`).",
    ])


def table(args, runs):
    median = {c: statistics.median(r["epoch_s"] for r in runs[c]) for c in CONFIGS}
    base = median[(1, 1)]
    two = runs[(2, 1)]
    steps = two[0]["steps"]
    batch = args.batch_size or args.points
    scalar = statistics.median(r["allreduce_scalar_s"] for r in two)
    params = statistics.median(r["allreduce_params_s"] for r in two)
    lines = [
        f"Global batch {batch:,}, {steps} step{'s' if steps > 1 else ''} per epoch:",
        "",
        "| processes × threads | time per epoch | speedup vs 1 × 1 |",
        "|---|---|---|",
    ]
    for processes, threads in CONFIGS:
        t = median[(processes, threads)]
        lines.append(f"| {processes} × {threads} | {t * 1e3:.1f} ms | {base / t:.2f}× |")
    lines += [
        "",
        f"Per step, 2 ranks add two gloo all-reduces: the batch loss (1 value, "
        f"{scalar * 1e6:.0f} µs) and DDP's gradient bucket ({two[0]['params']} values, "
        f"{params * 1e6:.0f} µs), {(scalar + params) * steps * 1e3:.1f} ms per epoch "
        f"({(scalar + params) * steps / median[(2, 1)]:.0%} of the 2-process epoch)"
        + (f"; every rank also draws the whole epoch's shuffle "
           f"({statistics.median(r['shuffle_s'] for r in two) * 1e3:.1f} ms) and gathers its "
           "samples by index." if steps > 1 else "; the full batch is not shuffled."),
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=2 ** 20)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[65536, 0],
                        help="global batches to time; 0 for the full batch")
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)  # a worker's
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="N = 16,384, K = 16, 4 epochs, one round: checks the script")
    parser.add_argument("--json", type=Path, default=RESULTS / "distributed.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.batch_size = args.batch_size or None
        return worker(args)
    if args.quick:
        args.points, args.units, args.epochs, args.rounds = 2**14, 16, 4, 1
        args.batch_sizes = [4096, 0]
    doc = {**run_header(threads=1), "points": args.points, "units": args.units,
           "epochs": args.epochs, "rounds": args.rounds, "results": []}
    tables = []
    for batch_size in args.batch_sizes:
        args.batch_size = batch_size or None
        runs = measure(args)
        doc["results"].append({"batch_size": batch_size or args.points, "runs": [
            {"processes": p, "threads": t, "per_round": runs[(p, t)]} for p, t in CONFIGS]})
        tables.append(table(args, runs))
    save(args.json, doc)
    print("\n\n".join([header(args), *tables, LIMITS]))


if __name__ == "__main__":
    main()
