"""fit_curve's arguments, checked and put in the form the compiled search
takes, and the sums over points that go through torch.distributed when a
process group is up.

Every sum over points is exact (csrc/curve/exact_sum.h): it does not depend
on the order of the points, so with the points split across processes any
way, every process computes bitwise what one process with all the points
would, and returns bitwise the same model.
"""

from typing import NamedTuple, Optional

import torch

from ..ops import _C

LOSSES = ("mse", "mae")
# How units="auto" chooses the number of units (csrc/curve/select.h).
CRITERIA = ("bic", "cv")
# The least value of each of fit_curve's counts: the one table fit_curve,
# relu_ext.sklearn's estimator and the command line check them by.
LEAST = {"units": 1, "max_units": 1, "folds": 2, "restarts": 1, "max_iter": 1, "revive": 0,
         "mae_rounds": 0}


def check_count(caller, name, value, integral=(int,)):
    """Raise unless ``value`` is an int (of the types ``integral``, not a
    bool) of at least LEAST[name]."""
    least = LEAST[name]
    if isinstance(value, bool) or not isinstance(value, integral) or value < least:
        raise ValueError(f"{caller}: {name} must be an int >= {least}, but got {value!r}")


def check_selection(caller, max_units, select, folds, *, integral=(int,), any_select=False):
    """units="auto"'s options: max_units, select and folds (folds for
    select="cv", or whatever select is with ``any_select``)."""
    if not (isinstance(select, str) and select in CRITERIA):
        raise ValueError(f"{caller}: select must be one of {', '.join(map(repr, CRITERIA))}, "
                         f"but got {select!r}")
    check_count(caller, "max_units", max_units, integral)
    if select == "cv" or any_select:
        check_count(caller, "folds", folds, integral)


class Problem(NamedTuple):
    """The curves to fit as the compiled search takes them: float64 CPU
    tensors of B rows (B = 1 for 1-D data)."""

    x: torch.Tensor                  # (B, N)
    y: torch.Tensor                  # (B, N)
    weights: Optional[torch.Tensor]  # (B, N) or None (all 1)
    breakpoints: Optional[torch.Tensor]  # (B, units - 1) or None (free)
    through_x: Optional[torch.Tensor]    # (B, P) or None
    through_y: Optional[torch.Tensor]
    batched: bool                    # x was (B, N)
    dtype: torch.dtype               # x's: the model's
    device: torch.device
    given_x: torch.Tensor            # x as given (as a tensor), to evaluate the model on


