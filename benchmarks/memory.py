"""Peak memory of one step, measured in a fresh process (benchmarks/run.py,
per_channel.py, half_precision.py and onnx_export.py use it).

The child sets the step up (inputs, model, one warm-up call, which also
compiles), then resets its peak counter, runs the case once and reports how
far the peak rose above the level it was reset at: the memory the case needs
beyond its inputs.

- CPU: the peak resident set size, VmHWM in /proc/self/status, reset by
  writing 5 to /proc/self/clear_refs (Linux). glibc's malloc would otherwise
  keep memory freed by the warm-up resident and hand it out again, hiding it
  from the measured call; the child therefore fixes malloc's mmap threshold
  at one page, so that every larger allocation is a mapping of its own,
  returned to the system when freed and counted again when mapped anew.
  Resolution: the kernel counts resident pages per CPU in batches, so the
  figures are good to about RESOLUTION_BYTES; smaller ones mean "O(1)".
- CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats.

Processes come from a forkserver that has imported torch and relu_ext once,
so each child is fresh (its own heap, no earlier case in it) but starts in
milliseconds rather than the seconds an import of torch takes. The step is
set up by a module-level function of the calling script, which each child
imports again by name.
"""

import ctypes
import multiprocessing
import os

import torch

# One page: every allocation of a page or more is mapped on its own. The many
# mmap calls slow the measured call down, which does not matter here (it is
# not the timed one).
_MMAP_THRESHOLD_BYTES = 4096
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
# Measured on Linux 6.18 with 2 CPUs: a 64 KiB tensor read as 48-60 KiB,
# 256 KiB as 184 KiB, and an empty step as up to ~100 KiB.
RESOLUTION_BYTES = 128 * 1024


def _fix_mmap_threshold():
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc: measure without it
        return False


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _peak_above(step, device):
    """(peak bytes above the level before the call, that level): step() once
    more after its setup and warm-up."""
    if device == "cpu":
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        baseline = _status_bytes("VmRSS")
        step()
        peak = _status_bytes("VmHWM")
    else:
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    return max(peak - baseline, 0), baseline


def _measure_step(make_step, args, device, threads):
    """The memory of make_step(*args)(), a step set up and warmed up in this
    process."""
    torch.set_num_threads(threads)
    fixed_threshold = _fix_mmap_threshold() if device == "cpu" else None
    step = make_step(*args)
    step()
    synchronize(device)
    extra, baseline = _peak_above(step, device)
    return {
        "peak_extra_bytes": extra,
        "baseline_bytes": baseline,
        "malloc_mmap_threshold_fixed": fixed_threshold,
    }


def _child(connection, *args):
    try:
        connection.send(("ok", _measure_step(*args)))
    except BaseException as error:  # reported to the parent, which records it
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


class MemoryProbe:
    """Measures steps one at a time, each in a new process."""

    def __init__(self, timeout_s=600):
        self.timeout_s = timeout_s
        self._context = multiprocessing.get_context("forkserver")
        # torch._dynamo and Inductor take seconds to import: once, here.
        self._context.set_forkserver_preload(
            ["torch", "relu_ext", "torch._dynamo", "torch._inductor.compile_fx"])

    def measure_step(self, make_step, args, device, threads):
        """The peak memory, above its setup, of the step that make_step(*args)
        sets up and returns, as a dict; or raises RuntimeError with the
        child's error or exit status. make_step must be importable by name (a
        module-level function)."""
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_child, args=(sender, make_step, args, device, threads)
        )
        process.start()
        sender.close()
        try:
            if not receiver.poll(self.timeout_s):
                process.kill()
                raise RuntimeError(f"no result within {self.timeout_s} s")
            status, payload = receiver.recv()
        except EOFError:  # died without a word: killed, e.g. out of memory
            process.join()
            raise RuntimeError(f"the measuring process died (exit status {process.exitcode})")
        finally:
            receiver.close()
            process.join()
        if status != "ok":
            raise RuntimeError(payload)
        return payload


def available_memory_bytes():
    """MemAvailable from /proc/meminfo (Linux), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_peak_measurable():
    return os.path.exists("/proc/self/clear_refs")
