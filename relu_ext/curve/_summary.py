"""curve_summary(): what a fitted continuous piecewise-linear curve says about
itself, as statsmodels' and R segmented's summaries do: standard errors of its
breakpoints, slopes and intercepts, intervals, and the fit's statistics.

Per curve, K segments and H = K - 1 breakpoints t_k inside the data,

    f(x) = c + α·x + Σ_k β_k·relu(x - t_k),     θ = (c, α, β_1..β_H, t_1..t_H),

is a nonlinear least-squares model in θ (linear in c, α, β). Its covariance
is the usual asymptotic one, σ²·(JᵀWJ)⁻¹ with J = ∂f/∂θ at the points; the
slopes (α + Σ_{k<j} β_k) and intercepts (c - Σ_{k<j} β_k·t_k) get theirs by the
delta method. A breakpoint's Wald interval leans on that linearisation, and
the error is far from quadratic in a breakpoint (it changes by whole points
crossing it), so small samples undercover; the default breakpoint interval
is the profile likelihood's instead (the F test inverted), from the
compiled solver.
"""

import math
import numbers
import operator
from typing import NamedTuple, Optional

import numpy
import torch

from ..nn import ReLUSum, to_piecewise
from ..ops import _C
from ._stats import t_quantile
from ._tables import batch_table, count, curve_tables, number

_NAME = "curve_summary()"
# Sizes of (curves × points × parameters) worked on at once: a big batch in slices.
_CHUNK_ELEMENTS = 1 << 22
# Per curve: (name, which length the trailing dim has: "H" breakpoints, "K" segments, None).
_FIELDS = (("breakpoints", "H"), ("slopes", "K"), ("intercepts", "K"), ("se_breakpoints", "H"),
           ("se_slopes", "K"), ("se_intercepts", "K"), ("nobs", None), ("n_params", None),
           ("dof", None), ("rss", None), ("r_squared", None), ("sigma", None),
           ("log_likelihood", None), ("aic", None), ("bic", None))


# How the breakpoints' profile intervals are calibrated (see curve_summary).
CALIBRATIONS = ("auto", "f", "bootstrap")
# calibrate="auto" bootstraps a curve with a breakpoint whose slope change,
# over the noise, times the range of x and √n, is below this: where the
# coverage study (docs/curves.md) finds the F test's and the t
# distribution's intervals short.
_WELL_DETERMINED = 400


