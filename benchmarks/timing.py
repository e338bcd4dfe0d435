"""Time one case with torch.utils.benchmark: median and interquartile range of
blocks of runs, after a warm-up that absorbs torch.compile's compilation."""

import time

import torch.utils.benchmark as benchmark

from cases import synchronize


def time_case(case, device, threads, min_run_time):
    """Returns the first call's time (compilation, lazy initialisation) and the
    steady-state statistics of the following calls, in seconds.

    The Timer runs the step in blocks and divides each block's time by its
    number of runs; on CUDA it synchronises the device around every block, so
    the figures are device time, not launch time.
    """
    start = time.perf_counter()
    case.step()
    synchronize(device)
    first_call = time.perf_counter() - start

    timer = benchmark.Timer(stmt="step()", globals={"step": case.step}, num_threads=threads)
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return {
        "median_s": measurement.median,
        "iqr_s": measurement.iqr,
        # The least disturbed block: on a shared machine, closer to what the
        # code can do than the median, which includes others' interference.
        "min_s": min(measurement.times),
        "blocks": len(measurement.times),
        "runs": len(measurement.times) * measurement.number_per_run,
        "first_call_s": first_call,
    }
