"""fit_curve's data: argument checks, standardisation, quantiles, and the sums
over points that go through torch.distributed when a process group is up.

Every sum over points is exact (csrc/curve/exact_sum.h): it does not depend
on the order of the points, so with the points split across processes any
way, every process computes bitwise what one process with all the points
would, and returns bitwise the same model.
"""

import torch

from ..ops import _C

LOSSES = ("mse", "mae")

# Quantiles come from a histogram of this many bins, not from sorting: its
# counts add up exactly across processes, so a split fit starts where a
# one-process fit does.
QUANTILE_BINS = 8192


def check(x, y, units, loss, restarts, max_iter, revive):
    """Validated 1-D x, y; raises naming the argument, expected and got."""
    for name, value, minimum in (("units", units, 1), ("restarts", restarts, 1),
                                 ("max_iter", max_iter, 1), ("revive", revive, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"fit_curve(): {name} must be an int >= {minimum}, but got "
                             f"{value!r}")
    if loss not in LOSSES:
        raise ValueError(f"fit_curve(): loss must be one of {', '.join(map(repr, LOSSES))}, "
                         f"but got {loss!r}")
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"fit_curve(): {name} must be a torch.Tensor, but got "
                            f"{type(t).__name__}")
        if t.dim() != 1:
            raise ValueError(f"fit_curve(): {name} must be 1-D (one value per point), but got "
                             f"shape {list(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"fit_curve(): {name} must have a floating dtype, but got {t.dtype}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"fit_curve(): x and y must have the same length, but got "
                         f"{x.shape[0]} and {y.shape[0]}")
    if x.device != y.device:
        raise ValueError(f"fit_curve(): x and y must be on one device, but got {x.device} and "
                         f"{y.device}")
    for name, t in (("x", x), ("y", y)):
        bad = ~torch.isfinite(t)
        if bad.any():
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"fit_curve(): {name} must be finite, but {name}[{i}] is "
                             f"{t[i].item()} ({int(bad.sum())} non-finite values)")
    return x, y


class Points:
    """The points in float64 on the CPU, standardised: u = (x - x_mean)/x_std,
    v = (y - y_mean)/y_std, with the sums over all processes' points."""

    def __init__(self, x, y):
        # For the compiled solver, which calls back only when there is
        # something to add up.
        self.reduce_digits = all_reduce_digits if _distributed() else None
        x, y = x.detach().double().cpu(), y.detach().double().cpu()
        sums = exact_sum(torch.stack([torch.ones_like(x), x, y]))[:, 0]
        self.count = sums[0]
        self.x_mean, self.y_mean = sums[1] / self.count, sums[2] / self.count
        squares = exact_sum(torch.stack([(x - self.x_mean) ** 2, (y - self.y_mean) ** 2]))[:, 0]
        self.x_std = (squares[0] / self.count).sqrt()
        self.y_std = (squares[1] / self.count).sqrt()
        if not self.x_std > 0:
            raise ValueError("fit_curve(): x must take at least two distinct values, but all "
                             "its values are equal")
        if not self.y_std > 0:
            self.y_std = torch.ones((), dtype=torch.float64)  # a constant: nothing to scale
        self.u = (x - self.x_mean) / self.x_std
        self.v = (y - self.y_mean) / self.y_std
        local_min = self.u.min() if self.u.numel() else torch.tensor(float("inf"))
        local_max = self.u.max() if self.u.numel() else torch.tensor(float("-inf"))
        self.u_min = -_all_reduce_max(-local_min.double()[None])[0]
        self.u_max = _all_reduce_max(local_max.double()[None])[0]

    def quantile(self, probabilities):
        """Approximate quantiles of u: a histogram's cumulative counts,
        interpolated linearly within each bin."""
        if not hasattr(self, "_cumulative"):
            counts = torch.histc(self.u, QUANTILE_BINS, self.u_min.item(), self.u_max.item())
            counts = _all_reduce_sum(counts.double())  # integers: exact in float64
            self._cumulative = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
            self._cumulative = self._cumulative / self._cumulative[-1]
            self._edges = torch.linspace(self.u_min.item(), self.u_max.item(),
                                         QUANTILE_BINS + 1, dtype=torch.float64)
        return interpolate(probabilities, self._cumulative, self._edges)


def interpolate(targets, cumulative, edges):
    """Invert a piecewise-linear cumulative function given at ``edges``."""
    i = torch.searchsorted(cumulative, targets).clamp(1, len(edges) - 1)
    lo, hi = cumulative[i - 1], cumulative[i]
    frac = ((targets - lo) / (hi - lo).clamp_min(1e-300)).clamp(0, 1)
    return edges[i - 1] + frac * (edges[i] - edges[i - 1])


def _distributed():
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False
    if dist.get_backend() == "nccl":
        raise ValueError(
            "fit_curve(): sums its points on the CPU, so the process group must reduce CPU "
            "tensors (backend gloo, or init_process_group('cpu:gloo,cuda:nccl')), but its "
            "backend is nccl")
    return True


def exact_sum(values, segment=None, segments=1):
    """(R, segments) float64: the sum over every process's points of each row
    of ``values`` (R, N), in each segment (``segment[i]`` is point i's; all in
    one without), exact before the final rounding."""
    return _C.exact_round(all_reduce_digits(_C.exact_sums(values, segment, segments)))


def all_reduce_digits(digits):
    """Exact sums' digits (int64) added over the processes: integers, so in
    any order the same."""
    if _distributed():
        torch.distributed.all_reduce(digits)
    return digits


def _all_reduce_sum(t):
    if not _distributed():
        return t
    t = t.clone()
    torch.distributed.all_reduce(t)
    return t


def _all_reduce_max(t):
    if not _distributed():
        return t
    t = t.clone()
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return t
