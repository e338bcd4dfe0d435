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
    """One set of (K,) units' intervals. ``a`` may have leading dims (..., K),
    with ``bias`` (...): functions that share the units' breakpoints (the edges
    of one input of a ReLUSumLinear), whose slopes and intercepts then have
    those leading dims; the breakpoints stay (kinks,)."""
    dtype = m.dtype
    m, b = m.double(), b.double()
    a = torch.ones_like(m) if a is None else a.double()
    lead = a.shape[:-1]
    c = (torch.zeros(lead, dtype=torch.float64, device=m.device) if bias is None
         else bias.double())
    flat = m == 0
    c = c + (a[..., flat] * torch.relu(b[flat])).sum(-1)
    m, b, a = m[~flat], b[~flat], a[..., ~flat]

    t = -b / m
    order = torch.argsort(t, stable=True)
    t, m, b, a = t[order], m[order], b[order], a[..., order]
    # Crossing t rightwards: an m > 0 unit turns on (+1), an m < 0 unit turns off (-1).
    turn = torch.where(m > 0, 1.0, -1.0).to(torch.float64)
    left = m < 0
    slope0 = (a * m)[..., left].sum(-1, keepdim=True)
    intercept0 = c[..., None] + (a * b)[..., left].sum(-1, keepdim=True)

    breakpoints, first = torch.unique_consecutive(t, return_inverse=True)
    kinks = breakpoints.shape[0]
    dslope = torch.zeros(*lead, kinks, dtype=torch.float64, device=m.device)
    dintercept = torch.zeros_like(dslope)
    dslope.index_add_(-1, first, turn * a * m)
    dintercept.index_add_(-1, first, turn * a * b)
    slopes = torch.cat([slope0, slope0 + torch.cumsum(dslope, -1)], -1)
    intercepts = torch.cat([intercept0, intercept0 + torch.cumsum(dintercept, -1)], -1)
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

    m, b, a, value = hinge_units(t64, s64, i64)
    if s64[0] == 0:  # a flat left end: its unit would add nothing
        m, b, a = m[1:], b[1:], a[1:]
    # Integer breakpoints (years, counts) give a float64 module, as fit_curve does.
    dtype = kwargs.pop("dtype", None) or (t.dtype if t.is_floating_point() else torch.float64)
    module = cls(m.shape[0], bias=True, dtype=dtype, **kwargs)
    with torch.no_grad():
        module.m.copy_(m)
        module.b.copy_(b)
        module.a.copy_(a)
        module.bias.copy_(value)
    return module


def hinge_units(breakpoints, slopes, intercepts):
    """The K + 1 units (m, b, a) and the constant of the continuous function
    with these K breakpoints and K + 1 lines, for any leading dims (..., K):
    the one place the units of a piecewise function are written down, for
    ``ReLUSum.from_piecewise`` and ``ReLUSumLinear.from_piecewise``.

    Unit 0 opens to the left at the first breakpoint and carries the leftmost
    slope: ``-s0·relu(-(x - t0)) = s0·(x - t0)`` left of t0 (its a is 0 when that
    slope is). Unit j + 1 opens to the right at breakpoint j and carries the
    change of slope there (unit 1 the whole slope right of t0). Every unit is 0
    at t0, so the constant is the function's value there. Computed in the
    arguments' dtype; they are not checked (the callers do)."""
    t, s = breakpoints, slopes
    right = torch.ones_like(t)
    m = torch.cat([-right[..., :1], right], -1)
    b = -m * torch.cat([t[..., :1], t], -1)
    a = torch.cat([-s[..., :1], s[..., 1:2], torch.diff(s[..., 1:], dim=-1)], -1)
    value = s[..., 0] * t[..., 0] + intercepts[..., 0]
    return m, b, a, value


class LayerPiecewise(NamedTuple):
    """A ``ReLUSumLinear``'s edges as intervals: edge (o, i), the function of
    input i that output o adds, is ``Piecewise(breakpoints[o, i], slopes[o, i],
    intercepts[o, i])`` (:meth:`edge`), and the layer computes
    ``y[..., o] = bias[o] + Σ_i edge(o, i)(x[..., i])``.

    ``breakpoints`` (O, I, P): input i's sorted distinct kinks, the same for
    every o (the edges of an input share its units), padded at the end with NaN
    where input i has fewer than the most (P); ``slopes`` and ``intercepts``
    (O, I, P + 1), padded with copies of the last line; ``bias`` (O,)."""

    breakpoints: torch.Tensor
    slopes: torch.Tensor
    intercepts: torch.Tensor
    bias: torch.Tensor

    def edge(self, o, i):
        """Edge (o, i) as a :class:`Piecewise`, its NaN padding removed."""
        t = self.breakpoints[o, i]
        kinks = int((~torch.isnan(t)).sum())
        return Piecewise(t[:kinks], self.slopes[o, i, :kinks + 1],
                         self.intercepts[o, i, :kinks + 1])


