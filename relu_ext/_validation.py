"""Argument checks of the Python entry points and the fake kernels.

The compiled kernels check the same things in csrc/checks.cpp (TypeError for a
dtype, ValueError for a shape or a device), with the same messages; under
torch.compile only these run, since the real kernels are not called while
tracing. tests/test_bad_inputs.py holds both to the same messages.
"""

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# x dtypes whose units may also be float32 (mixed precision; see check_relu_sum_args).
HALF_DTYPES = (torch.float16, torch.bfloat16)


def _shape(t):
    return str(list(t.shape))


def _check_tensor(op, name, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}(): {name} must be a torch.Tensor, but got {type(t).__name__}")


def check_tensors(op, x, m, b, a):
    """What the public function checks before calling the compiled op, which
    checks the rest itself with the same messages: that the arguments are
    tensors at all (the dispatcher would reject them in its own words)."""
    # One isinstance per argument on every call; the names only on failure.
    if (isinstance(x, torch.Tensor) and isinstance(m, torch.Tensor)
            and isinstance(b, torch.Tensor) and (a is None or isinstance(a, torch.Tensor))):
        return
    for name, t in (("x", x), ("m", m), ("b", b), ("a", a)):
        if t is not None or name != "a":
            _check_tensor(op, name, t)


def _check_device(op, name, t, x):
    if t.device != x.device:
        raise ValueError(
            f"{op}(): {name} must be on the device of x ({x.device}), but got {t.device}"
        )


def _check_like_x(op, name, t, x):
    _check_tensor(op, name, t)
    if t.dtype != x.dtype:
        raise TypeError(
            f"{op}(): {name} must have the dtype of x ({x.dtype}), but got {t.dtype}"
        )
    _check_device(op, name, t, x)


def _check_param(op, name, t, x):
    """A unit parameter: x's dtype, or float32 when x is 16-bit."""
    _check_tensor(op, name, t)
    half_x = x.dtype in HALF_DTYPES
    if t.dtype != x.dtype and not (half_x and t.dtype == torch.float32):
        also = " or torch.float32" if half_x else ""
        raise TypeError(
            f"{op}(): {name} must have the dtype of x ({x.dtype}){also}, but got {t.dtype}"
        )
    _check_device(op, name, t, x)


def _check_like_m(op, name, t, m):
    if t.dtype != m.dtype:
        raise TypeError(f"{op}(): {name} must have the dtype of m ({m.dtype}), but got {t.dtype}")


def check_relu_sum_args(op, x, m, b, a, a_name="a"):
    """x floating; m, b, a on x's device and of one dtype: x's, or float32
    when x is float16 or bfloat16 (mixed precision: the units stay float32,
    the output has x's dtype). Any other mix is a TypeError naming both."""
    _check_tensor(op, "x", x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}(): x must be a floating-point tensor (torch.float16, torch.bfloat16, "
            f"torch.float32 or torch.float64), but got {x.dtype}"
        )
    _check_param(op, "m", m, x)
    _check_param(op, "b", b, x)
    _check_like_m(op, "b", b, m)
    if a is not None:
        _check_param(op, a_name, a, x)
        _check_like_m(op, a_name, a, m)
    if m.dim() != 1:
        raise ValueError(
            f"{op}(): m must be 1-D with one entry per unit, but got shape {_shape(m)}"
        )
    if b.shape != m.shape:
        raise ValueError(f"{op}(): b must have the shape of m ({_shape(m)}), but got {_shape(b)}")
    if a is not None and a.shape != m.shape:
        raise ValueError(
            f"{op}(): {a_name} must have the shape of m ({_shape(m)}), but got {_shape(a)}"
        )


def check_grad(op, grad, x):
    _check_like_x(op, "grad", grad, x)
    if grad.shape != x.shape:
        raise ValueError(
            f"{op}(): grad must have the shape of x ({_shape(x)}), but got {_shape(grad)}"
        )
