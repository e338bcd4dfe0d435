"""Which algorithm evaluates relu_sum: the dense kernels or the breakpoint one.

``dense`` evaluates all K units at each of the N inputs: O(N·K) work, fused,
vectorized, no set-up. ``breakpoints`` sorts the K breakpoints once and finds
each input's linear piece by a lookup: O(K·log K + N) for typical breakpoints
(O(N·log K) when they cluster), but with a fixed set-up cost and a per-input
cost far above one dense (input, unit) pair.

``auto`` compares the two by a cost model fitted to fwd+bwd timings
(N up to 262,144, K up to 65,536, float32, 2 threads; see
benchmarks/breakpoints.py), counted in units of one dense (input, unit) pair:

    dense        N·K
    breakpoints  N·PER_INPUT + K·PER_UNIT + FIXED

So for large N the breakpoint algorithm wins from K ≈ PER_INPUT units on,
and for large K from N ≈ PER_UNIT inputs on. The decision depends on the
shapes only (never on values), so it costs nothing and torch.compile guards on
the sizes instead of breaking the graph.
"""

ALGORITHMS = ("auto", "dense", "breakpoints")

# Fitted constants, in dense pair-times (see the module docstring).
PER_INPUT = 400
PER_UNIT = 400
FIXED = 2_000_000


def check_algorithm(algorithm, where="relu_sum"):
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(
            f"{where}(): algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, "
            f"but got {algorithm!r}"
        )


def choose_algorithm(algorithm, x, m):
    """The algorithm ``relu_sum(x, m, ..., algorithm=algorithm)`` runs: "dense" or "breakpoints"."""
    check_algorithm(algorithm)
    if algorithm != "auto":
        if algorithm == "breakpoints" and x.device.type != "cpu":
            raise ValueError(
                f"relu_sum(): algorithm='breakpoints' is implemented for CPU tensors only, "
                f"but x is on {x.device}; use algorithm='dense' or 'auto'"
            )
        return algorithm
    if x.device.type != "cpu":
        return "dense"
    n, k = x.numel(), m.shape[0]
    return "breakpoints" if n * k > n * PER_INPUT + k * PER_UNIT + FIXED else "dense"
