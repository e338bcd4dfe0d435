"""fit_curve's least squares over hinge features, for fixed breakpoints.

The features of breakpoints t_1..t_H are 1, u and the hinges relu(u - t_k);
for fixed t the coefficients enter linearly and are solved exactly, from
sums over the points right of each breakpoint (the math is in
csrc/curve/hinge_lstsq.h: a step costs O(H·(log N + 64) + H³) whatever N is).
This module sorts the points; the compiled solver does the rest, including
L-BFGS on the breakpoints (csrc/curve/lbfgs.h), without a tensor operation
per step. Its sums over points are exact, so they are the same whatever
order, or split across processes, the points come in.
"""

import torch

from ..ops import _C


class HingeLeastSquares:
    """The sorted points of one fit (float64, CPU) and their weights.

    ``reduce`` all-reduces exact sums' digits across processes (see
    _data.all_reduce_digits); None for one process.
    """

    def __init__(self, u, v, weights=None, reduce=None):
        order = torch.argsort(u, stable=True)
        u, v = u[order].contiguous(), v[order]
        w = torch.ones_like(u) if weights is None else weights[order]
        uw, vw = w * u, w * v
        columns = torch.stack([w, uw, uw * u, vw, uw * v, vw * v])
        self._solver = _C.HingeLeastSquares(u, columns, reduce)

    def solve(self, t):
        """(mse, coef, grad) at breakpoints t (any order): the weighted mean
        squared error at the best coefficients (c, α, β_1..β_H), those
        coefficients, and the error's gradient in t."""
        return self._solver.solve(t)

    def suffix_sums(self, t):
        """(5, H): S0, S1, S2, V0, V1 over the points with u > t_k."""
        return self._solver.suffix_sums(t)

    def minimize(self, t, max_iter):
        """L-BFGS on the breakpoints from t: (sorted breakpoints, the error at
        every evaluation)."""
        return self._solver.minimize(t, max_iter)
