"""The differentiable layer op: relu_sum_linear over torch.ops.relu_ext, with
its fake kernels and autograd.

    y[..., o] = bias[o] + Σ_i Σ_k a[o,i,k] · relu(m[i,k] · x[..., i] + b[i,k])

Every edge (o, i) of the layer is a sum of K rectified lines; input i's K
units (m[i], b[i]) are shared by its O edges, which weigh them by a[:, i].
The forward and backward are fused kernels (csrc/) that keep neither the
N·I·K hinge values nor any N·I·O tensor: autograd saves x and the
parameters. As the tutorial on custom operators has it, the fake kernels and
the autograd formula are registered here, in Python; the kernels compute
every gradient but the bias's, which is the sum of the incoming gradient over
rows.
"""

import torch
from torch.compiler import is_exporting

from . import _extension  # noqa: F401  (registers the operators)
from . import reference
from ._algorithm import check_algorithm, choose_linear_algorithm
from ._validation import (check_linear_grad, check_relu_sum_linear_args,
                          check_relu_sum_linear_tensors)

_ops = torch.ops.relu_ext
_OPS = {"dense": "relu_sum_linear", "breakpoints": "relu_sum_linear_breakpoints"}


def _register(name):
    """Fake kernels and autograd for ``relu_ext::<name>`` and its backward."""
    backward_name = f"{name}_backward"
    backward = getattr(_ops, backward_name).default

    @torch.library.register_fake(f"relu_ext::{name}")
    def _fake(x, m, b, a, bias):
        check_relu_sum_linear_args(name, x, m, b, a, bias)
        return x.new_empty((x.shape[0], a.shape[0]))

    @torch.library.register_fake(f"relu_ext::{backward_name}")
    def _backward_fake(grad, x, m, b, a, output_mask):
        check_relu_sum_linear_args(backward_name, x, m, b, a, None)
        check_linear_grad(backward_name, grad, x, a)
        return tuple(t.new_empty(t.shape) if need else None
                     for t, need in zip((x, m, b, a), output_mask))

    def _setup_context(ctx, inputs, output):
        x, m, b, a, bias = inputs
        ctx.save_for_backward(x, m, b, a)
        ctx.bias_dtype = None if bias is None else bias.dtype

    def _backward(ctx, grad):
        x, m, b, a = ctx.saved_tensors
        need = list(ctx.needs_input_grad[:4])
        grads = backward(grad, x, m, b, a, need) if any(need) else (None,) * 4
        dbias = None
        if ctx.needs_input_grad[4]:
            dbias = _sum_rows(grad, ctx.bias_dtype)
        return (*grads, dbias)

    torch.library.register_autograd(f"relu_ext::{name}", _backward,
                                    setup_context=_setup_context)

    def _second_order(ctx, *grads):
        raise RuntimeError(
            f"relu_sum_linear(): derivatives of second or higher order are not implemented "
            f"(the backward op relu_ext::{backward_name} is not differentiable); "
            "use first derivatives only (no create_graph=True, no torch.func.hessian)"
        )

    torch.library.register_autograd(f"relu_ext::{backward_name}", _second_order)


# torch reduces fewer elements than this (at::internal::GRAIN_SIZE) on one
# thread, in an order fixed by the shape; a larger sum may be split between
# threads, and then its bits depend on how many there are.
_SERIAL_ELEMENTS = 32768


def _sum_rows(grad, dtype):
    """bias's gradient: grad (N, O) summed over its rows, in bias's dtype, in
    an order fixed by the sizes alone: blocks of rows small enough to be
    summed on one thread, then the blocks' sums the same way, until one row
    is left."""
    acc = grad.to(dtype)
    if torch.compiler.is_compiling():
        # Compiled, the sum is Inductor's one reduction (docs/contract.md, "Determinism").
        return acc.sum(0)
    if acc.shape[0] == 0:
        return acc.new_zeros(acc.shape[1])
    rows = max(2, _SERIAL_ELEMENTS // max(acc.shape[1], 1) - 1)
    while acc.shape[0] > 1:
        acc = torch.stack([block.sum(0) for block in acc.split(rows)])
    return acc[0]


_register("relu_sum_linear")
_register("relu_sum_linear_breakpoints")


def relu_sum_linear(x, m, b, a, bias=None, *, algorithm="auto"):
    """A layer whose every edge is a sum of rectified linear units (a KAN layer):
    ``y[..., o] = bias[o] + Σ_i Σ_k a[o,i,k]·relu(m[i,k]·x[..., i] + b[i,k])``.

    Args:
        x: input ``(..., I)``, any strides; float16, bfloat16, float32 or float64.
        m, b: ``(I, K)``: the slopes and intercepts of input i's K units, shared
            by the O edges leaving it.
        a: ``(O, I, K)``: edge (o, i) is ``Σ_k a[o,i,k]·relu(m[i,k]·x + b[i,k])``.
        bias: ``(O,)`` or None.
            m, b, a and bias share one dtype: x's, or float32 when x is
            float16 or bfloat16 (mixed precision: the arithmetic is float32,
            the output x's dtype); and x's device.
        algorithm: ``"dense"`` evaluates every unit at every input, blocked
            like a matrix product: N·I·K·O multiply-adds. ``"breakpoints"``
            sorts each input's K breakpoints once; on each of the K + 1
            cells they cut, every edge is one line, so a sample costs I·O
            multiply-adds whatever K is, plus O·I·K per call to build the
            cells' lines (docs/layer.md). ``"auto"`` (default) picks by the
            sizes alone. The two agree to rounding, except that a float64
            input within half an ulp of a breakpoint may be put on the other
            side of the kink.

    Returns:
        ``(..., O)`` in x's dtype and on its device. Differentiable in x, m, b,
        a and bias (first derivatives: a second-order derivative raises a
        RuntimeError); only the gradients autograd asks for are computed. NaN
        and ±Inf propagate as in :func:`relu_ext.reference.relu_sum_linear`,
        and relu's gradient at 0 is 0. Bitwise deterministic whatever the
        number of threads.

    Example:
        >>> import torch, relu_ext
        >>> x = torch.tensor([[-1.0, 2.0]])
        >>> m, b = torch.ones(2, 1), torch.zeros(2, 1)
        >>> a = torch.tensor([[[1.0], [1.0]], [[1.0], [-1.0]]])
        >>> relu_ext.relu_sum_linear(x, m, b, a)
        tensor([[ 2., -2.]])
    """
    check_relu_sum_linear_tensors(x, m, b, a, bias)
    if is_exporting() and torch.onnx.is_in_onnx_export():
        # ONNX has no fused op: the export gets the reference's standard ops.
        check_algorithm(algorithm, "relu_sum_linear")
        return reference.relu_sum_linear(x, m, b, a, bias)
    rows = x.reshape(-1, x.shape[-1])
    op = _OPS[choose_linear_algorithm(algorithm, rows, m, a)]
    y = getattr(_ops, op).default(rows, m, b, a, bias)
    return y.view(*x.shape[:-1], a.shape[0])
