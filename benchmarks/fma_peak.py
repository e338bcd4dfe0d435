"""The machine's FP32 FMA peak, measured: the yardstick for "fraction of peak"
in benchmarks/run.py's table. `python benchmarks/fma_peak.py` prints it.

A tiny C loop of independent vector FMA chains, compiled for this CPU with
-O3 -march=native and run on as many threads as torch uses. Enough chains
hide the FMA latency on every current x86 core (4 cycles × 2 pipes needs 8),
and few enough fit the register file (16 ymm on AVX2 machines). The C file
is compiled with the system's C compiler, not through torch's extension
builder: it needs no torch headers and builds in well under a second.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading

_SOURCE = r"""
#include <time.h>

#if defined(__AVX512F__)
#define VEC_BYTES 64
#elif defined(__AVX__)
#define VEC_BYTES 32
#else
#define VEC_BYTES 16
#endif
#define CHAINS 12

typedef float vec __attribute__((vector_size(VEC_BYTES)));

int fma_lanes(void) { return VEC_BYTES / (int)sizeof(float); }
int fma_chains(void) { return CHAINS; }

/* acc = acc * mul + add on CHAINS independent vectors. The values converge
   to add / (1 - mul) and stay finite; they start from a run-time seed and are
   summed into *sink, so the compiler can neither fold a chain nor drop the
   loop. Returns the loop's wall-clock time in seconds. */
double fma_seconds(long iterations, float seed, float* sink) {
  struct timespec start, end;
  const vec mul = (vec){} + 0.999999f, add = (vec){} + 1e-6f;
  vec acc[CHAINS];
  for (int c = 0; c < CHAINS; ++c) acc[c] = (vec){} + seed * (float)(c + 1);
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < CHAINS; ++c) acc[c] = acc[c] * mul + add;
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  vec sum = (vec){};
  for (int c = 0; c < CHAINS; ++c) sum += acc[c];
  for (int l = 0; l < VEC_BYTES / (int)sizeof(float); ++l) *sink += sum[l];
  return (double)(end.tv_sec - start.tv_sec) + 1e-9 * (double)(end.tv_nsec - start.tv_nsec);
}
"""

_FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC"]


def _compiler():
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    raise RuntimeError(
        "measuring the FMA peak needs a C compiler (set CC, or install gcc/clang); "
        "or pass the peak with --fma-peak GFLOPS"
    )


def _library():
    compiler = _compiler()
    key = hashlib.sha256((_SOURCE + compiler + " ".join(_FLAGS)).encode()).hexdigest()[:16]
    directory = os.path.join(tempfile.gettempdir(), f"relu_ext_fma_peak_{os.getuid()}")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"fma_{key}.so")
    if not os.path.exists(path):
        source = os.path.join(directory, f"fma_{key}.c")
        with open(source, "w") as f:
            f.write(_SOURCE)
        partial = f"{path}.{os.getpid()}"
        subprocess.run([compiler, *_FLAGS, source, "-o", partial], check=True)
        os.replace(partial, path)  # atomic: concurrent runs never load half a file
    lib = ctypes.CDLL(path)
    lib.fma_seconds.argtypes = [ctypes.c_long, ctypes.c_float, ctypes.POINTER(ctypes.c_float)]
    lib.fma_seconds.restype = ctypes.c_double
    return lib


def measure_fma_peak_gflops(threads, run_seconds=1e-3, runs=300):
    """The FP32 FMA peak of `threads` threads, in GFLOP/s (an FMA is two FLOPs).

    All threads run the loop at once (so the clock is that of all cores busy),
    each `runs` times for about `run_seconds`, and each thread's fastest run
    counts. Runs this short mostly fit between the preemptions of a shared
    machine, so the fastest ones show the undisturbed rate, where one long run
    would be slowed by other processes' share of the CPU.
    """
    lib = _library()
    flops_per_iteration = 2 * lib.fma_lanes() * lib.fma_chains()
    sink = ctypes.c_float()

    iterations = 1024
    while min(lib.fma_seconds(iterations, 0.5, sink) for _ in range(3)) < run_seconds:
        iterations *= 2

    def fastest_rate(rates, index):
        own_sink = ctypes.c_float()  # ctypes releases the GIL for each call
        best = min(lib.fma_seconds(iterations, 0.5, own_sink) for _ in range(runs))
        rates[index] = iterations * flops_per_iteration / best

    rates = [0.0] * threads
    workers = [threading.Thread(target=fastest_rate, args=(rates, i)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(rates) / 1e9


if __name__ == "__main__":
    import torch

    threads = torch.get_num_threads()
    print(f"FP32 FMA peak on {threads} threads: {measure_fma_peak_gflops(threads):.4g} GFLOP/s")
