"""x seen as the ops see per-channel units: (outer, C, inner), and back.

With 2-D (C, K) units the ops take x as 3-D (outer, C, inner), element
x[o, c, i] using row c (csrc/checks.h). ``relu_ext.relu_sum`` takes any x and
a channel ``dim``; this module maps one onto the other with views wherever x's
strides allow, so that the op's own ``contiguous()`` is free:

- a contiguous x: (prod of the dims before dim, C, prod of those after);
  NCHW with dim=1 is (N, C, H·W), (B, T, C) with dim=-1 is (B·T, C, 1);
- any other dense layout (channels-last, a transpose): x permuted into its
  memory order first, which is a view, e.g. channels-last NCHW is
  (N·H·W, C, 1);
- anything else (overlapping or gapped strides): one contiguous copy.

The result is mapped back with the inverse views, so y has x's shape and,
for a dense x, x's strides (as torch's elementwise ops give).
"""

import math


def _memory_order(x):
    """x's dims from the outermost in memory to the innermost: the permutation
    that makes x contiguous when x is dense (ties kept in dim order)."""
    strides = x.stride()
    return sorted(range(x.dim()), key=lambda d: (-strides[d], d))


def to_channels(x, dim):
    """(x3, back): x3 a (outer, C, inner) view of x (C = x.shape[dim]) that the
    op can read without a copy where possible, and back(y3) the inverse map
    of a result of x3's shape to x's shape and layout. dim is non-negative."""
    if x.is_contiguous():
        order = list(range(x.dim()))
    else:
        order = _memory_order(x)
        if not x.permute(order).is_contiguous():  # not dense: copy once
            x = x.contiguous()
            order = list(range(x.dim()))
    xp = x.permute(order)
    at = order.index(dim)
    shape = xp.shape
    x3 = xp.reshape(math.prod(shape[:at]), shape[at], math.prod(shape[at + 1:]))
    inverse = [order.index(d) for d in range(len(order))]

    def back(y3):
        return y3.view(shape).permute(inverse)

    return x3, back
