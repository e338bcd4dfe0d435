"""What several benchmark scripts share: where results go, what the machine
was, timing in interleaved rounds, and running a competitor (pwlf) in a child
process with a time cap. Each script imports what it needs from here; nothing
here writes a report."""

import importlib
import json
import multiprocessing
import os
import platform
import queue as queue_module
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark

import relu_ext

RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------- the machine

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device="cpu", threads=None):
    """What the figures were measured on, recorded with them in the JSON."""
    info = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": torch.get_num_threads() if threads is None else threads,
        "device": device,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "relu_ext": relu_ext.build_info(),
        # Other processes' demand on the CPUs while the benchmark ran.
        "load_average_at_start": list(os.getloadavg()),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def code_version():
    """The commit measured, flagged when relu_ext/ or csrc/ differ from it."""
    root = Path(__file__).resolve().parents[1]

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip()
    if not commit:
        return "unknown (not a git checkout)"
    changed = git("diff", "--quiet", "HEAD", "--", "relu_ext", "csrc").returncode != 0
    return commit + (" with local changes to relu_ext/ or csrc/" if changed else "")


def run_header(device="cpu", threads=None):
    """The start of a result file: the command, the commit and the machine."""
    return {"command": "python " + " ".join(sys.argv), "code": code_version(),
            "machine": machine_info(device, threads)}


def save(path, doc):
    """Writes a result file (JSON), noting the load average at the end."""
    doc.get("machine", {})["load_average_at_end"] = list(os.getloadavg())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing

def interleaved_medians(fns, rounds, min_run_time, threads):
    """{name: median seconds of fns[name]()}: each function warmed up once, then
    timed in `rounds` rounds that take every function in turn, so a spell of
    load on the shared machine falls on all of them alike."""
    blocks = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in fns.items():
            timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=threads)
            blocks[name] += timer.blocked_autorange(min_run_time=min_run_time).times
    return {name: statistics.median(times) for name, times in blocks.items()}


def add_timing_options(parser, rounds, min_run_time):
    """--rounds, --min-run-time and --threads of a script timed by
    interleaved_medians, with its defaults."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--min-run-time", type=float, default=min_run_time)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())


def add_output_options(parser, json_path):
    """--threads, --json and --report-only of a script that measures for
    minutes and can re-render its table from the JSON it wrote."""
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads (all logical CPUs)")
    parser.add_argument("--json", type=Path, default=json_path)
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: the tables from --json")


# --------------------------------------------------------------------------- competitors

def optional(name):
    """The module, or None when it (or something it needs) is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def run_child(target, args, cap):
    """``target(*args, queue)`` in a forked child process, ended after ``cap``
    seconds: its dict, or {"capped": cap}, or {"failed": ...}."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    deadline = time.monotonic() + cap
    result = None
    while result is None and time.monotonic() < deadline:
        try:
            result = queue.get(timeout=0.2)
        except queue_module.Empty:
            if not child.is_alive():  # it may have put its result just before exiting
                try:
                    result = queue.get(timeout=1.0)
                except queue_module.Empty:
                    break
    child.join(5)
    if child.is_alive():
        child.terminate()
        child.join()
    if result is None:
        return {"capped": cap} if time.monotonic() >= deadline else {"failed": child.exitcode}
    return result
