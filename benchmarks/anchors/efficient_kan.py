"""efficient-kan's KANLinear and KAN, re-implemented from the published
algorithm, as an anchor for benchmarks/layer.py.

efficient-kan (Blealtan, https://github.com/Blealtan/efficient-kan, file
src/efficient_kan/kan.py and its README) is not on PyPI, so it cannot be a
dependency. This module is written from its description, not copied from its
code: the same layer, the same parameters and the same two matrix products,
so its time, memory and parameter count are the anchor's.

- Grid: per input, G intervals of width h = (hi - lo) / G on grid_range,
  extended by k knots on each side: knots t_j = lo + j·h, j = -k .. G + k
  (a buffer of shape (I, G + 2k + 1)).
- Bases: the B-splines of order k on that grid by the Cox–de Boor recursion,
  from the order-0 indicators [t_j <= x < t_{j+1}]: (N, I, G + k) values,
  computed once per input (not per edge).
- Output: y = SiLU(x) @ base_weightᵀ + bases(x).view(N, I·(G+k)) @
  (spline_weight · spline_scaler).view(O, I·(G+k))ᵀ: two matmuls, no bias.
- Parameters: base_weight (O, I) and spline_scaler (O, I), Kaiming-uniform;
  spline_weight (O, I, G + k), the least-squares fit of the splines to noise
  of amplitude scale_noise / G at the G + 1 grid points (fit_noise=False: the
  noise itself, for the checks that only count, time or measure large
  layers). 10·I·O parameters with the defaults (G = 5, k = 3).

Not re-implemented (no benchmark here uses them): update_grid and the
regularisation loss.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class KANLinear(nn.Module):
    def __init__(self, in_features, out_features, grid_size=5, spline_order=3, scale_noise=0.1,
                 scale_base=1.0, scale_spline=1.0, grid_range=(-1.0, 1.0), fit_noise=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.spline_order = grid_size, spline_order
        lo, hi = grid_range
        h = (hi - lo) / grid_size
        knots = lo + h * torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float32)
        self.register_buffer("grid", knots.expand(in_features, -1).contiguous())
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(
            torch.empty(out_features, in_features, grid_size + spline_order))
        self.spline_scaler = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5) * scale_base)
        nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5) * scale_spline)
        with torch.no_grad():
            # Noise at the G + 1 grid points of each input, one column per output.
            points = self.grid[:, spline_order:-spline_order].T  # (G + 1, I)
            if fit_noise:
                noise = (torch.rand(grid_size + 1, in_features, out_features) - 0.5) * scale_noise / grid_size
                self.spline_weight.copy_(self._fit(points, noise))
            else:  # noise as the weights: the same sizes, without seconds of lstsq for large layers
                self.spline_weight.uniform_(-0.5 * scale_noise / grid_size, 0.5 * scale_noise / grid_size)

    def bases(self, x):
        """The B-spline bases of order k at x (N, I): (N, I, G + k)."""
        t = self.grid  # (I, G + 2k + 1)
        x = x.unsqueeze(-1)
        b = ((x >= t[:, :-1]) & (x < t[:, 1:])).to(x.dtype)  # order 0: (N, I, G + 2k)
        for p in range(1, self.spline_order + 1):
            left = (x - t[:, :-(p + 1)]) / (t[:, p:-1] - t[:, :-(p + 1)]) * b[..., :-1]
            right = (t[:, p + 1:] - x) / (t[:, p + 1:] - t[:, 1:-p]) * b[..., 1:]
            b = left + right
        return b

    def _fit(self, x, y):
        """The spline coefficients (O, I, G + k) whose curves best fit y
        (N, I, O) at x (N, I), by least squares per input."""
        a = self.bases(x).transpose(0, 1)  # (I, N, G + k)
        coef = torch.linalg.lstsq(a, y.transpose(0, 1)).solution  # (I, G + k, O)
        return coef.permute(2, 0, 1)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, self.in_features)
        base = F.linear(F.silu(x), self.base_weight)
        weights = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).view(self.out_features, -1)
        spline = F.linear(self.bases(x).view(x.shape[0], -1), weights)
        return (base + spline).view(*shape[:-1], self.out_features)


class KAN(nn.Module):
    """KANLinear layers of the widths given, one after the other."""

    def __init__(self, widths, **options):
        super().__init__()
        self.layers = nn.ModuleList(KANLinear(i, o, **options) for i, o in zip(widths, widths[1:]))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
