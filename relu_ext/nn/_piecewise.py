"""A sum of ReLUs read as a piecewise-linear function, and built from one.

Each unit a·relu(m·x + b) bends at t = -b/m: a unit with m > 0 is off left of t
and adds the line a·(m·x + b) right of it; one with m < 0 the other way round.
So, walking the sorted breakpoints from the left, the line of the leftmost
interval is the sum of the m < 0 units (plus the bias), and crossing a
breakpoint adds the lines of the units that turn on and subtracts those that
turn off. Units with m = 0 are a constant a·relu(b) everywhere.
"""

from typing import NamedTuple

import torch


class Piecewise(NamedTuple):
    """``breakpoints`` (K,), sorted and distinct; ``slopes`` and ``intercepts``
    (K + 1,): on interval i (left of breakpoints[0] for i = 0, right of
    breakpoints[K-1] for i = K) the function is slopes[i]·x + intercepts[i]."""

    breakpoints: torch.Tensor
    slopes: torch.Tensor
    intercepts: torch.Tensor


@torch.no_grad()
def to_piecewise(m, b, a=None, bias=None):
    """The intervals of ``bias + Σ a_k·relu(m_k·x + b_k)``, computed in float64
    and returned in m's dtype. Units at the same breakpoint are merged into one
    kink.

    With (C, K) parameters (one function per row, and a (C,) bias), each field
    gets a leading dim of C. Rows with fewer distinct kinks than the most are
    padded at the end with NaN breakpoints and copies of their last line."""
    if m.dim() == 2:
        rows = [_one_piecewise(m[c], b[c], None if a is None else a[c],
                               None if bias is None else bias[c]) for c in range(m.shape[0])]
        kinks = max((row.breakpoints.shape[0] for row in rows), default=0)

        def padded(t, length, fill):
            extra = length - t.shape[0]
            return torch.cat([t, (t[-1:] if fill is None else t.new_full((1,), fill))
                              .expand(extra)]) if extra else t

        return Piecewise(
            torch.stack([padded(row.breakpoints, kinks, float("nan")) for row in rows]),
            torch.stack([padded(row.slopes, kinks + 1, None) for row in rows]),
            torch.stack([padded(row.intercepts, kinks + 1, None) for row in rows]))
    if m.dim() != 1:
        raise ValueError(f"to_piecewise(): needs 1-D (K,) or 2-D (C, K) parameters, but m has "
                         f"shape {list(m.shape)}")
    return _one_piecewise(m, b, a, bias)


def _one_piecewise(m, b, a, bias):
    dtype = m.dtype
    m, b = m.double(), b.double()
    a = torch.ones_like(m) if a is None else a.double()
    c = torch.zeros((), dtype=torch.float64, device=m.device) if bias is None else bias.double()
    flat = m == 0
    c = c + (a[flat] * torch.relu(b[flat])).sum()
    m, b, a = m[~flat], b[~flat], a[~flat]

    t = -b / m
    order = torch.argsort(t, stable=True)
    t, m, b, a = t[order], m[order], b[order], a[order]
    # Crossing t rightwards: an m > 0 unit turns on (+1), an m < 0 unit turns off (-1).
    turn = torch.where(m > 0, 1.0, -1.0).to(torch.float64)
    left = m < 0
    slope0 = (a * m)[left].sum()
    intercept0 = c + (a * b)[left].sum()

    breakpoints, first = torch.unique_consecutive(t, return_inverse=True)
    kinks = breakpoints.shape[0]
    dslope = torch.zeros(kinks, dtype=torch.float64, device=m.device)
    dintercept = torch.zeros_like(dslope)
    dslope.index_add_(0, first, turn * a * m)
    dintercept.index_add_(0, first, turn * a * b)
    slopes = torch.cat([slope0[None], slope0 + torch.cumsum(dslope, 0)])
    intercepts = torch.cat([intercept0[None], intercept0 + torch.cumsum(dintercept, 0)])
    return Piecewise(breakpoints.to(dtype), slopes.to(dtype), intercepts.to(dtype))


def from_piecewise(cls, breakpoints, slopes, intercepts, **kwargs):
    """A ``cls`` (ReLUSum) module with a bias computing the continuous function
    that has these K breakpoints and K + 1 interval lines.

    One unit per breakpoint opening to the right carries the change of slope
    there (the first one carries the whole slope right of it); one unit opening
    to the left at the first breakpoint carries the leftmost slope, and is left
    out when that slope is 0. So K + 1 units, or K. Raises ValueError unless the
    lines meet at the breakpoints (to 1e-6 relative).
    """
    # Anything torch.as_tensor takes: tensors, NumPy arrays, lists, pandas Series.
    t, slopes, intercepts = (torch.as_tensor(v) for v in (breakpoints, slopes, intercepts))
    kinks = t.shape[0] if t.dim() == 1 else -1
    if kinks < 1 or slopes.shape != (kinks + 1,) or intercepts.shape != (kinks + 1,):
        raise ValueError(
            f"from_piecewise(): expected breakpoints of shape (K,) with K >= 1 and slopes and "
            f"intercepts of shape (K + 1,), but got {list(t.shape)}, {list(slopes.shape)} and "
            f"{list(intercepts.shape)}")
    t64, s64, i64 = t.double(), slopes.double(), intercepts.double()
    if not (torch.isfinite(t64).all() and torch.isfinite(s64).all()
            and torch.isfinite(i64).all()):
        raise ValueError("from_piecewise(): breakpoints, slopes and intercepts must be finite")
    if kinks > 1 and not (t64[1:] > t64[:-1]).all():
        raise ValueError(f"from_piecewise(): breakpoints must be sorted and distinct, but got "
                         f"{t.tolist()}")
    left_values = s64[:-1] * t64 + i64[:-1]
    right_values = s64[1:] * t64 + i64[1:]
    scale = left_values.abs().max().clamp_min(1.0)
    gap = (left_values - right_values).abs().max()
    if gap > 1e-6 * scale:
        raise ValueError(f"from_piecewise(): the lines must meet at the breakpoints (a "
                         f"continuous function), but they are up to {gap.item():.3g} apart")

    with_left = bool(s64[0] != 0)
    units = kinks + int(with_left)
    # Integer breakpoints (years, counts) give a float64 module, as fit_curve does.
    dtype = kwargs.pop("dtype", None) or (t.dtype if t.is_floating_point() else torch.float64)
    module = cls(units, bias=True, dtype=dtype, **kwargs)
    m = torch.ones(kinks, dtype=torch.float64)
    a = torch.diff(s64, prepend=torch.zeros(1, dtype=torch.float64))[1:]
    a[0] = s64[1]
    if with_left:
        # relu(-(x - t0)) carries the leftmost slope: a·(-(x - t0)) = s0·x  for a = -s0.
        m = torch.cat([-m[:1], m])
        a = torch.cat([-s64[:1], a])
        t64 = torch.cat([t64[:1], t64])
    with torch.no_grad():
        module.m.copy_(m)
        module.b.copy_(-m * t64)
        module.a.copy_(a)
        # The function's value at the first breakpoint, where every unit is 0.
        module.bias.copy_(left_values[0])
    return module