@torch.no_grad()
def layer_to_piecewise(m, b, a, bias=None):
    """The intervals of every edge of a layer with units m, b (I, K), edge
    weights a (O, I, K) and bias (O,) or None: a :class:`LayerPiecewise`, in
    m's dtype. Edge (o, i) is the sum of units m[i], b[i] weighted by a[o, i],
    so each input's edges are read together, sharing its breakpoints."""
    outputs, inputs = a.shape[0], a.shape[1]
    per_input = [_one_piecewise(m[i], b[i], a[:, i], None) for i in range(inputs)]
    kinks = max((p.breakpoints.shape[0] for p in per_input), default=0)

    def padded(t, length, fill):
        extra = length - t.shape[-1]
        if not extra:
            return t
        pad = t[..., -1:] if fill is None else t.new_full((*t.shape[:-1], 1), fill)
        return torch.cat([t, pad.expand(*t.shape[:-1], extra)], -1)

    def stacked(fields, length, fill):
        if not fields:
            return m.new_empty(outputs, 0, length)
        return torch.stack([padded(f, length, fill) for f in fields], 1)

    breakpoints = stacked([p.breakpoints.expand(outputs, -1) for p in per_input], kinks,
                          float("nan"))
    slopes = stacked([p.slopes for p in per_input], kinks + 1, None)
    intercepts = stacked([p.intercepts for p in per_input], kinks + 1, None)
    bias = m.new_zeros(outputs) if bias is None else bias.detach().clone()
    return LayerPiecewise(breakpoints, slopes, intercepts, bias)


def layer_from_piecewise(cls, breakpoints, slopes, intercepts, bias=None, **kwargs):
    """A ``cls`` (ReLUSumLinear) layer with a bias whose edges are the
    continuous functions with these intervals, the fields of a
    :class:`LayerPiecewise`: breakpoints (O, I, P), the same for every o, NaN
    only as padding at the end; slopes and intercepts (O, I, P + 1); bias (O,)
    or None. Each input gets P + 1 units, written by :func:`hinge_units`: a
    padding breakpoint (or, for an input with none, 0) becomes a unit of
    weight 0. Raises ValueError unless each edge's lines meet at its
    breakpoints (to 1e-6 relative)."""
    t, slopes, intercepts = (torch.as_tensor(v) for v in (breakpoints, slopes, intercepts))
    if t.dim() != 3 or slopes.shape != (*t.shape[:2], t.shape[2] + 1) \
            or intercepts.shape != slopes.shape:
        raise ValueError(
            f"from_piecewise(): expected breakpoints of shape (O, I, P) and slopes and "
            f"intercepts of shape (O, I, P + 1), but got {list(t.shape)}, "
            f"{list(slopes.shape)} and {list(intercepts.shape)}")
    outputs, inputs, kinks = t.shape
    if bias is not None:
        bias = torch.as_tensor(bias)
        if bias.shape != (outputs,):
            raise ValueError(f"from_piecewise(): expected bias of shape (O,) = [{outputs}], "
                             f"but got {list(bias.shape)}")
    t64, s64, i64 = t.double(), slopes.double(), intercepts.double()
    if not (torch.isfinite(s64).all() and torch.isfinite(i64).all()
            and not torch.isinf(t64).any()):
        raise ValueError("from_piecewise(): slopes and intercepts must be finite, and "
                         "breakpoints finite or NaN (padding)")
    missing = torch.isnan(t64)
    if not torch.equal(missing, missing[:1].expand_as(missing)) or not torch.equal(
            torch.where(missing, 0.0, t64), torch.where(missing, 0.0, t64[:1]).expand_as(t64)):
        raise ValueError("from_piecewise(): breakpoints must be the same for every output o "
                         "(the edges of an input share its units)")
    if kinks > 1 and (missing[..., :-1] & ~missing[..., 1:]).any():
        raise ValueError("from_piecewise(): NaN breakpoints may only pad the end of an input's")
    both = ~missing[..., :-1] & ~missing[..., 1:]
    if kinks > 1 and not (t64[..., 1:] > t64[..., :-1])[both].all():
        raise ValueError("from_piecewise(): each input's breakpoints must be sorted and distinct")
    # Padding sits at the input's last breakpoint (0 for an input with none),
    # where its lines must still meet: they are copies of the last line.
    last = torch.where(missing, float("-inf"), t64).amax(-1, keepdim=True)
    t64 = torch.where(missing, torch.where(torch.isinf(last), 0.0, last), t64)
    left_values = s64[..., :-1] * t64 + i64[..., :-1]
    right_values = s64[..., 1:] * t64 + i64[..., 1:]
    gap = (left_values - right_values).abs()
    gap, scale = ((gap.amax(), left_values.abs().amax().clamp_min(1.0)) if gap.numel()
                  else (torch.zeros(()), 1.0))
    if gap > 1e-6 * scale:
        raise ValueError(f"from_piecewise(): the lines must meet at the breakpoints (a "
                         f"continuous function), but they are up to {gap.item():.3g} apart")
    if kinks == 0:  # lines alone: one breakpoint at 0, between a line and its copy
        t64 = t64.new_zeros(outputs, inputs, 1)
        s64, i64 = s64.expand(-1, -1, 2), i64.expand(-1, -1, 2)

    m, b, a, value = hinge_units(t64, s64, i64)
    dtype = kwargs.pop("dtype", None) or (t.dtype if t.is_floating_point() else torch.float64)
    layer = cls(inputs, outputs, m.shape[-1], bias=True, dtype=dtype, **kwargs)
    with torch.no_grad():
        layer.m.copy_(m[0])
        layer.b.copy_(b[0])
        layer.a.copy_(a)
        layer.bias.copy_(value.sum(1) + (0.0 if bias is None else bias.double()))
    return layer