def curve_summary(model, x, y, *, weights=None, through=None, fixed_breakpoints=False,
                  level=0.95, calibrate="auto", replicates=200, seed=0):
    """The statistics of a piecewise-linear fit ``model`` to ``(x, y)``: a
    :class:`CurveSummary` (print it for statsmodels-like tables).

    Args:
        model: a ``ReLUSum`` with ``bias=True`` on 1-D data, as
            ``fit_curve`` returns it (or ``fit`` trains it): one curve
            (``channels=None``), or B curves (``channels=B, dim=0``).
        x, y: the data the model was fitted to: (N,) for one curve, (B, N)
            for a batch. Tensors, or anything ``numpy.asarray`` takes.
        weights: as ``fit_curve``'s: (N,) or (B, N), finite, >= 0, not all
            zero per curve; precision weights (weighted least squares), and a
            point of weight 0 is left out entirely.
        through: as ``fit_curve``'s, ``(xc, yc)`` each (P,) or (B, P): the
            points the fit was made to pass through, within the range of x
            (beyond it, the breakpoint that takes a point up is not fixed by
            the data). Each distinct point takes a parameter away (p = 2K -
            P), the standard errors are the constrained fit's, and the
            profile intervals re-fit under the constraint.
            The bootstrap does not simulate constrained fits: with
            ``through``, calibrate="auto" uses the F test, and
            calibrate="bootstrap" is an error.
        fixed_breakpoints: treat the breakpoints as known (as if given to
            ``fit_curve(breakpoints=...)``): the model is then linear, p =
            K + 1 parameters, and its covariance is exactly weighted least
            squares'. Otherwise they count as estimated, p = 2K.
        level: the confidence level of the summary's intervals, in (0, 1).
        calibrate: how far the breakpoints' profile-likelihood intervals
            reach. "f": the F(1, dof) test's limit, exact for a linear model
            and right once the breakpoints are well determined; but where
            they are not, the error is far from quadratic in them and the F
            test's intervals come out short (the coverage study in
            docs/curves.md). "bootstrap": each breakpoint's
            limit from ``replicates`` curves simulated from the fit (its
            fitted values plus normal noise of the residuals' variance) and
            fitted afresh: the level-quantile of the likelihood-ratio
            statistic of the true breakpoint among them, never below the F
            test's; and the q of the slopes and intercepts next to it, the
            level-quantile of each replicate's error over its own standard
            error (the bootstrap-t), never below the t distribution's. A
            replicate re-fits the breakpoint with its neighbour on each
            side, on the points between the next breakpoints out
            (csrc/curve/profile.h says why that is the whole curve's
            statistic), so its cost does not grow with K. Such a weak
            breakpoint's interval is all of the set the limit calibrates,
            from its outermost τ (where the kink is weak the set comes in
            pieces), its neighbours searched on a grid as well as by L-BFGS;
            and the intervals of its segments' slopes and intercepts also
            hold the lines the curve has with the breakpoint at either end
            of it (near the data's ends, where the end segment still holds
            two points).
            "auto" (the default): the bootstrap for each breakpoint whose
            change of slope Δs is small for the noise, ``|Δs|·(x range)·√n/σ
            < 400``, or whose standard error is over a quarter of its room
            (the distance to the data's end or the next breakpoint), and
            for the segments next to it; the F test and the t
            distribution for the others, where the study finds them right,
            so that a well-determined fit's summary stays fast.
        replicates, seed: the bootstrap's number of simulated curves and the
            seed of their noise: the same seed gives the same intervals.

    Only the model's breakpoints strictly inside the range of each curve's
    x (of positive weight) with a nonzero change of slope count: one outside
    the data, or where the slope does not change, changes nothing the data
    can see and is not a parameter. Everything is computed in float64 from
    the model's parameters, whatever their dtype. A curve whose JᵀWJ is
    singular (a segment without enough points, say) gets NaN standard
    errors, never a wrong number.

    Raises ValueError or TypeError naming the argument: a model that is not a
    ReLUSum with a bias, data of another shape, negative, non-finite or
    all-zero weights, non-finite points, a level outside (0, 1), and no
    residual degrees of freedom (no more points than parameters).

    Example:
        >>> import torch, relu_ext
        >>> x = torch.linspace(0, 4, 41, dtype=torch.float64)
        >>> y = (x - 1.5).abs() + 0.01 * torch.sin(7 * x)
        >>> model, _ = relu_ext.fit_curve(x, y, 2)
        >>> summary = relu_ext.curve_summary(model, x, y)
        >>> summary.slopes.shape, summary.dof
        (torch.Size([2]), tensor(37))
    """
    data = _check(model, x, y, weights, through, fixed_breakpoints, level)
    _check_calibration(calibrate, replicates, seed, data.through_x is not None)
    parameters = [None if p is None else p.detach().double().cpu()
                  for p in (model.m, model.b, model.a, model.bias)]
    pieces = to_piecewise(*parameters)
    if not data.batched:
        pieces = [field[None] for field in pieces]
    # A breakpoint within rounding of the data's ends is at the end (fit_curve
    # puts a one-unit line's there), in the model's precision.
    rounding = 16 * torch.finfo(model.m.dtype).eps * torch.maximum(data.low.abs(), data.high.abs())
    theta = _parameters(*pieces, data.low + rounding, data.high - rounding)
    rows = _statistics(data, *theta, fixed_breakpoints)
    return CurveSummary(rows, data, float(level), fixed_breakpoints,
                        _Calibration(calibrate, replicates, seed))


