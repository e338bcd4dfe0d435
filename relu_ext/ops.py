"""The differentiable op: fake kernels and autograd for torch.ops.relu_ext.

    y = Σ_k a_k · relu(m_k · x + b_k)        (elementwise over x; a_k = 1 if a is None)

The forward and backward are fused C++/CUDA kernels (csrc/) that never hold
the N×K hidden activations: the backward recomputes them from x, m, b, a,
which is all autograd saves.
"""

import torch

from . import _extension  # noqa: F401  (registers the operators)
from ._validation import check_grad, check_relu_sum_args
from .algorithm import choose_algorithm

_ops = torch.ops.relu_ext


def _setup_context(ctx, inputs, output):
    x, m, b, a = inputs
    ctx.save_for_backward(x, m, b, a)


def _register(name):
    """Fake kernels for ``relu_ext::<name>`` and ``<name>_backward``, and the
    autograd formula of ``<name>``, which calls ``<name>_backward``: the dense
    ops and the breakpoint ones (relu_ext/algorithm.py) share all of it."""
    backward_name = f"{name}_backward"
    backward_op = getattr(_ops, backward_name)

    @torch.library.register_fake(f"relu_ext::{name}")
    def _fake(x, m, b, a):
        check_relu_sum_args(name, x, m, b, a)
        return x.new_empty(x.shape)

    @torch.library.register_fake(f"relu_ext::{backward_name}")
    def _backward_fake(grad, x, m, b, a, output_mask):
        check_relu_sum_args(backward_name, x, m, b, a)
        check_grad(backward_name, grad, x)
        need_x, need_m, need_b, need_a = output_mask
        return (
            x.new_empty(x.shape) if need_x else None,
            m.new_empty(m.shape) if need_m else None,
            b.new_empty(b.shape) if need_b else None,
            a.new_empty(a.shape) if need_a and a is not None else None,
        )

    def _backward(ctx, grad):
        x, m, b, a = ctx.saved_tensors
        need_x, need_m, need_b, need_a = ctx.needs_input_grad[:4]
        need_a = need_a and a is not None
        if not (need_x or need_m or need_b or need_a):
            return None, None, None, None
        return backward_op(grad, x, m, b, a, [need_x, need_m, need_b, need_a])

    torch.library.register_autograd(f"relu_ext::{name}", _backward, setup_context=_setup_context)
    return _backward


_backward = _register("relu_sum")
_register("relu_sum_breakpoints")


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


def relu_sum(x, m, b, a=None, *, algorithm="auto"):
    """Sum of rectified linear units, applied elementwise: ``Σ_k a_k·relu(m_k·x + b_k)``.

    Args:
        x: input of any shape and strides; float16, bfloat16, float32 or float64.
        m, b: slopes and intercepts of the K units, 1-D of length K, x's dtype and device.
        a: output weights, 1-D of length K, or None for a_k = 1.
        algorithm: ``"dense"`` evaluates every unit at every input (O(N·K));
            ``"breakpoints"`` sorts the units' breakpoints and looks each input
            up (O((N + K)·log K), CPU only); ``"auto"`` (default) picks the
            faster one from the sizes alone (see relu_ext/algorithm.py). The
            two agree to rounding, except that a float64 input within half
            an ulp of a breakpoint ``-b/m`` may be put on the other side of
            the kink (docs/breakpoints.md).

    Returns:
        A tensor of x's shape, dtype and device. Differentiable in x, m, b and a;
        only the gradients autograd asks for are computed. Float16 and bfloat16
        are computed in float32. NaN and ±Inf propagate as in
        :func:`relu_ext.reference.relu_sum`, and the gradient of relu at 0 is 0.
    """
    check_relu_sum_args("relu_sum", x, m, b, a)
    if choose_algorithm(algorithm, x, m) == "breakpoints":
        return _ops.relu_sum_breakpoints(x, m, b, a)
    return _ops.relu_sum(x, m, b, a)