def check(x, y, units, *, max_units, select, folds, weights, breakpoints, through, monotone,
          convex, loss, restarts, max_iter, revive, mae_rounds):
    """The Problem of fit_curve's arguments; raises naming the argument, what
    was expected and what was given."""
    auto = isinstance(units, str) and units == "auto"
    if not auto and (not isinstance(units, int) or isinstance(units, bool)
                     or units < LEAST["units"]):
        raise ValueError(f"fit_curve(): units must be an int >= {LEAST['units']} or \"auto\", "
                         f"but got {units!r}")
    for name, value in (("restarts", restarts), ("max_iter", max_iter), ("revive", revive),
                        ("mae_rounds", mae_rounds)):
        check_count("fit_curve()", name, value)
    if auto:
        check_selection("fit_curve()", max_units, select, folds)
    if auto and breakpoints is not None:
        raise ValueError("fit_curve(): breakpoints fix the number of units (one more than "
                         "them), so they cannot be given with units=\"auto\"")
    if loss not in LOSSES:
        raise ValueError(f"fit_curve(): loss must be one of {', '.join(map(repr, LOSSES))}, "
                         f"but got {loss!r}")
    if monotone is not None and (isinstance(monotone, bool) or monotone not in (1, -1)):
        raise ValueError(f"fit_curve(): monotone must be None, +1 (non-decreasing) or -1 "
                         f"(non-increasing), but got {monotone!r}")
    if convex is not None and not isinstance(convex, bool):
        raise ValueError(f"fit_curve(): convex must be None, True (convex) or False (concave), "
                         f"but got {convex!r}")
    x, y = as_points("x", x), as_points("y", y)
    if x.dim() not in (1, 2):
        raise ValueError(f"fit_curve(): x must be 1-D (one curve of N points) or 2-D (B curves "
                         f"of N points), but got shape {list(x.shape)}")
    if x.shape != y.shape:
        if x.dim() == y.dim() == 1:
            raise ValueError(f"fit_curve(): x and y must have the same length, but got "
                             f"{x.shape[0]} and {y.shape[0]}")
        raise ValueError(f"fit_curve(): x and y must have the same shape, but got "
                         f"{list(x.shape)} and {list(y.shape)}")
    if x.device != y.device:
        raise ValueError(f"fit_curve(): x and y must be on one device, but got {x.device} and "
                         f"{y.device}")
    batched = x.dim() == 2
    curves, n = (x.shape if batched else (1, x.shape[0]))
    if x.numel() == 0 and not (distributed() and not batched):
        raise ValueError(f"fit_curve(): x and y are empty (shape {list(x.shape)}): there are no "
                         f"points to fit")
    x2 = x.detach().reshape(curves, n).double().cpu().contiguous()
    y2 = y.detach().reshape(curves, n).double().cpu().contiguous()

    w2 = None
    if weights is not None:
        w2 = _rows("weights", weights, curves, n, batched, "the points")
        if (w2 < 0).any():
            raise ValueError(f"fit_curve(): weights must be >= 0, but "
                             f"{_where('weights', w2 < 0, batched)} is {_first(w2, w2 < 0)}")
        empty = ~(w2 > 0).any(1)
        # A process's share of one curve may be all zero: the compiled search
        # counts the points of every process.
        if empty.any() and (batched or not distributed()):
            which = int(empty.nonzero()[0, 0])
            raise ValueError("fit_curve(): weights must not be all zero, but "
                             + (f"curve {which}'s are" if batched else "they are"))
    positive = torch.ones_like(x2, dtype=torch.bool) if w2 is None else w2 > 0
    for name, t in (("x", x2), ("y", y2)):
        bad = ~torch.isfinite(t) & positive
        if bad.any():
            hint = "" if w2 is None else " where the weight is positive"
            raise ValueError(f"fit_curve(): {name} must be finite{hint}, but "
                             f"{_where(name, bad, batched)} is {_first(t, bad)} "
                             f"({int(bad.sum())} non-finite values)")

    b2 = None
    if breakpoints is not None:
        b2 = _rows("breakpoints", breakpoints, curves, units - 1, batched,
                   f"units - 1 = {units - 1}")
        if b2.shape[1] > 1:
            flat = b2[:, 1:] <= b2[:, :-1]
            if flat.any():
                row, k = (int(i) for i in flat.nonzero()[0])
                at = f"[{row}, {k + 1}]" if batched else f"[{k + 1}]"
                before = f"[{row}, {k}]" if batched else f"[{k}]"
                raise ValueError(f"fit_curve(): breakpoints must be strictly increasing, but "
                                 f"breakpoints{at} = {b2[row, k + 1].item()} is not above "
                                 f"breakpoints{before} = {b2[row, k].item()}")

    tx = ty = None
    if through is not None:
        if not (isinstance(through, (tuple, list)) and len(through) == 2):
            raise ValueError(f"fit_curve(): through must be a pair (xc, yc) of the points' x "
                             f"and y, but got {type(through).__name__}")
        tx = _rows("through[0] (xc)", through[0], curves, None, batched, "")
        ty = _rows("through[1] (yc)", through[1], curves, None, batched, "")
        if tx.shape != ty.shape:
            raise ValueError(f"fit_curve(): through's xc and yc must have one shape, but got "
                             f"{list(tx.shape)} and {list(ty.shape)}")
        same_x = tx[:, :, None] == tx[:, None, :]
        differ = same_x & (ty[:, :, None] != ty[:, None, :])
        if differ.any():
            row, i, j = (int(v) for v in differ.nonzero()[0])
            raise ValueError(f"fit_curve(): through's points contradict each other: x = "
                             f"{tx[row, i].item()} is given y = {ty[row, i].item()} and "
                             f"y = {ty[row, j].item()}"
                             + (f" (curve {row})" if batched else ""))
    return Problem(x2, y2, w2, b2, tx, ty, batched, x.dtype, x.device, x)


