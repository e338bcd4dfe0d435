"""Moving a ReLUSumLinear's breakpoints to its data's quantiles, keeping its
edges' functions by least squares (``ReLUSumLinear.update_knots``)."""

import torch

# Eigenvalues of the Gram matrix under this fraction of its largest are taken
# as zero: the features' own condition number may then reach 1e5 (the Gram's
# is its square) before a direction is dropped as repeated.
_RTOL = 1e-10


def quantile_levels(units, dtype=torch.float64, device=None):
    """``(k + 0.5)/K`` for k < K: the middles of K cells of equal mass, so each
    unit bends where its share of the data is (neither at the extremes, where
    a kink would act on almost no sample, nor outside the data)."""
    return (torch.arange(units, dtype=dtype, device=device) + 0.5) / max(units, 1)


def refit_at_quantiles(x, m, b, a, *, with_constant):
    """New (m, b, a) and the constant for the bias, for samples x (N, I).

    Input i's units, sorted by breakpoint, move to the quantiles of x[:, i]
    (units with m = 0, which have none, count as opening right with m = 1 and
    sort last). Then, per input, the new hinge features H (N, K) (and a column
    of ones when ``with_constant``) are fitted to the old edges' values
    F = H_old · a[:, i]ᵀ (N, O) by least squares: the normal equations through
    a pseudo-inverse, in float64, which also takes repeated breakpoints (an
    input with few distinct values) and gives them the least-norm weights.
    The constants of an output's edges are summed (they all go into its bias).
    Returned in the parameters' dtype; the constant in float64."""
    dtype = m.dtype
    x, m, b, a = x.double(), m.double(), b.double(), a.double()
    units = m.shape[1]
    old_features = torch.relu(x.T[:, :, None] * m[:, None, :] + b[:, None, :])  # (I, N, K)

    m_new = torch.where(m == 0, 1.0, m)
    order = torch.argsort(torch.where(m == 0, torch.inf, -b / m), dim=1, stable=True)
    levels = quantile_levels(units, device=x.device)
    targets = torch.quantile(x, levels, dim=0).T if units else x.new_empty(x.shape[1], 0)
    # The unit that is k-th by breakpoint gets the k-th quantile.
    t = torch.empty_like(targets).scatter_(1, order, targets)
    b_new = -m_new * t
    features = torch.relu(x.T[:, :, None] * m_new[:, None, :] + b_new[:, None, :])
    if with_constant:
        features = torch.cat([features, torch.ones_like(features[..., :1])], -1)

    gram = features.transpose(1, 2) @ features  # (I, K+1, K+1)
    cross = features.transpose(1, 2) @ old_features  # (I, K+1, K)
    right = cross @ a.permute(1, 2, 0)  # (I, K+1, O): H_newᵀ F
    weights = torch.linalg.pinv(gram, rtol=_RTOL, hermitian=True) @ right
    a_new = weights[:, :units, :].permute(2, 0, 1)
    constant = weights[:, units, :].sum(0) if with_constant else None
    return m_new.to(dtype), b_new.to(dtype), a_new.to(dtype), constant
