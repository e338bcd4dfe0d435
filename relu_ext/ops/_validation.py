"""Argument checks of the Python entry points and the fake kernels.

The compiled kernels check the same things in csrc/checks.cpp (TypeError for a
dtype, ValueError for a shape or a device), with the same messages; under
torch.compile only these run, since the real kernels are not called while
tracing. tests/ops/test_bad_inputs.py holds both to the same messages.
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


def _check_x_and_units(op, x, m, b):
    """x's dtype, and the units' m and b of one dtype allowed with it."""
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}(): x must be a floating-point tensor (torch.float16, torch.bfloat16, "
            f"torch.float32 or torch.float64), but got {x.dtype}"
        )
    _check_param(op, "m", m, x)
    _check_param(op, "b", b, x)
    _check_like_m(op, "b", b, m)


def check_relu_sum_args(op, x, m, b, a, a_name="a"):
    """x floating; m, b, a on x's device and of one dtype: x's, or float32
    when x is float16 or bfloat16 (mixed precision: the units stay float32,
    the output has x's dtype). Any other mix is a TypeError naming both."""
    _check_tensor(op, "x", x)
    _check_x_and_units(op, x, m, b)
    if a is not None:
        _check_param(op, a_name, a, x)
        _check_like_m(op, a_name, a, m)
    if m.dim() not in (1, 2):
        raise ValueError(
            f"{op}(): m must be 1-D (K units, shared) or 2-D (C channels, K units), "
            f"but got shape {_shape(m)}"
        )
    if b.shape != m.shape:
        raise ValueError(f"{op}(): b must have the shape of m ({_shape(m)}), but got {_shape(b)}")
    if a is not None and a.shape != m.shape:
        raise ValueError(
            f"{op}(): {a_name} must have the shape of m ({_shape(m)}), but got {_shape(a)}"
        )
    if m.dim() == 2:
        # The op's canonical per-channel layout (relu_ext.relu_sum maps x onto it).
        if x.dim() != 3:
            raise ValueError(
                f"{op}(): x must be 3-D (outer, C, inner) when m is 2-D (C, K), "
                f"but got shape {_shape(x)}"
            )
        if x.shape[1] != m.shape[0]:
            raise ValueError(
                f"{op}(): x.shape[1] must equal the number of channels of m ({m.shape[0]}), "
                f"but got {x.shape[1]}"
            )


def channel_dim(op, x, m, dim):
    """``dim`` of the public function, for 2-D (C, K) units, as an index into
    x's dims: negative counts from the end, out of range is torch's
    IndexError, and x.shape[dim] must be C."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}(): dim must be an int, but got {type(dim).__name__}")
    if x.dim() == 0:
        raise ValueError(
            f"{op}(): x must have a channel dimension when m is 2-D (C, K), but got shape []"
        )
    if not -x.dim() <= dim < x.dim():
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-x.dim()}, {x.dim() - 1}], "
            f"but got {dim})"
        )
    index = dim + x.dim() if dim < 0 else dim
    if m.dim() >= 1 and x.shape[index] != m.shape[0]:
        raise ValueError(
            f"{op}(): x.shape[dim] (dim={dim}) must equal the number of channels of m "
            f"({m.shape[0]}), but got {x.shape[index]}"
        )
    return index


def check_grad(op, grad, x):
    _check_like_x(op, "grad", grad, x)
    if grad.shape != x.shape:
        raise ValueError(
            f"{op}(): grad must have the shape of x ({_shape(x)}), but got {_shape(grad)}"
        )


def check_relu_sum_linear_args(op, x, m, b, a, bias):
    """relu_sum_linear's arguments as the ops take them (csrc/checks.cpp, with
    the same messages): x 2-D (N, I); m, b (I, K); a (O, I, K); bias (O,) or
    None; the parameters of one dtype, x's or float32 when x is 16-bit."""
    for name, t in (("x", x), ("m", m), ("b", b), ("a", a)):
        _check_tensor(op, name, t)
    if bias is not None:
        _check_tensor(op, "bias", bias)
    _check_x_and_units(op, x, m, b)
    _check_param(op, "a", a, x)
    _check_like_m(op, "a", a, m)
    if bias is not None:
        _check_param(op, "bias", bias, x)
        _check_like_m(op, "bias", bias, m)
    if x.dim() != 2:
        raise ValueError(f"{op}(): x must be 2-D (N, I), but got shape {_shape(x)}")
    if m.dim() != 2 or m.shape[0] != x.shape[1]:
        raise ValueError(
            f"{op}(): m must be 2-D (I, K) with I = x.shape[1] = {x.shape[1]}, "
            f"but got shape {_shape(m)}"
        )
    if b.shape != m.shape:
        raise ValueError(f"{op}(): b must have the shape of m ({_shape(m)}), but got {_shape(b)}")
    if a.dim() != 3 or a.shape[1:] != m.shape:
        raise ValueError(
            f"{op}(): a must be 3-D (O, I, K) with (I, K) = m.shape ({_shape(m)}), "
            f"but got shape {_shape(a)}"
        )
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != a.shape[0]):
        raise ValueError(
            f"{op}(): bias must be 1-D (O,) with O = a.shape[0] = {a.shape[0]}, "
            f"but got shape {_shape(bias)}"
        )


def check_linear_grad(op, grad, x, a):
    _check_like_x(op, "grad", grad, x)
    want = [x.shape[0], a.shape[0]]
    if list(grad.shape) != want:
        raise ValueError(
            f"{op}(): grad must have shape (N, O) = {want}, but got {_shape(grad)}"
        )


def check_relu_sum_linear_tensors(x, m, b, a, bias):
    """What relu_sum_linear checks before viewing x (..., I) as the op's
    (N, I) rows; the op checks the rest, in the same words."""
    op = "relu_sum_linear"
    for name, t in (("x", x), ("m", m), ("b", b), ("a", a)):
        _check_tensor(op, name, t)
    if bias is not None:
        _check_tensor(op, "bias", bias)
    if x.dim() == 0:
        raise ValueError(f"{op}(): x must have a last dimension of I features (..., I), "
                         "but got shape []")
    if m.dim() != 2 or m.shape[0] != x.shape[-1]:
        raise ValueError(
            f"{op}(): m must be 2-D (I, K) with I = x.shape[-1] = {x.shape[-1]}, "
            f"but got shape {_shape(m)}"
        )
