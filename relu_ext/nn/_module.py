"""ReLUSum: a learnable sum of rectified linear units as an nn.Module."""

import math

import torch
from torch import nn

from ..ops import check_algorithm, relu_sum
from ._piecewise import from_piecewise, to_piecewise


class ReLUSum(nn.Module):
    r"""``y = Σ_k a_k·relu(m_k·x + b_k)``, elementwise, with learnable m, b (and a).

    A continuous piecewise-linear function of each input element with up to
    ``units`` breakpoints; usable as a learnable activation or, on 1-D data, as
    the lesson's "rectified linear functions added together".

    Args:
        units: the number of units K.
        channels: None (default) for one function shared by every element,
            with (K,) parameters; or C for one function per channel, with
            (C, K) parameters, like ``nn.PReLU(num_parameters=C)``: the
            input's ``x.shape[dim]`` must be C.
        dim: the channel dim of the input when ``channels`` is given, as
            nn.PReLU's and BatchNorm's: 1 for (N, C, ...), -1 for (B, T, C).
        out_weights: learn output weights ``a`` (any piecewise-linear shape);
            without them every a_k is 1 and the sum is convex.
        bias: learn an output bias ``c`` added to the sum (off by default, so
            existing models and their state_dicts are unchanged); ``fit_curve``
            turns it on. One per channel, shape (C,), with ``channels``.
        input_range: where the breakpoints ``t_k = -b_k/m_k`` start, drawn
            uniformly from this interval. The default (-3, 3) covers standardized
            inputs; pass your data's range otherwise.
        algorithm: how the sum is evaluated, as in :func:`relu_ext.relu_sum`:
            ``"auto"`` (default), ``"dense"`` or ``"breakpoints"``.
        device, dtype: of the parameters.

    Initialisation, shared (``channels=None``): breakpoints uniform over
    ``input_range`` and slopes of random sign, so each unit is active on one
    side of its breakpoint. With output weights, ``|m_k| = 1`` and
    ``a_k ~ U(-1/√K, 1/√K)``, like ``nn.Linear``'s bound; without them
    ``|m_k| = 1/K``, so the sum of K non-negative terms starts at the scale of
    the inputs.

    Initialisation, per channel (``channels=C``): the module is exactly
    ``nn.ReLU`` at step 0, so it can replace one in a network without changing
    what the network computes. In every channel unit 0 is relu itself
    (m = 1, b = 0, a = 1). With output weights the other units get a = 0 and
    the shared scheme's m, b (breakpoints uniform over ``input_range``, slopes
    ±1): they add nothing yet, but each gets a gradient for a_k wherever it is
    active, so training can grow them. (Exactly, for finite inputs: at an
    infinite one their 0·inf is NaN, as in the reference.) Without output weights (every a_k = 1)
    an added unit cannot be zero everywhere and still learn; the other units
    then start with breakpoints at the ends of ``input_range`` facing outward
    (``relu(x - high)``, ``relu(low - x)``, alternately), so the module is
    exactly relu on ``[low, high]`` and those units learn from inputs outside it.

    Uses torch's global RNG: ``torch.manual_seed`` makes it reproducible.

    Shape: input of any shape; output of the same shape. With ``channels``,
    ``x.shape[dim] == channels``.
    """

    def __init__(self, units, channels=None, *, dim=1, out_weights=True, bias=False,
                 input_range=(-3.0, 3.0), algorithm="auto", device=None, dtype=None):
        super().__init__()
        check_algorithm(algorithm, "ReLUSum")
        if not isinstance(units, int) or isinstance(units, bool) or units < 0:
            raise ValueError(f"ReLUSum(): units must be a non-negative int, but got {units!r}")
        low, high = input_range
        if not low < high:
            raise ValueError(
                f"ReLUSum(): input_range must be (low, high) with low < high, but got {input_range!r}"
            )
        if channels is not None and (not isinstance(channels, int) or isinstance(channels, bool)
                                     or channels < 1):
            raise ValueError(
                f"ReLUSum(): channels must be None or a positive int, but got {channels!r}"
            )
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise TypeError(f"ReLUSum(): dim must be an int, but got {type(dim).__name__}")
        factory = {"device": device, "dtype": dtype}
        self.units = units
        self.channels = channels
        self.dim = dim
        self.algorithm = algorithm
        self.input_range = (float(low), float(high))
        shape = (units,) if channels is None else (channels, units)
        self.m = nn.Parameter(torch.empty(shape, **factory))
        self.b = nn.Parameter(torch.empty(shape, **factory))
        if out_weights:
            self.a = nn.Parameter(torch.empty(shape, **factory))
        else:
            self.register_parameter("a", None)
        if bias:
            self.bias = nn.Parameter(torch.empty(() if channels is None else (channels,), **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        if self.channels is None:
            self._reset_shared()
        else:
            self._reset_as_relu()
        if self.bias is not None:
            self.bias.zero_()

    def _reset_shared(self):
        k = self.units
        low, high = self.input_range
        breakpoints = torch.empty_like(self.m).uniform_(low, high)
        sign = torch.randint_like(self.m, 2) * 2 - 1
        slope = 1.0 if self.a is not None else 1.0 / max(k, 1)
        self.m.copy_(sign * slope)
        self.b.copy_(-self.m * breakpoints)
        if self.a is not None:
            bound = 1.0 / math.sqrt(max(k, 1))
            self.a.uniform_(-bound, bound)

    def _reset_as_relu(self):
        """Exactly relu at step 0 (the class docstring says how)."""
        low, high = self.input_range
        if self.a is not None:
            self._reset_shared()
            self.a.zero_()
        else:
            # Alternately relu(x - high) and relu(low - x): zero on [low, high].
            outward = torch.arange(self.units, device=self.m.device) % 2 == 1
            self.m.copy_(torch.where(outward, 1.0, -1.0).expand_as(self.m))
            self.b.copy_(torch.where(outward, -high, low).expand_as(self.b))
        if self.units > 0:
            self.m[:, 0] = 1.0
            self.b[:, 0] = 0.0
            if self.a is not None:
                self.a[:, 0] = 1.0

    def breakpoints(self):
        """The units' breakpoints ``-b_k/m_k`` (±inf or nan where m_k = 0)."""
        return -self.b / self.m

    def forward(self, x):
        y = relu_sum(x, self.m, self.b, self.a, dim=self.dim, algorithm=self.algorithm)
        if self.bias is None:
            return y
        if self.channels is None:
            return y + self.bias
        # (C,) along dim: relu_sum has checked that dim is in range.
        after = x.dim() - 1 - (self.dim % x.dim())
        return y + self.bias.view((-1,) + (1,) * after)

    @torch.no_grad()
    def predict(self, x):
        """The module applied to ``x``, anything ``numpy.asarray`` takes (an
        array, a list, a pandas Series), as a NumPy array: the bridge for
        NumPy, pandas and scikit-learn code. x is converted to the
        parameters' dtype and device; the result comes back to the CPU."""
        import numpy  # an optional dependency: only this method needs it

        array = numpy.asarray(x)
        if not array.flags.writeable:  # a pandas Series' values, say
            array = array.copy()
        inputs = torch.as_tensor(array, dtype=self.m.dtype, device=self.m.device)
        return self(inputs).cpu().numpy()

    def to_piecewise(self):
        """The function as pwlf users read it: a :class:`~relu_ext.nn.Piecewise`
        of sorted distinct breakpoints and each interval's slope and intercept.
        With ``channels=C``, each field has a leading dim of C, one function
        per channel (rows with fewer kinks padded with NaN breakpoints)."""
        return to_piecewise(self.m, self.b, self.a, self.bias)

    @classmethod
    def from_piecewise(cls, breakpoints, slopes, intercepts, **kwargs):
        """A module computing the continuous piecewise-linear function with these
        sorted breakpoints (K) and interval slopes and intercepts (K + 1 each);
        see ``from_piecewise`` in relu_ext/nn/_piecewise.py. ``kwargs`` go to the
        constructor (dtype, device, algorithm).

        Example:
            >>> import relu_ext
            >>> f = relu_ext.ReLUSum.from_piecewise([1.0], [0.0, 2.0], [1.0, -1.0])
            >>> f.predict([0.0, 1.0, 3.0])
            array([1., 1., 5.], dtype=float32)
        """
        return from_piecewise(cls, breakpoints, slopes, intercepts, **kwargs)

    def extra_repr(self):
        algorithm = "" if self.algorithm == "auto" else f", algorithm={self.algorithm!r}"
        bias = ", bias=True" if self.bias is not None else ""
        channels = "" if self.channels is None else f", channels={self.channels}, dim={self.dim}"
        return f"units={self.units}{channels}, out_weights={self.a is not None}{bias}{algorithm}"
