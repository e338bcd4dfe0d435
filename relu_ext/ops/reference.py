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