class CurveSummary:
    """What ``curve_summary`` found, per curve: tensors for one curve, with a
    leading dim of B for a batch (rows of curves with fewer segments padded
    with NaN; ``summary[c]`` is curve c's own summary). All float64, on the CPU.

    Attributes:
        breakpoints: (H,) the breakpoints inside the data, ascending.
        slopes, intercepts: (K,) segment j, left to right, is the line
            ``slopes[j]·x + intercepts[j]``.
        se_breakpoints, se_slopes, se_intercepts: their standard errors (delta
            method on σ²·(JᵀWJ)⁻¹). With ``fixed_breakpoints`` the breakpoints
            are known, and se_breakpoints is NaN.
        nobs: n, the points of positive weight. n_params: p, 2K parameters
            (K slopes, an intercept, K - 1 breakpoints), K + 1 with
            ``fixed_breakpoints``, less one per ``through`` point (the count
            fit_curve's BIC makes, csrc/curve/criteria.h). dof: n - p.
        rss: Σ w·r², the weighted residual sum of squares.
        r_squared: 1 - RSS/TSS, TSS = Σ w·(y - ȳ_w)² about the weighted mean.
        sigma: √(RSS/dof), the residual standard error.
        log_likelihood: the Gaussian one, as statsmodels' WLS:
            -n/2·(log 2π + log(RSS/n) + 1) + ½·Σ log w, the RSS floored at
            1e-14 of Σ w·(y - ȳ_w)² (below it is rounding, not fit).
        aic, bic: -2·llf + 2p and -2·llf + p·log n (σ not counted, as
            statsmodels); the bic is the score ``fit_curve(units="auto")``
            gave the fit's number of units.
        level: the intervals' confidence level; fixed_breakpoints: as given.

    ``conf_int()`` gives the intervals; ``str(summary)`` the tables (for a
    batch, a line per curve); a batch's ``len(summary)`` is B and
    ``summary[c]`` curve c's summary.
    """

    def __init__(self, rows, data, level, fixed_breakpoints, calibration):
        self._rows, self._data = rows, data  # (B, ...) per field; _Data
        self.level, self.fixed_breakpoints = level, fixed_breakpoints
        self._batched = data.batched
        self._calibration = calibration
        # level -> _Profiles: computed at first use
        self._profiles = {}
        for name, _ in _FIELDS:
            setattr(self, name, rows[name] if self._batched else rows[name][0])

    def conf_int(self, level=None, method="profile"):
        """``{"breakpoints": (low, high), "slopes": (low, high), "intercepts":
        (low, high)}`` at ``level`` (None: the summary's), each shaped as its
        attribute.

        ``method="profile"`` (the default): the breakpoints' profile
        likelihood intervals, every τ at which fixing the breakpoint (every
        other parameter re-fitted) raises the RSS by at most the limit (the
        F(1, dof) test's factor 1 + t²/dof, or the bootstrap's), up to the
        data's ends and the neighbouring breakpoints; slopes and intercepts
        estimate ± q·se, q the t distribution's quantile t_{(1+level)/2, dof}
        or, bootstrapped, the level-quantile of ``|estimate* - estimate|/se*``
        over the replicates, se* each one's own (never below the t
        quantile; infinite where too many replicates' JᵀWJ are singular),
        widened to the lines at a bootstrapped breakpoint's interval ends.
        Which breakpoints and segments are bootstrapped: curve_summary's
        ``calibrate``; whether any was: ``bootstrapped``.
        Computed once per level.
        ``method="wald"``: all three estimate ± t_q·se, the Jacobian's
        intervals alone (the baseline the coverage study compares with).
        With ``fixed_breakpoints`` the model is linear and its t intervals
        exact: those, and NaN for the known breakpoints."""
        level = self.level if level is None else _checked_level(level, "CurveSummary.conf_int()")
        if method not in ("profile", "wald"):
            raise ValueError(f"CurveSummary.conf_int(): method must be 'profile' or 'wald', but "
                             f"got {method!r}")
        if method == "profile" and not self.fixed_breakpoints:
            intervals = self._profile(level).intervals
        else:
            intervals = _wald_intervals(self._rows, level)
        if self.fixed_breakpoints:
            nan = torch.full_like(self._rows["breakpoints"], math.nan)
            intervals = dict(intervals, breakpoints=(nan, nan))
        return {name: tuple(bound if self._batched else bound[0] for bound in pair)
                for name, pair in intervals.items()}

    def __len__(self):
        self._need_batch("len()")
        return self._rows["nobs"].shape[0]

    def __getitem__(self, curve):
        """Curve ``curve``'s own summary (an int, negative from the end),
        trimmed to its own segments."""
        self._need_batch("indexing")
        c = _curve_index(curve, len(self))
        kinks = int(self._rows["breakpoints"][c].isfinite().sum())
        lengths = {"H": kinks, "K": kinks + 1, None: None}
        rows = {name: self._rows[name][c:c + 1, :lengths[kind]] if kind else
                self._rows[name][c:c + 1] for name, kind in _FIELDS}
        data = self._data._replace(batched=False, **{
            name: None if value is None else value[c:c + 1]
            for name, value in self._data._asdict().items() if name != "batched"})
        one = CurveSummary(rows, data, self.level, self.fixed_breakpoints, self._calibration)
        one._profiles = {
            level: _Profiles({name: tuple(
                bound[c:c + 1, :lengths["H" if name == "breakpoints" else "K"]]
                for bound in pair) for name, pair in found.intervals.items()},
                found.bootstrapped[c:c + 1])
            for level, found in self._profiles.items()}
        return one

    def __repr__(self):
        state = "fixed" if self.fixed_breakpoints else "estimated"
        if self._batched:
            return (f"CurveSummary({count(len(self), 'curve')}, breakpoints {state}, "
                    f"level={self.level:g})")
        return (f"CurveSummary(segments={self.slopes.shape[0]}, nobs={int(self.nobs)}, "
                f"dof={int(self.dof)}, sigma={number(self.sigma)}, "
                f"r_squared={number(self.r_squared)}, breakpoints {state})")

    def __str__(self):
        return batch_table(self) if self._batched else curve_tables(self)

    def _need_batch(self, what):
        if not self._batched:
            raise TypeError(f"CurveSummary: {what} needs a batch's summary, but this is one "
                            f"curve's")

    @property
    def bootstrapped(self):
        """Whether any of the breakpoints' profile intervals at the summary's
        level was calibrated by the bootstrap (a (B,) tensor for a batch),
        or all by the F test; see curve_summary's ``calibrate``."""
        flags = self._profile(self.level).bootstrapped
        return flags if self._batched else bool(flags[0])

    def _profile(self, level):
        if level not in self._profiles:
            self._profiles[level] = _profile_intervals(self._data, self._rows, level,
                                                       self._calibration)
        return self._profiles[level]


