"""The pure-PyTorch reference: the lesson's broadcast form, and the ground truth
the fused kernels are tested against. It materialises the N×K hidden
activations (N×C×K per channel), which is exactly what the fused op avoids."""

import torch


def relu_sum(x, m, b, a=None, *, dim=1):
    """``Σ_k a_k·relu(m_k·x + b_k)`` elementwise over x, by broadcasting over a new last axis.

    With 2-D (C, K) parameters, x's elements along ``dim`` (C of them) use
    one row each: x's channel dim is moved last, where it broadcasts against
    the rows; 1-D parameters ignore ``dim``."""
    if m.dim() == 2:
        xc = x.movedim(dim, -1)
        h = torch.relu(xc[..., None] * m + b)
        return (h if a is None else h * a).sum(-1).movedim(-1, dim)
    h = torch.relu(x[..., None] * m + b)
    return (h if a is None else h * a).sum(-1)


def relu_sum_linear(x, m, b, a, bias=None):
    """``y[..., o] = bias[o] + Σ_i Σ_k a[o,i,k]·relu(m[i,k]·x[..., i] + b[i,k])``.

    x ``(..., I)``; m and b ``(I, K)``, input i's K units; a ``(O, I, K)``, the
    weights of edge (o, i); bias ``(O,)`` or None. The hinge features
    ``relu(x[..., :, None]·m + b)`` are materialised (``(..., I, K)``) and
    contracted with a, as the dense PyTorch form of a KAN layer does. A 16-bit
    x with float32 parameters is computed in float32 and returned in x's dtype,
    as the fused op does."""
    dtype = x.dtype
    h = torch.relu(x.to(m.dtype)[..., None] * m + b)
    y = torch.einsum("...ik,oik->...o", h, a)
    if bias is not None:
        y = y + bias
    return y.to(dtype)
