"""Which algorithm evaluates relu_sum: the dense kernels or the breakpoint one.

``dense`` evaluates all K units at each of the N inputs: O(N·K) work, fused,
vectorized, no set-up. ``breakpoints`` sorts the K breakpoints once and finds
each input's linear piece by a lookup: O(K·log K + N) for typical breakpoints
(O(N·log K) when they cluster), but with a fixed set-up cost and a per-input
cost far above one dense (input, unit) pair.

``auto`` compares the two by a cost model of forward + backward (all
gradients), counted in units of one dense (input, unit) pair, for N inputs
over C channels of K units (shared units: C = 1):

    dense        N·K
    breakpoints  N·PER_INPUT + ceil(C / 2)·(K·PER_UNIT + PER_TABLE) + FIXED

The constants (kPerInput, kPerUnit, kPerTable, kFixed, and kBuildThreads = 2
for the two tables built at a time) are in csrc/algorithm.h, where the op
``relu_ext::relu_sum_auto`` makes the choice on every call: in C++ it costs
nothing next to the op, and a torch.jit.trace keeps choosing per call. They
are fitted to timings on this project's machine, which docs/breakpoints.md
("The cost model, measured") gives with the crossovers they imply: the
lesson's 20 inputs × 8 units, and anything under ~300 units, stay dense.

The model sees N, C and K only, not x's layout, and float64 and the 16-bit
types use the same model (the dense kernels' relative cost is similar). The
decision depends on the sizes only, never on values, so torch.compile guards
on the sizes instead of breaking the graph. Only CPU tensors have the
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


# relu_sum_linear: the breakpoint algorithm costs I·O per sample and O·I·K per
# call, the dense one I·K·O per sample; the dense one wins for a few units per
# input, or for calls so small that the tables' set-up dominates. The rule,
# dense when K < LINEAR_DENSE_UNITS + LINEAR_DENSE_WORK / (N·I·O), fits the
# crossovers measured in docs/breakpoints.md ("relu_sum_linear").
LINEAR_DENSE_UNITS = 1
LINEAR_DENSE_WORK = 2.5e5
# Devices with the breakpoint kernels of relu_sum_linear.
LINEAR_BREAKPOINT_DEVICES = ("cpu",)


def choose_linear_algorithm(algorithm, x, m, a):
    """The op relu_sum_linear runs for x (N, I), m (I, K) and a (O, I, K):
    "dense" or "breakpoints". "auto" decides from the sizes alone, so
    torch.compile guards on them, never on values."""
    check_algorithm(algorithm, "relu_sum_linear")
    breakpoints_here = x.device.type in LINEAR_BREAKPOINT_DEVICES
    if algorithm == "breakpoints" and not breakpoints_here:
        raise ValueError(
            f"relu_sum_linear(): algorithm='breakpoints' is implemented for "
            f"{', '.join(LINEAR_BREAKPOINT_DEVICES)} tensors only, but x is on {x.device}; "
            "use algorithm='dense' or 'auto'"
        )
    if algorithm != "auto":
        return algorithm
    work = x.shape[0] * x.shape[1] * a.shape[0]
    dense = m.shape[-1] < LINEAR_DENSE_UNITS + LINEAR_DENSE_WORK / max(work, 1)
    return "dense" if dense or not breakpoints_here else "breakpoints"