# -- the arguments ---------------------------------------------------------------------------------

class _Data(NamedTuple):
    """The points as float64 CPU rows, (B, N) (B = 1 for one curve). Points of
    weight 0 are moved to (low, 0), so that every product with their weight
    is an exact 0 whatever they held."""

    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor         # all 1 when no weights were given
    positive: torch.Tensor  # w > 0
    low: torch.Tensor       # (B,) the range of x of positive weight
    high: torch.Tensor
    batched: bool
    through_x: Optional[torch.Tensor]  # (B, P): the points passed through, or None
    through_y: Optional[torch.Tensor]


def _check(model, x, y, weights, through, fixed_breakpoints, level):
    """The data as _Data; raises naming the argument, what was expected and what was given."""
    if not isinstance(model, ReLUSum):
        raise TypeError(f"{_NAME}: model must be a relu_ext.ReLUSum (as fit_curve returns), but "
                        f"got {type(model).__name__}")
    if model.bias is None:
        raise ValueError(f"{_NAME}: model must have a bias (ReLUSum(..., bias=True), as "
                         f"fit_curve returns): a curve has an intercept, but got {model}")
    if model.channels is not None and model.dim != 0:
        raise ValueError(f"{_NAME}: model must have dim=0 with channels (a batch of curves, "
                         f"x of shape (channels, N)), but got dim={model.dim}")
    if not isinstance(fixed_breakpoints, bool):
        raise TypeError(f"{_NAME}: fixed_breakpoints must be a bool, but got "
                        f"{fixed_breakpoints!r}")
    _checked_level(level, _NAME)
    x, y = _as_float64("x", x), _as_float64("y", y)
    batched = model.channels is not None
    if batched and (x.dim() != 2 or x.shape[0] != model.channels):
        raise ValueError(f"{_NAME}: x must have shape (channels, N) = ({model.channels}, N) for a "
                         f"model of channels={model.channels}, but got {list(x.shape)}")
    if not batched and x.dim() != 1:
        raise ValueError(f"{_NAME}: x must be 1-D (N,) for a model of one curve (channels=None), "
                         f"but got shape {list(x.shape)}")
    if y.shape != x.shape:
        raise ValueError(f"{_NAME}: y must have x's shape {list(x.shape)}, but got "
                         f"{list(y.shape)}: data of another length")
    if x.shape[-1] == 0:
        raise ValueError(f"{_NAME}: x and y are empty (shape {list(x.shape)}): there are no "
                         f"points")
    w = torch.ones_like(x) if weights is None else _as_float64("weights", weights)
    if w.shape != x.shape:
        raise ValueError(f"{_NAME}: weights must have x's shape {list(x.shape)}, but got "
                         f"{list(w.shape)}")
    x, y, w = (t.reshape(-1, t.shape[-1]) for t in (x, y, w))
    _require(torch.isfinite(w), "weights", "finite", w, batched)
    _require(w >= 0, "weights", ">= 0", w, batched)
    positive = w > 0
    if not positive.any(1).all():
        which = f"curve {int((~positive.any(1)).nonzero()[0, 0])}'s are" if batched else \
            "they are"
        raise ValueError(f"{_NAME}: weights must not be all zero, but {which}")
    for name, t in (("x", x), ("y", y)):
        _require(torch.isfinite(t) | ~positive, name,
                 "finite" + ("" if weights is None else " where the weight is positive"),
                 t, batched)
    low = torch.where(positive, x, math.inf).amin(1)
    high = torch.where(positive, x, -math.inf).amax(1)
    x = torch.where(positive, x, low[:, None])
    y = torch.where(positive, y, 0.0)
    through_x, through_y = _check_through(through, x.shape[0], batched)
    if through_x is not None:
        # Beyond the data, a breakpoint between the point and the data takes
        # the point up, and where it sits the data do not say: no covariance.
        outside = (through_x < low[:, None]) | (through_x > high[:, None])
        if outside.any():
            row, column = (int(i) for i in outside.nonzero()[0])
            where = f"through[0][{row}, {column}]" if batched else f"through[0][{column}]"
            raise ValueError(
                f"{_NAME}: through points must lie within the range of x of positive weight "
                f"([{low[row].item():g}, {high[row].item():g}]"
                f"{f' for curve {row}' if batched else ''}), but {where} is "
                f"{through_x[row, column].item():g}: beyond the data, the breakpoint that "
                f"takes the point up is not fixed by the data, so there are no standard "
                f"errors to give")
    return _Data(x, y, torch.where(positive, w, 0.0), positive, low, high, batched, through_x,
                 through_y)


