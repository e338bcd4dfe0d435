"""Moving a ReLUSumLinear's breakpoints to its data's quantiles, keeping its
edges' functions by least squares (``ReLUSumLinear.update_knots``)."""

import torch

# Eigenvalues of the Gram matrix under this fraction of its largest are taken
# as zero: the features' own condition number may then reach 1e5 (the Gram's
# is its square) before a direction is dropped as repeated.
_RTOL = 1e-10
# The most feature values refit_at_quantiles holds at once (float64: 128 MiB).
_CHUNK_ELEMENTS = 1 << 24


def quantile_levels(units, dtype=torch.float64, device=None):
    """``(k + 0.5)/K`` for k < K: the middles of K cells of equal mass, so each
    unit bends where its share of the data is (neither at the extremes, where
    a kink would act on almost no sample, nor outside the data)."""
    return (torch.arange(units, dtype=dtype, device=device) + 0.5) / max(units, 1)


def quantiles(x, levels):
    """The ``levels`` quantiles of each column of x (N, I), as (I, len(levels)):
    torch.quantile's default (linear interpolation between order statistics),
    by a sort, which has no limit on x's size."""
    ordered = x.sort(0).values
    position = levels * (x.shape[0] - 1)
    below = position.floor().long()
    above = position.ceil().long()
    weight = (position - below).to(x.dtype)
    return (ordered[below] + weight[:, None] * (ordered[above] - ordered[below])).T


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
    m_new = torch.where(m == 0, 1.0, m)
    order = torch.argsort(torch.where(m == 0, torch.inf, -b / m), dim=1, stable=True)
    targets = quantiles(x, quantile_levels(units, device=x.device))
    # The unit that is k-th by breakpoint gets the k-th quantile.
    t = torch.empty_like(targets).scatter_(1, order, targets)
    b_new = -m_new * t

    gram, cross = [], []
    # A few inputs at a time: the features of all of them at once would be
    # two (I, N, K) float64 tensors.
    chunk = max(1, _CHUNK_ELEMENTS // max(x.shape[0] * (units + 1), 1))
    for start in range(0, x.shape[1], chunk):
        cols = slice(start, start + chunk)
        xs = x[:, cols].T[:, :, None]  # (chunk, N, 1)
        old = torch.relu(xs * m[cols, None, :] + b[cols, None, :])
        new = torch.relu(xs * m_new[cols, None, :] + b_new[cols, None, :])
        if with_constant:
            new = torch.cat([new, torch.ones_like(new[..., :1])], -1)
        gram.append(new.transpose(1, 2) @ new)  # (chunk, K+1, K+1)
        cross.append(new.transpose(1, 2) @ old)  # (chunk, K+1, K)
    gram, cross = torch.cat(gram), torch.cat(cross)
    right = cross @ a.permute(1, 2, 0)  # (I, K+1, O): H_newᵀ F
    weights = torch.linalg.pinv(gram, rtol=_RTOL, hermitian=True) @ right
    a_new = weights[:, :units, :].permute(2, 0, 1)
    constant = weights[:, units, :].sum(0) if with_constant else None
    return m_new.to(dtype), b_new.to(dtype), a_new.to(dtype), constant
