"""Least squares over hinge features by sorted prefix sums: exact, O(K²) a step.

For breakpoints t_1..t_H (standardised coordinates u, targets v, point weights
w) the features are 1, u and the hinges h_k(u) = relu(u - t_k). Every entry of
the normal equations is a weighted sum over the points right of one breakpoint
(h_j·h_k is non-zero only right of max(t_j, t_k)):

    <1, h_k>   = S1(t_k) - t_k·S0(t_k)          <h_k, v> = V1(t_k) - t_k·V0(t_k)
    <u, h_k>   = S2(t_k) - t_k·S1(t_k)
    <h_j, h_k> = S2(τ) - (t_j + t_k)·S1(τ) + t_j·t_k·S0(τ),   τ = max(t_j, t_k)

with S_p(t) = Σ_{u > t} w·u^p and V_p(t) = Σ_{u > t} w·u^p·v. Sorting the points
once makes each of these a difference of prefix sums, looked up by binary
search, so neither the N×K feature matrix nor even an O(N) pass is needed per
step: a step costs O(H·log N + H³) whatever N is.

The objective F(t) = min_coef Σ w·(v - Φ(t)·coef)² (variable projection) has,
by the envelope theorem, the gradient ∂F/∂t_k = 2·β_k·Σ_{u > t_k} w·r with r
the residual at the optimal coefficients; those residual sums are again suffix
sums (Σ_{u>t_k} w·h_j = S1(τ) - t_j·S0(τ)).

Everything that sums over points goes through ``reduce``: with the points split
across processes, all-reducing these sums gives the one-process result.
"""

import torch

# Relative ridge on the normal equations: keeps a hinge that has left the data
# (an all-zero or collinear column) from making the solve singular, far below
# the accuracy the fits reach.
RIDGE = 1e-12


class HingeLeastSquares:
    """The sorted points of one fit and their prefix sums (float64)."""

    def __init__(self, u, v, weights=None, reduce=None):
        order = torch.argsort(u, stable=True)
        self.u = u[order]
        v = v[order]
        w = torch.ones_like(self.u) if weights is None else weights[order]
        uw = w * self.u
        columns = torch.stack([w, uw, uw * self.u, w * v, uw * v])
        self.prefix = torch.cat([columns.new_zeros(5, 1), torch.cumsum(columns, 1)], 1)
        self.reduce = reduce or (lambda t: t)
        totals = torch.cat([self.prefix[:, -1], (w * v * v).sum()[None]])
        self.totals = self.reduce(totals)
        self.weight = self.totals[0]

    def suffix_sums(self, t):
        """(5, H): S0, S1, S2, V0, V1 over the points with u > t_k."""
        idx = torch.searchsorted(self.u, t, right=True)
        return self.reduce(self.prefix[:, -1:] - self.prefix[:, idx])

    def solve(self, t):
        """The weighted mean squared error at the best coefficients
        (c, α, β_1..β_H) for breakpoints t, those coefficients, and the
        gradient of the error in t."""
        T0, T1, T2, T3, T4, vv = self.totals
        S0, S1, S2, V0, V1 = self.suffix_sums(t)
        h = t.shape[0]
        right_of_j = t[:, None] >= t[None, :]  # τ_jk = t_j where true, else t_k

        def at_tau(s):
            return torch.where(right_of_j, s[:, None], s[None, :])

        S0t, S1t, S2t = at_tau(S0), at_tau(S1), at_tau(S2)
        tj, tk = t[:, None], t[None, :]
        gram = t.new_empty(h + 2, h + 2)
        gram[0, 0], gram[0, 1], gram[1, 1] = T0, T1, T2
        gram[0, 2:] = S1 - t * S0
        gram[1, 2:] = S2 - t * S1
        gram[2:, 2:] = S2t - (tj + tk) * S1t + tj * tk * S0t
        gram[1:, 0] = gram[0, 1:]
        gram[2:, 1] = gram[1, 2:]
        rhs = torch.cat([torch.stack([T3, T4]), V1 - t * V0])

        ridge = RIDGE * gram.diagonal().abs().mean() + 1e-300
        regularised = gram + torch.diag(ridge.expand(h + 2))
        factor, info = torch.linalg.cholesky_ex(regularised)
        if info == 0:
            coef = torch.cholesky_solve(rhs[:, None], factor)[:, 0]
        else:  # not positive definite to rounding: LU copes
            coef = torch.linalg.solve(regularised, rhs)
        sse = (vv - 2 * coef @ rhs + coef @ gram @ coef).clamp_min(0)

        c, alpha, beta = coef[0], coef[1], coef[2:]
        # Σ_{u > t_k} w·h_j(u), indexed [j, k].
        hinge_right = S1t - tj * S0t
        residual_right = V0 - c * S0 - alpha * S1 - beta @ hinge_right
        grad = 2 * beta * residual_right / self.weight
        return sse / self.weight, coef, grad