def as_points(name, value):
    """x or y as a floating tensor: a tensor as it is (integers and booleans
    as float64), anything else through numpy.asarray (arrays, lists, pandas
    Series; integers as float64, floats in their own precision)."""
    if not isinstance(value, torch.Tensor):
        try:
            import numpy  # an optional dependency: only for data that is not a tensor
        except ImportError:
            numpy = None
        try:
            array = numpy.asarray(value) if numpy is not None else None
            if array is not None and array.dtype.kind in "biuf":
                if array.dtype.kind != "f":
                    array = array.astype(numpy.float64)
                elif not array.flags.writeable:  # a pandas Series' values, say
                    array = array.copy()
                value = torch.from_numpy(numpy.ascontiguousarray(array))
            else:
                value = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            kind = f" of dtype {array.dtype}" if array is not None else ""
            raise TypeError(f"fit_curve(): {name} must be numbers (a tensor, an array, a list, a "
                            f"pandas Series), but got {type(value).__name__}{kind}") from None
    if value.is_complex():
        raise TypeError(f"fit_curve(): {name} must be real numbers, but got {value.dtype}")
    return value if value.is_floating_point() else value.double()


def _rows(name, value, curves, columns, batched, expected):
    """An option of one row per curve, (columns,) or (curves, columns), as
    float64 (curves, columns); finite. columns None: any length."""
    try:
        t = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"fit_curve(): {name} must be numbers, a tensor or an array, but got "
                        f"{type(value).__name__} ({e})") from None
    length = t.shape[-1] if t.dim() else None
    shapes = f"({columns},)" if columns is not None else "(P,)"
    if batched:
        shapes += f" or ({curves}, {columns if columns is not None else 'P'})"
    good = t.dim() == 1 or (batched and t.dim() == 2 and t.shape[0] == curves)
    if not good or (columns is not None and length != columns):
        of = f" ({expected})" if expected else ""
        raise ValueError(f"fit_curve(): {name} must have shape {shapes}{of}, but got "
                         f"{list(t.shape)}")
    t = t.expand(curves, length).contiguous()
    bad = ~torch.isfinite(t)
    if bad.any():
        raise ValueError(f"fit_curve(): {name} must be finite, but {_where(name, bad, batched)} "
                         f"is {_first(t, bad)}")
    return t


def _where(name, mask, batched):
    row, col = (int(i) for i in mask.nonzero()[0])
    return f"{name.split(' ')[0]}[{row}, {col}]" if batched else f"{name.split(' ')[0]}[{col}]"


def _first(t, mask):
    return t[mask][0].item()


def distributed():
    """Whether a process group of several ranks is up (and can sum CPU tensors)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False
    if dist.get_backend() == "nccl":
        raise ValueError(
            "fit_curve(): sums its points on the CPU, so the process group must reduce CPU "
            "tensors (backend gloo, or init_process_group('cpu:gloo,cuda:nccl')), but its "
            "backend is nccl")
    return True


def all_reduce_sum(t):
    """For the compiled search: int64 sums over the processes, in any order the same."""
    torch.distributed.all_reduce(t)
    return t


def all_reduce_max(t):
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return t


def exact_mean(values, weights, reduce):
    """(B,) float64: Σ w·values / Σ w over each row (B, N) (and, with reduce,
    over every process's points), exact before the final rounding."""
    weights = torch.ones_like(values) if weights is None else weights
    digits = _C.exact_sums(torch.cat([values * weights, weights]), None, 1)
    if reduce and distributed():
        torch.distributed.all_reduce(digits)
    sums = _C.exact_round(digits)[:, 0]
    rows = values.shape[0]
    return sums[:rows] / sums[rows:]


def split(curves):
    """This rank's share of a batch of curves: a contiguous range (one
    process: all of them). gather() returns every rank's in rank order."""
    if not distributed():
        return range(curves)
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    return range(curves * rank // world, curves * (rank + 1) // world)


def gather(part):
    """Every rank's ``part`` (a picklable object), in rank order."""
    if not distributed():
        return [part]
    parts = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, part)
    return parts
