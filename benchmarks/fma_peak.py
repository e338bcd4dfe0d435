"""The machine's FP32 FMA peak, measured: the yardstick for "fraction of peak".

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
import time

_SOURCE = r"""
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
   returned, so the compiler can neither fold a chain nor drop the loop. */
float fma_loop(long iterations, float seed) {
  const vec mul = (vec){} + 0.999999f, add = (vec){} + 1e-6f;
  vec acc[CHAINS];
  for (int c = 0; c < CHAINS; ++c) acc[c] = (vec){} + seed * (float)(c + 1);
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < CHAINS; ++c) acc[c] = acc[c] * mul + add;
  }
  vec sum = (vec){};
  for (int c = 0; c < CHAINS; ++c) sum += acc[c];
  float s = 0.0f;
  for (int l = 0; l < VEC_BYTES / (int)sizeof(float); ++l) s += sum[l];
  return s;
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
    lib.fma_loop.argtypes = [ctypes.c_long, ctypes.c_float]
    lib.fma_loop.restype = ctypes.c_float
    return lib


def measure_fma_peak_gflops(threads, seconds=0.3, repeats=5):
    """Best of `repeats` runs of the FMA loop on `threads` threads at once, in
    GFLOP/s (an FMA counts as two FLOPs). On a shared machine the best run is
    the one least disturbed by others, hence the maximum rather than the median."""
    lib = _library()
    flops_per_iteration = 2 * lib.fma_lanes() * lib.fma_chains()

    def run(iterations):
        # ctypes releases the GIL for the call, so the threads run in parallel.
        workers = [threading.Thread(target=lib.fma_loop, args=(iterations, 0.5)) for _ in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return time.perf_counter() - start

    iterations = 1 << 16
    while run(iterations) < seconds / 4:  # calibrate to about `seconds` per run
        iterations *= 4
    iterations = int(iterations * seconds / max(run(iterations), 1e-9))
    best = min(run(iterations) for _ in range(repeats))
    return threads * iterations * flops_per_iteration / best / 1e9
