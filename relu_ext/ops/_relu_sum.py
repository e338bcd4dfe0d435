"""The differentiable op: relu_sum over torch.ops.relu_ext, and its fake kernels.

    y = Σ_k a_k · relu(m_k · x + b_k)        (elementwise over x; a_k = 1 if a is None)

The forward and backward are fused C++/CUDA kernels (csrc/) that never hold
the N×K hidden activations: the backward recomputes them from x, m, b, a,
which is all autograd saves. Autograd itself is registered in C++
(csrc/autograd/): reverse mode to any order, forward mode, and the torch.func
transforms; the batching rules for vmap are in relu_ext/ops/_vmap.py. This module
gives the ops their fake (meta) kernels, for torch.compile and torch.export.
"""

import torch
from torch.compiler import is_exporting

from . import _extension  # noqa: F401  (registers the operators)
from . import _onnx
from . import _vmap  # noqa: F401  (registers the batching rules)
from ._channels import to_channels
from ._validation import channel_dim, check_grad, check_relu_sum_args, check_tensors
from ._algorithm import choose_algorithm

_ops = torch.ops.relu_ext


def _register_fakes(name):
    """Fake kernels for ``relu_ext::<name>`` and ``<name>_backward``: the
    dense ops and the breakpoint ones (relu_ext/ops/_algorithm.py) share them."""
    backward_name = f"{name}_backward"

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


_register_fakes("relu_sum")
_register_fakes("relu_sum_breakpoints")


@torch.library.register_fake("relu_ext::step_sum")
def _step_sum_fake(x, m, b, w):
    check_relu_sum_args("step_sum", x, m, b, w, a_name="w")
    return x.new_empty(x.shape)


class ReLUSumFunction(torch.autograd.Function):
    """``ReLUSumFunction.apply(x, m, b, a)``: relu_sum as a torch.autograd.Function.

    The same kernels and derivatives as :func:`relu_sum` (dense algorithm),
    for code that composes autograd Functions: backward (differentiable again,
    so double backward works), forward mode (``jvp``) and a generated vmap
    rule, so torch.func's transforms apply. Prefer :func:`relu_sum`, whose
    autograd runs in C++ and costs less per call.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, m, b, a=None):
        if is_exporting() and torch.onnx.is_in_onnx_export():  # as in relu_sum below
            return _onnx.relu_sum(x, m, b, a, "dense")
        return _ops.relu_sum(x, m, b, a)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, m, b, a = (inputs + (None,))[:4]
        ctx.save_for_backward(x, m, b, a)
        ctx.save_for_forward(x, m, b, a)

    @staticmethod
    def backward(ctx, grad):
        x, m, b, a = ctx.saved_tensors
        need_x, need_m, need_b, need_a = (ctx.needs_input_grad + (False,))[:4]
        need_a = need_a and a is not None
        if not (need_x or need_m or need_b or need_a):
            return None, None, None, None
        return _ops.relu_sum_backward(grad, x, m, b, a, [need_x, need_m, need_b, need_a])

    @staticmethod
    def jvp(ctx, x_t, m_t, b_t, a_t=None):
        x, m, b, a = ctx.saved_tensors
        return _ops.relu_sum_jvp(x, m, b, a, x_t, m_t, b_t, a_t)


def relu_sum(x, m, b, a=None, *, dim=1, algorithm="auto"):
    """Sum of rectified linear units, applied elementwise: ``Σ_k a_k·relu(m_k·x + b_k)``.

    Args:
        x: input of any shape and strides; float16, bfloat16, float32 or float64.
        m, b: slopes and intercepts of the K units, on x's device: 1-D of
            length K, one function shared by every element of x; or 2-D
            (C, K), one function per channel, where C = x.shape[dim] and
            the elements x[..., c, ...] (c along dim) use row c.
            m, b and a share one dtype: x's, or float32 when x is float16 or
            bfloat16 (mixed precision, as under ``torch.autocast``: the units
            stay float32 like a norm layer's parameters). Any other mix, such
            as a float64 x with float32 units, raises a TypeError naming both
            dtypes.
        a: output weights, shaped like m, or None for a_k = 1.
        dim: the channel dim of x for 2-D units, as nn.PReLU's: 1 for
            (N, C, ...), negative counts from the end (-1 for (B, T, C));
            ignored for 1-D units.
        algorithm: ``"dense"`` evaluates every unit at every input (O(N·K));
            ``"breakpoints"`` sorts the units' breakpoints and looks each input
            up (O((N + K)·log K), CPU only; per channel, a table for each:
            O(N·log K + C·K·log K)); ``"auto"`` (default) picks the faster
            one from the sizes alone (docs/breakpoints.md). The
            two agree to rounding, except that a float64 input within half
            an ulp of a breakpoint ``-b/m`` may be put on the other side of
            the kink (docs/breakpoints.md).

    Returns:
        A tensor of x's shape, dtype and device. Differentiable in x, m, b and a
        to any order, in reverse and forward mode, and under torch.func's
        transforms; only the gradients autograd asks for are computed, x's in
        x's dtype and the units' in theirs. Float16 and bfloat16 are computed
        in float32. NaN and ±Inf propagate as in
        :func:`relu_ext.reference.relu_sum`, and the gradient of relu at 0 is 0.
        Derivatives of second and higher order (and forward mode) use the
        dense kernels whichever algorithm computed the value.

    Example:
        >>> import torch, relu_ext
        >>> x = torch.tensor([-1.0, 0.0, 2.0])
        >>> relu_ext.relu_sum(x, torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0]))
        tensor([2., 1., 2.])

    Under ``torch.onnx.export`` (dynamo=True) it traces as the reference,
    :func:`relu_ext.reference.relu_sum`, in standard ONNX ops: the exported
    graph holds the N×K hidden activations (relu_ext/ops/_onnx.py).
    """
    # The compiled ops check every argument themselves (csrc/checks.cpp), and
    # the fake kernels do under torch.compile, with the same messages; the
    # autograd around them is C++ too, so a small call costs a few µs.
    check_tensors("relu_sum", x, m, b, a)
    # ONNX has no fused op: torch.onnx.export gets the reference (relu_ext/ops/_onnx.py).
    # is_exporting() first, a flag read; is_in_onnx_export() costs µs per call.
    if is_exporting() and torch.onnx.is_in_onnx_export():
        return _onnx.relu_sum(x, m, b, a, algorithm, dim)
    if m.dim() == 2:
        # (C, K) units: x viewed as the ops' (outer, C, inner)
        # (relu_ext/ops/_channels.py), and the result viewed back.
        x3, back = to_channels(x, channel_dim("relu_sum", x, m, dim))
        return back(_run(x3, m, b, a, algorithm))
    return _run(x, m, b, a, algorithm)


def _run(x, m, b, a, algorithm):
    """The op of ``algorithm`` on x as the ops take it."""
    if algorithm == "auto":  # the choice made in C++ (csrc/algorithm.h)
        return _auto(x, m, b, a)
    if choose_algorithm(algorithm, x, m) == "breakpoints":  # also checks the name
        return _breakpoints(x, m, b, a)
    return _dense(x, m, b, a)


_auto = _ops.relu_sum_auto.default
_dense = _ops.relu_sum.default
_breakpoints = _ops.relu_sum_breakpoints.default
