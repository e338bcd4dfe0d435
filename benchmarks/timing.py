"""Time cases with torch.utils.benchmark: median, interquartile range and best
of blocks of runs, after a warm-up that absorbs torch.compile's compilation.

On a shared machine another process can hold one of the CPUs for a while, and
then every parallel region waits for its preempted thread, in steps of the
scheduler's tick: a case timed only during such a spell comes out several
times too slow. The blocks of a case are therefore taken in rounds, spread
over the time the whole size takes, and summarised together.
"""

import ctypes
import statistics
import time
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark

from cases import synchronize


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


def add_interleaved_options(parser, rounds, min_run_time):
    """The options of a script timed by interleaved_medians, with its defaults
    for the rounds and the block length: --rounds, --min-run-time, --threads
    and --results-md."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--min-run-time", type=float, default=min_run_time)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--results-md", type=Path, help="write the section into this RESULTS.md")


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
