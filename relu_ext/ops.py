"""The differentiable op: fake kernels and autograd for torch.ops.relu_ext.

    y = Σ_k a_k · relu(m_k · x + b_k)        (elementwise over x; a_k = 1 if a is None)

The forward and backward are fused C++/CUDA kernels (csrc/) that never hold
the N×K hidden activations: the backward recomputes them from x, m, b, a,
which is all autograd saves.
"""

import torch

from . import _extension  # noqa: F401  (registers the operators)
from ._validation import check_grad, check_relu_sum_args

_ops = torch.ops.relu_ext


@torch.library.register_fake("relu_ext::relu_sum")
def _relu_sum_fake(x, m, b, a):
    check_relu_sum_args("relu_sum", x, m, b, a)
    return x.new_empty(x.shape)


@torch.library.register_fake("relu_ext::relu_sum_backward")
def _relu_sum_backward_fake(grad, x, m, b, a, output_mask):
    check_relu_sum_args("relu_sum_backward", x, m, b, a)
    check_grad("relu_sum_backward", grad, x)
    need_x, need_m, need_b, need_a = output_mask
    return (
        x.new_empty(x.shape) if need_x else None,
        m.new_empty(m.shape) if need_m else None,
        b.new_empty(b.shape) if need_b else None,
        a.new_empty(a.shape) if need_a and a is not None else None,
    )


def _setup_context(ctx, inputs, output):
    x, m, b, a = inputs
    ctx.save_for_backward(x, m, b, a)


def _backward(ctx, grad):
    x, m, b, a = ctx.saved_tensors
    need_x, need_m, need_b, need_a = ctx.needs_input_grad[:4]
    need_a = need_a and a is not None
    if not (need_x or need_m or need_b or need_a):
        return None, None, None, None
    return _ops.relu_sum_backward(grad, x, m, b, a, [need_x, need_m, need_b, need_a])


torch.library.register_autograd("relu_ext::relu_sum", _backward, setup_context=_setup_context)


class ReLUSumFunction(torch.autograd.Function):
    """``ReLUSumFunction.apply(x, m, b, a)``: relu_sum as a torch.autograd.Function.

    The same forward, setup_context and backward as the registered op; for code
    that composes autograd Functions. Prefer :func:`relu_sum`.
    """

    @staticmethod
    def forward(x, m, b, a=None):
        return _ops.relu_sum(x, m, b, a)

    setup_context = staticmethod(_setup_context)
    backward = staticmethod(_backward)


def relu_sum(x, m, b, a=None):
    """Sum of rectified linear units, applied elementwise: ``Σ_k a_k·relu(m_k·x + b_k)``.

    Args:
        x: input of any shape and strides; float16, bfloat16, float32 or float64.
        m, b: slopes and intercepts of the K units, 1-D of length K, x's dtype and device.
        a: output weights, 1-D of length K, or None for a_k = 1.

    Returns:
        A tensor of x's shape, dtype and device. Differentiable in x, m, b and a;
        only the gradients autograd asks for are computed. Float16 and bfloat16
        are computed in float32. NaN and ±Inf propagate as in
        :func:`relu_ext.reference.relu_sum`, and the gradient of relu at 0 is 0.
    """
    check_relu_sum_args("relu_sum", x, m, b, a)
    return _ops.relu_sum(x, m, b, a)