def _check_through(through, curves, batched):
    """through's (xc, yc) as float64 (B, P) rows, or (None, None)."""
    if through is None:
        return None, None
    if not (isinstance(through, (tuple, list)) and len(through) == 2):
        raise ValueError(f"{_NAME}: through must be a pair (xc, yc) of the points' x and y, "
                         f"but got {type(through).__name__}")
    rows = []
    for name, value in (("through[0] (xc)", through[0]), ("through[1] (yc)", through[1])):
        t = _as_float64(name, value)
        if t.dim() == 1:
            t = t.expand(curves, t.shape[0])
        if t.dim() != 2 or t.shape[0] != curves or (not batched and _through_dims(value) != 1):
            shapes = "(P,)" + (f" or ({curves}, P)" if batched else "")
            raise ValueError(f"{_NAME}: {name} must have shape {shapes}, but got "
                             f"{list(t.shape)}")
        _require(torch.isfinite(t), name, "finite", t, batched)
        rows.append(t.contiguous())
    if rows[0].shape != rows[1].shape:
        raise ValueError(f"{_NAME}: through's xc and yc must have one shape, but got "
                         f"{list(rows[0].shape)} and {list(rows[1].shape)}")
    if rows[0].shape[1] == 0:
        return None, None  # no point to pass through
    return rows[0], rows[1]


def _through_dims(value):
    return value.dim() if isinstance(value, torch.Tensor) else numpy.ndim(value)


def _as_float64(name, value):
    """A tensor, or anything numpy.asarray takes, as a float64 CPU tensor."""
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"{_NAME}: {name} must be real numbers, but got {value.dtype}")
        return value.detach().to("cpu", torch.float64)
    try:
        array = numpy.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{_NAME}: {name} must be numbers (a tensor, an array, a list, a pandas "
                        f"Series), but got {type(value).__name__} ({e})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{_NAME}: {name} must be numbers (a tensor, an array, a list, a pandas "
                        f"Series), but got {type(value).__name__} of dtype {array.dtype}")
    return torch.from_numpy(numpy.array(array, dtype=numpy.float64))


def _require(good, name, what, values, batched):
    """Raise naming the first element of ``values`` where ``good`` is False."""
    if good.all():
        return
    row, column = (int(i) for i in (~good).nonzero()[0])
    where = f"{name}[{row}, {column}]" if batched else f"{name}[{column}]"
    raise ValueError(f"{_NAME}: {name} must be {what}, but {where} is "
                     f"{values[row, column].item()}")