def layer_from_knot_values(cls, knots, values, bias=None, **kwargs):
    """A ``cls`` (ReLUSumLinear) layer with a bias whose edge (o, i) passes
    through the points (knots[i, k], values[o, i, k]), straight between them
    and continuing its first and last segments' lines beyond the ends: the
    piecewise-linear function that pykan's B-splines of order 1 (hat
    functions) describe by the same numbers. knots (I, K), each row sorted and
    distinct, K >= 2; values (O, I, K); bias (O,) or None. Written by
    :func:`hinge_units` with the knots as breakpoints, less the unit at the last
    knot, where the slope does not change: K units per input."""
    knots, values = torch.as_tensor(knots), torch.as_tensor(values)
    if knots.dim() != 2 or knots.shape[1] < 2:
        raise ValueError(f"from_knot_values(): knots must have shape (I, K) with K >= 2, but got "
                         f"{list(knots.shape)}")
    inputs, count = knots.shape
    if values.dim() != 3 or values.shape[1:] != knots.shape or values.shape[0] < 1:
        raise ValueError(f"from_knot_values(): values must have shape (O, I, K) with O >= 1 and "
                         f"(I, K) = {list(knots.shape)}, knots' shape, but got "
                         f"{list(values.shape)}")
    outputs = values.shape[0]
    if bias is not None:
        bias = torch.as_tensor(bias)
        if bias.shape != (outputs,):
            raise ValueError(f"from_knot_values(): bias must have shape (O,) = [{outputs}], "
                             f"but got {list(bias.shape)}")
    t, v = knots.double(), values.double()
    if not torch.isfinite(t).all():
        raise ValueError("from_knot_values(): knots must be finite")
    if not (t[:, 1:] > t[:, :-1]).all():
        raise ValueError("from_knot_values(): each input's knots (each row) must be sorted and "
                         "distinct")
    if not torch.isfinite(v).all() or (bias is not None and not torch.isfinite(bias).all()):
        raise ValueError("from_knot_values(): values and bias must be finite")
    inner = torch.diff(v, dim=-1) / torch.diff(t, dim=-1)  # (O, I, K - 1)
    slopes = torch.cat([inner[..., :1], inner, inner[..., -1:]], -1)
    anchors = torch.cat([t[:, :1], t], -1)  # each interval's line through its left knot
    anchor_values = torch.cat([v[..., :1], v], -1)
    intercepts = anchor_values - slopes * anchors
    m, b, a, value = hinge_units(t.expand(outputs, -1, -1), slopes, intercepts)
    dtype = kwargs.pop("dtype", None) or (values.dtype if values.is_floating_point()
                                          else torch.float64)
    layer = cls(inputs, outputs, count, bias=True, dtype=dtype, **kwargs)
    with torch.no_grad():
        layer.m.copy_(m[0, :, :count])
        layer.b.copy_(b[0, :, :count])
        layer.a.copy_(a[..., :count])
        layer.bias.copy_(value.sum(1) + (0.0 if bias is None else bias.double()))
    return layer
