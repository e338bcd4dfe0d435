"""Which algorithm evaluates relu_sum: the dense kernels or the breakpoint one.

``dense`` evaluates all K units at each of the N inputs: O(N·K) work, fused,
vectorized, no set-up. ``breakpoints`` sorts the K breakpoints once and finds
each input's linear piece by a lookup: O(K·log K + N) for typical breakpoints
(O(N·log K) when they cluster), but with a fixed set-up cost and a per-input
cost far above one dense (input, unit) pair.

``auto`` compares the two by a cost model of forward + backward (all
gradients), counted in units of one dense (input, unit) pair, ~30 ps here,
for N inputs over C channels of K units (shared units: C = 1):

    dense        N·K
    breakpoints  N·PER_INPUT + ceil(C / 2)·(K·PER_UNIT + PER_TABLE) + FIXED

(kPerInput, kPerUnit, kPerTable, kFixed and kBuildThreads = 2 in
csrc/algorithm.h, where the op
``relu_ext::relu_sum_auto`` makes the choice on every call: in C++ it costs
nothing next to the op, in Python it was a twentieth of a training step at
the lesson's size, and a torch.jit.trace keeps choosing per call), fitted to
timings on this project's machine (2-core AMD EPYC with AVX-512,
float32, 2 threads, load < 1; benchmarks/breakpoints.py and the same steps
at small N; Gaussian m, b, the slower case for breakpoints):

    N        K       dense     breakpoints
    262144   256     2.1 ms    2.4 ms      ~9 ns per input: PER_INPUT = 300
    262144   512     4.1 ms    2.8 ms
    262144   4096    30 ms     4.6 ms
    262144   65536   518 ms    10 ms
    500      65536   3.0 ms    4.9 ms      ~75 ns per unit (set-up is serial):
    2000     65536   6.4 ms    5.5 ms      PER_UNIT = 2500
    1000     4096    260 us    433 us
    4000     4096    505 us    523 us
    1000     1024    90 us     119 us      call overheads: FIXED = 2,000,000
    10000    1024    383 us    312 us

So for large N the breakpoint algorithm is chosen from K ≈ 300 units on, and
for large K from N ≈ 2,500 inputs on; the lesson's 20 inputs × 8 units and
anything under ~300 units stay dense. (The large-N rows were
measured again after the dense forward got faster, 2026-11-24; the
measured crossover is K = 306 for Gaussian m, b and 226 for uniform
breakpoints.)

Per-channel units build a table per channel, two at a time on the two
threads (one table is built on one thread, hence ceil(C / 2)); per table a
fixed PER_TABLE = 25,000 (~10 units' worth: allocations, the sort's call)
on top of K·PER_UNIT. So per channel of E = N / C inputs the breakpoints
win when E is large compared to K. Measured on per-channel forward +
backward, float32, N = 262,144, one thread, by CPU time (the machine was
too loaded for wall times, 2026-12-01); dense/breakpoints:

    C       K       E = N/C   ratio   model
    1       512     262144    5.6     breakpoints
    16      512     16384     4.5     breakpoints
    64      4096    4096      3.6     breakpoints
    256     512     1024      1.04    dense
    256     1024    1024      1.01    dense
    1024    256     256       0.33    dense
    16384   8       16        0.13    dense

The model is conservative there (near E ≈ K it keeps dense where the two
are about even). Channels innermost (inner = 1, e.g. dim=-1 of (B, T, C))
currently make the dense kernels far slower (a kernel call per element,
csrc/cpu/relu_sum_cpu.cpp: 160x at C = 16, K = 512) and the breakpoint
passes ~1.75x slower (gathering); the model, on N, C and K alone, ignores
that. float64 and the 16-bit types use the same model (the dense kernels'
relative cost is similar). The decision
depends on the sizes only, never on values, so torch.compile guards on the
sizes instead of breaking the graph. Only CPU tensors have the
breakpoint kernels; "auto" is "dense" on other devices.
"""

from ._extension import _C

ALGORITHMS = ("auto", "dense", "breakpoints")


def check_algorithm(algorithm, where="relu_sum"):
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(
            f"{where}(): algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, "
            f"but got {algorithm!r}"
        )


def choose_algorithm(algorithm, x, m):
    """The algorithm the op runs for x and m as the ops take them (for (C, K)
    units, x as (outer, C, inner): relu_ext/ops/_channels.py): "dense" or
    "breakpoints"; for "auto", the one relu_ext::relu_sum_auto takes."""
    if algorithm == "auto":
        return "breakpoints" if _C.auto_uses_breakpoints(x, m) else "dense"
    check_algorithm(algorithm)
    if algorithm == "breakpoints" and not x.is_cpu:
        raise ValueError(
            f"relu_sum(): algorithm='breakpoints' is implemented for CPU tensors only, "
            f"but x is on {x.device}; use algorithm='dense' or 'auto'"
        )
    return algorithm