def _checked_level(level, caller):
    if isinstance(level, bool) or not isinstance(level, numbers.Real):
        raise TypeError(f"{caller}: level must be a number in (0, 1), but got "
                        f"{type(level).__name__} {level!r}")
    if not 0 < level < 1:
        raise ValueError(f"{caller}: level must be in (0, 1), such as 0.95, but got {level!r}")
    return float(level)


def _curve_index(curve, curves):
    try:
        c = operator.index(curve)
    except TypeError:
        raise TypeError(f"CurveSummary: a batch's summary is indexed by an int (the curve), but "
                        f"got {type(curve).__name__}") from None
    if not -curves <= c < curves:
        raise IndexError(f"CurveSummary: curve {c} is out of range for {curves} curves")
    return c % curves


# -- the statistics --------------------------------------------------------------------------------

def _parameters(breakpoints, slopes, intercepts, low, high):
    """θ = (c, α, β, t) per curve from the model's intervals (B, kinks) and
    (B, kinks + 1): t (B, H) the breakpoints inside (low, high) where the slope
    changes, ascending and NaN-padded; c, α the line of the first segment on
    the data; β (B, H) the changes of slope (0 in the padding)."""
    change = slopes.diff(dim=1)
    kept = (breakpoints > low[:, None]) & (breakpoints < high[:, None]) & (change != 0)
    kinks = int(kept.sum(1).max())
    t = torch.where(kept, breakpoints, math.inf).sort(1).values[:, :kinks]
    t = torch.where(torch.isinf(t), math.nan, t)
    # Each segment's line is the model's interval line at the segment's middle
    # (the ends of the padding's segments are both at high).
    ends = torch.where(torch.isnan(t), high[:, None], t)
    middle = (torch.cat([low[:, None], ends], 1) + torch.cat([ends, high[:, None]], 1)) / 2
    interval = torch.searchsorted(torch.nan_to_num(breakpoints, nan=math.inf), middle)
    segment_slopes = slopes.gather(1, interval)
    c = intercepts.gather(1, interval[:, :1])[:, 0]
    beta = torch.where(torch.isnan(t), 0.0, segment_slopes.diff(dim=1))
    return c, segment_slopes[:, 0], beta, t


