"""ReLUSumLinear: a layer whose every edge is a learnable sum of ReLUs."""

import math

import torch
from torch import nn

from ..ops import check_algorithm, relu_sum_linear
from ._knots import quantile_levels, refit_at_quantiles
from ._piecewise import layer_from_knot_values, layer_from_piecewise, layer_to_piecewise


def _check_count(name, value, least):
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        kind = "a positive" if least == 1 else "a non-negative"
        raise ValueError(f"ReLUSumLinear(): {name} must be {kind} int, but got {value!r}")


class ReLUSumLinear(nn.Module):
    r"""A layer of learnable piecewise-linear edges, as a Kolmogorov-Arnold
    network's: ``y[..., o] = bias[o] + Σ_i Σ_k a[o,i,k]·relu(m[i,k]·x[..., i] + b[i,k])``.

    Edge (o, i), the function of input i that output o adds, is a sum of K
    rectified lines, like a :class:`ReLUSum`: input i's K units (m[i], b[i]:
    their breakpoints ``-b/m``) are shared by its O edges, each weighting them
    by its own a[o, i]. It stands where ``nn.Linear`` followed by an activation
    stands (an MLP's hidden layer), and learns the nonlinearity per edge.
    Computed by :func:`relu_ext.relu_sum_linear`, without materialising the
    (..., I, K) hidden activations.

    Args:
        in_features: I, the size of the input's last dim.
        out_features: O, the size of the output's last dim.
        units: K, the units of each input (and so the kinks of each edge).
        bias: learn a bias per output (as nn.Linear's).
        input_range: (low, high), where the inputs mostly lie: the breakpoints
            start spread over it. The default (-1, 1) suits standardised or
            normalised inputs; :meth:`update_knots` moves them to the data.
        algorithm: how the sums are evaluated, as in
            :func:`relu_ext.relu_sum_linear`: ``"auto"`` (default), ``"dense"``
            or ``"breakpoints"``.
        device, dtype: of the parameters.

    Initialisation: input i's K breakpoints sit on a uniform grid over
    ``input_range``, at the midpoints of K equal cells (the quantiles of
    uniform data, where :meth:`update_knots` would put them), and its units
    alternately open to the right and to the left (slopes ±2/(high - low)), so
    that every part of the range has units active on it, each unit at most 2 on
    the range. The edge weights a are then those of ``nn.Linear``'s default
    over the I·K hinge features, ``U(-1/√(I·K), 1/√(I·K))``, and the bias
    ``U(-1/√I, 1/√I)`` as nn.Linear(I, O)'s. So the layer starts as a random
    nonlinear function whose outputs are of the order of ``nn.Linear`` +
    ReLU's, centred on 0. Why not start each edge as nn.Linear's line plus a
    small nonlinear part: trained on scikit-learn's digits, that start scored
    within the seeds' spread of this one, in one layer or two; and a stack of
    layers that start linear is a linear map at step 0 (it still trains,
    through the weights of the nonlinear parts). The measurements are in the
    docs.

    Note that one such layer followed by ``nn.Linear`` is an additive model,
    a sum of functions of one input each (the layer's outputs never mix its
    inputs inside a nonlinearity, as ``relu(W x)`` does): where inputs
    interact, stack two (a KAN's depth), or keep an ``nn.Linear`` before it.

    Uses torch's global RNG: ``torch.manual_seed`` makes it reproducible.

    Shape: input (..., I), output (..., O).
    """

    def __init__(self, in_features, out_features, units, *, bias=True, input_range=(-1.0, 1.0),
                 algorithm="auto", device=None, dtype=None):
        super().__init__()
        _check_count("in_features", in_features, 1)
        _check_count("out_features", out_features, 1)
        _check_count("units", units, 0)
        check_algorithm(algorithm, "ReLUSumLinear")
        try:
            low, high = (float(v) for v in input_range)
        except (TypeError, ValueError):
            raise ValueError(f"ReLUSumLinear(): input_range must be (low, high), two numbers, "
                             f"but got {input_range!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"ReLUSumLinear(): input_range must be (low, high) with finite "
                             f"low < high, but got {input_range!r}")
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.units = units
        self.input_range = (low, high)
        self.algorithm = algorithm
        self.m = nn.Parameter(torch.empty(in_features, units, **factory))
        self.b = nn.Parameter(torch.empty(in_features, units, **factory))
        self.a = nn.Parameter(torch.empty(out_features, in_features, units, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """The initialisation the class docstring describes."""
        low, high = self.input_range
        k = self.units
        breakpoints = low + (high - low) * quantile_levels(k, device=self.m.device)
        # Alternating directions: unit 0 opens right, unit 1 left, ...
        sign = 1.0 - 2.0 * (torch.arange(k, device=self.m.device) % 2).double()
        m = sign * (2.0 / (high - low))
        self.m.copy_(m.expand_as(self.m))
        self.b.copy_((-m * breakpoints).expand_as(self.b))
        bound = 1.0 / math.sqrt(max(self.in_features * k, 1))
        self.a.uniform_(-bound, bound)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            self.bias.uniform_(-bound, bound)

    def breakpoints(self):
        """Each input's units' breakpoints ``-b/m``, (I, K) (±inf or nan where m = 0)."""
        return -self.b / self.m

    def forward(self, x):
        return relu_sum_linear(x, self.m, self.b, self.a, self.bias, algorithm=self.algorithm)

    def to_piecewise(self):
        """Every edge as intervals: a :class:`~relu_ext.nn.LayerPiecewise` of
        breakpoints (O, I, P), slopes and intercepts (O, I, P + 1) and bias
        (O,), with ``y[..., o] = bias[o] + Σ_i edge(o, i)(x[..., i])``;
        ``.edge(o, i)`` is edge (o, i) as a :class:`~relu_ext.nn.Piecewise`.
        Each edge is read as ReLUSum's ``to_piecewise`` reads a ReLUSum with
        units m[i], b[i] and weights a[o, i] (units at one breakpoint merged)."""
        return layer_to_piecewise(self.m, self.b, self.a, self.bias)

    @classmethod
    def from_piecewise(cls, breakpoints, slopes, intercepts, bias=None, **kwargs):
        """A layer whose edges have these intervals, the fields of
        :meth:`to_piecewise`'s result (``ReLUSumLinear.from_piecewise(*pw)``):
        breakpoints (O, I, P), the same for every o, NaN only as padding at
        the end; slopes and intercepts (O, I, P + 1); bias (O,) or None. It has
        P + 1 units per input and a bias; ``kwargs`` go to the constructor
        (dtype, device, algorithm). Raises ValueError unless every edge is
        continuous."""
        return layer_from_piecewise(cls, breakpoints, slopes, intercepts, bias, **kwargs)

    @classmethod
    def from_knot_values(cls, knots, values, bias=None, **kwargs):
        """A layer whose edge (o, i) is the piecewise-linear function through
        the points ``(knots[i, k], values[o, i, k])``, straight between them and
        continuing its end segments' lines beyond them: edges given by their
        values at knots, as pykan's splines of order 1 (hat functions) give
        them, and as a least-squares solver wants them (a sample's output is
        linear in the values of the two knots around it, whatever K is).

        knots: (I, K), each input's knots, sorted and distinct, K >= 2;
        values: (O, I, K); bias: (O,) or None. The layer has K units per
        input and a bias, into which each edge's constant goes (its units are
        0 at its first knot, as :meth:`from_piecewise`'s are at the first
        breakpoint); ``kwargs`` go to the constructor (dtype, device,
        algorithm). With :meth:`edge_values` it refines a grid and keeps the
        function, as pykan's grid extension: ``from_knot_values(fine,
        layer.edge_values(fine.T).permute(1, 2, 0), layer.bias)``."""
        return layer_from_knot_values(cls, knots, values, bias, **kwargs)

    def edge_values(self, x):
        """Every edge's value, (..., O, I): ``f_oi(x[..., i])``, so that
        ``layer(x) = bias + edge_values(x).sum(-1)``. Computed in plain
        PyTorch through an (..., I, K) tensor (differentiable): to read the
        edges (at knots, on a grid), not in place of ``forward``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"edge_values(): x must be a tensor, but got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"edge_values(): x must have shape (..., I) with "
                             f"I = in_features = {self.in_features}, but got {list(x.shape)}")
        hidden = torch.relu(x[..., None] * self.m + self.b)
        return torch.einsum("...ik,oik->...oi", hidden, self.a)

    @torch.no_grad()
    def update_knots(self, x):
        """Moves each input's breakpoints to the quantiles of the data it sees
        and keeps each edge's function there, by least squares over the samples.

        x: (..., I), the layer's inputs (a batch, or the training set). Input
        i's units, in the order of their breakpoints, move to the quantiles
        ``(k + 0.5)/K`` of ``x[..., i]``, keeping their slopes ``m``; then each
        edge's weights a[o, i] (and a constant, which goes into the bias) are
        those that best fit, over the samples, what the edge computed before.
        The functions are kept exactly on the data where the old edge can be
        written on the new breakpoints, and closely where the data is dense
        otherwise. Without a bias the constant is left out of the fit. Like
        pykan's ``update_grid_from_samples``: call it during training as the
        inputs drift, so that no unit bends where there is no data."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"update_knots(): x must be a tensor, but got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features or x.numel() == 0:
            raise ValueError(f"update_knots(): x must have shape (..., I) with "
                             f"I = in_features = {self.in_features} and at least one sample, "
                             f"but got {list(x.shape)}")
        m, b, a, constant = refit_at_quantiles(x.reshape(-1, self.in_features), self.m, self.b,
                                               self.a, with_constant=self.bias is not None)
        self.m.copy_(m)
        self.b.copy_(b)
        self.a.copy_(a)
        if self.bias is not None:
            self.bias.add_(constant.to(self.bias.dtype))

    def extra_repr(self):
        algorithm = "" if self.algorithm == "auto" else f", algorithm={self.algorithm!r}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"units={self.units}, bias={self.bias is not None}{algorithm}")