def _statistics(data, c, alpha, beta, t, fixed_breakpoints):
    """Every field of _FIELDS, (B, ...) NaN-padded, computed a group of curves
    with the same number of breakpoints at a time."""
    curves, points = data.x.shape
    kinks = t.isfinite().sum(1)
    nobs = data.positive.sum(1)
    # A point given twice is one constraint (fit_curve rejects two y at one x).
    through = [0] * curves if data.through_x is None else \
        [len(set(row)) for row in data.through_x.tolist()]
    n_params = torch.tensor([_C.free_parameters(k + 1, p, not fixed_breakpoints)
                             for k, p in zip(kinks.tolist(), through)], dtype=torch.long)
    dof = nobs - n_params
    if (dof <= 0).any():
        b = int((dof <= 0).nonzero()[0, 0])
        which = f"curve {b} has" if data.batched else "there are"
        raise ValueError(
            f"{_NAME}: needs more points than parameters, but {which} {int(nobs[b])} points of "
            f"positive weight for {int(n_params[b])} parameters ({int(kinks[b]) + 1} segments"
            f"{', breakpoints fixed' if fixed_breakpoints else ''}): no residual degrees of "
            f"freedom")
    width = t.shape[1]
    nan = math.nan
    rows = {"breakpoints": t, "nobs": nobs, "n_params": n_params, "dof": dof,
            "se_breakpoints": torch.full((curves, width), nan, dtype=torch.float64)}
    for name in ("slopes", "intercepts", "se_slopes", "se_intercepts"):
        rows[name] = torch.full((curves, width + 1), nan, dtype=torch.float64)
    for name in ("rss", "r_squared", "sigma", "log_likelihood", "aic", "bic"):
        rows[name] = torch.full((curves,), nan, dtype=torch.float64)

    for h in kinks.unique().tolist():
        group = (kinks == h).nonzero()[:, 0]
        for part in group.split(max(1, _CHUNK_ELEMENTS // (points * (2 * h + 2)))):
            found = _fit_statistics(data, part, c[part], alpha[part], beta[part, :h],
                                    t[part, :h], fixed_breakpoints, dof[part])
            for name, value in found.items():
                if value.dim() == 1:
                    rows[name][part] = value
                else:
                    rows[name][part, :value.shape[1]] = value
    return _with_likelihood(rows, data)


def _fit_statistics(data, part, c, alpha, beta, t, fixed_breakpoints, dof):
    """RSS, σ, slopes, intercepts and their standard errors for the G curves
    ``part`` of data, of H breakpoints each: c, α (G,), β and t (G, H), dof (G,).
    The lines and their errors are the compiled solver's (csrc/curve/lines.h),
    the bootstrap's own."""
    x, y, w = data.x[part], data.y[part], data.w[part]
    fitted = c[:, None] + alpha[:, None] * x + \
        (beta[:, None, :] * (x[..., None] - t[:, None, :]).clamp_min(0)).sum(-1)
    rss = (w * (y - fitted) ** 2).sum(1)
    sigma = (rss / dof).sqrt()
    coef = torch.cat([c[:, None], alpha[:, None], beta], 1).contiguous()
    through = None if data.through_x is None else data.through_x[part].contiguous()
    lines = _C.curve_lines(x.contiguous(), w.contiguous(), t.contiguous(), coef, sigma,
                           not fixed_breakpoints, through)
    found = {"slopes": lines.slopes, "intercepts": lines.intercepts,
             "se_slopes": lines.se_slopes, "se_intercepts": lines.se_intercepts, "rss": rss,
             "sigma": sigma}
    if not fixed_breakpoints:
        found["se_breakpoints"] = lines.se_breakpoints
    return found


def _with_likelihood(rows, data):
    """R², and the log-likelihood, AIC and BIC of the compiled selection's
    own criteria (csrc/curve/criteria.h: statsmodels' WLS conventions)."""
    w = data.w
    mean = (w * data.y).sum(1) / w.sum(1)
    tss = (w * (data.y - mean[:, None]) ** 2).sum(1)
    criteria = _C.fit_criteria(data.x, data.y, w, rows["rss"].contiguous(), rows["n_params"])
    rows.update(r_squared=1 - rows["rss"] / tss, log_likelihood=criteria.log_likelihood,
                aic=criteria.aic, bic=criteria.bic)
    return rows


def _t_quantiles(p, dof):
    """t_quantile(p, d) for each d of the (B,) tensor dof (few distinct values: cached)."""
    return torch.tensor([t_quantile(p, d) for d in dof.tolist()], dtype=torch.float64)


class _Profiles(NamedTuple):
    """conf_int(method="profile")'s intervals at one level, (B, ...) per name."""
    intervals: dict
    bootstrapped: torch.Tensor  # (B,): whether the bootstrap calibrated any of a curve's


class _Calibration(NamedTuple):
    how: str         # one of CALIBRATIONS
    replicates: int
    seed: int


def _check_calibration(calibrate, replicates, seed, through):
    if calibrate not in CALIBRATIONS:
        raise ValueError(f"{_NAME}: calibrate must be one of "
                         f"{', '.join(map(repr, CALIBRATIONS))}, but got {calibrate!r}")
    if through and calibrate == "bootstrap":
        raise ValueError(f"{_NAME}: calibrate='bootstrap' simulates unconstrained fits, so it "
                         f"does not take through points; use calibrate='f' (or 'auto', which "
                         f"then uses the F test)")
    for name, value, least in (("replicates", replicates, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{_NAME}: {name} must be an int >= {least}, but got {value!r}")


def _wald_intervals(rows, level):
    """Every field's estimate ± t_{(1+level)/2, dof}·se."""
    quantile = _t_quantiles((1 + level) / 2, rows["dof"])[:, None]
    return {name: (rows[name] - quantile * rows["se_" + name],
                   rows[name] + quantile * rows["se_" + name])
            for name in ("breakpoints", "slopes", "intercepts")}


def _to_bootstrap(data, rows, calibration):
    """Which breakpoints (B, H) curve_summary's ``calibrate`` bootstraps
    (the compiled bootstrap re-fits each with its neighbours)."""
    t = rows["breakpoints"]
    if data.through_x is not None:
        return torch.zeros_like(t, dtype=torch.bool)  # the F test alone (_check_calibration)
    if calibration.how != "auto":
        return t.isfinite() & (calibration.how == "bootstrap")
    change = rows["slopes"].diff(dim=1).abs()
    signal = change * (data.high - data.low)[:, None] * rows["nobs"].double().sqrt()[:, None] \
        / rows["sigma"][:, None]
    # A noisy fit can show a large slope change where the truth has a small
    # one (a sharp spurious bend): then its breakpoints' standard errors are
    # large for the room they have, the data's ends or the next breakpoint.
    ends = torch.cat([data.low[:, None], t.nan_to_num(math.inf), data.high[:, None]], 1)
    ends = torch.cat([data.low[:, None], torch.minimum(ends[:, 1:-1], data.high[:, None]),
                      data.high[:, None]], 1)
    room = torch.minimum(ends[:, 1:-1] - ends[:, :-2], ends[:, 2:] - ends[:, 1:-1])
    crowded = 4 * rows["se_breakpoints"] > room
    # NaN (padding) is neither below nor crowded; a perfect fit (σ = 0) gives inf.
    return t.isfinite() & ((signal < _WELL_DETERMINED) | crowded |
                           ~rows["se_breakpoints"].isfinite())


def _profile_intervals(data, rows, level, calibration):
    """conf_int(method="profile")'s intervals, (B, ...), and which curves the
    bootstrap calibrated (B,). Breakpoints: from the compiled solver,
    breakpoint k fixed at τ and everything else re-fitted, the τ whose RSS
    stays within the limit (the F(1, dof) test's 1 + t²/dof, or the
    bootstrap's) of the minimum; slopes and intercepts: Wald's, their
    quantile the bootstrap's for the segments it re-fitted, widened to the
    lines at the bootstrapped breakpoints' interval ends."""
    intervals = _wald_intervals(rows, level)
    t = rows["breakpoints"].contiguous()
    boot = _to_bootstrap(data, rows, calibration)
    if t.shape[1] == 0:
        return _Profiles(intervals, boot.any(1))
    quantile = _t_quantiles((1 + level) / 2, rows["dof"])
    limit = 1 + quantile ** 2 / rows["dof"]
    # Where the search looks first: the Wald interval's ends.
    wald = (quantile[:, None] * rows["se_breakpoints"]).contiguous()
    replicates = calibration.replicates if boot.any() else 0
    found = _C.breakpoint_intervals(
        data.x, data.y, data.w, t, limit, wald, replicates=replicates, level=level,
        dof=rows["dof"], seed=calibration.seed, bootstrap=boot, through_x=data.through_x,
        through_y=data.through_y)
    intervals["breakpoints"] = (found.low, found.high)
    if not replicates:
        return _Profiles(intervals, boot.any(1))
    for name, replicated, own, least, greatest in (
            ("slopes", found.slopes, found.se_slopes, found.least_slopes,
             found.greatest_slopes),
            ("intercepts", found.intercepts, found.se_intercepts, found.least_intercepts,
             found.greatest_intercepts)):
        estimate, se = rows[name], rows["se_" + name]
        width = replicated.shape[2]
        # Studentised, the bootstrap-t: each replicate's error over its own
        # standard error, which grows and shrinks with where its breakpoints
        # fell as the fit's does (over the fit's, the quantile was set by the
        # replicates whose breakpoints fell badly: too wide for the others).
        # A replicate whose JᵀWJ is singular has an unbounded error.
        errors = (replicated - estimate[:, None, :width]).abs() / own
        errors = torch.where(replicated.isfinite() & own.isnan(), math.inf, errors)
        # Never below the t distribution's, as the breakpoints' limits; the
        # t distribution's alone for the segments no replicate re-fitted
        # (fmax passes over their NaN).
        q = torch.fmax(_C.rank_quantile(errors.contiguous(), level), quantile[:, None])
        bounds = intervals[name]
        bounds[0][:, :width] = estimate[:, :width] - q * se[:, :width]
        bounds[1][:, :width] = estimate[:, :width] + q * se[:, :width]
        # And every line the curve takes with a bootstrapped breakpoint at
        # either end of its interval: where the breakpoint is that unsure,
        # so are the lines beside it, beyond what the replicates' spread
        # about the fitted breakpoint shows (fmin/fmax pass over NaN).
        bounds[0][:, :width] = torch.fmin(bounds[0][:, :width], least[:, :width])
        bounds[1][:, :width] = torch.fmax(bounds[1][:, :width], greatest[:, :width])
    return _Profiles(intervals, boot.any(1))
