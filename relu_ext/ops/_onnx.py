"""What relu_sum becomes in an ONNX export: its reference, in standard ONNX ops.

ONNX has no relu_ext operators and onnxruntime none of the fused kernels, so
while ``torch.onnx.export(..., dynamo=True)`` traces a model, ``relu_sum``
(and with it ``ReLUSum``) traces the pure-PyTorch reference
(relu_ext/ops/reference.py) instead of the fused op. The exporter translates that
into standard ONNX ops, with no translation table from the user:

    y = ReduceSum(Relu(Unsqueeze(x, -1) · m + b) · a, axis -1)

Cost: the graph holds the N×K hidden activations that the fused kernels
never store (N elements of x, K units): O(N·K) time, and onnxruntime's peak
is two N×K tensors, as the eager reference's (benchmarks/onnx_export.py). Standard ONNX has no sorted lookup, so
the breakpoint algorithm has no equivalent there; ``algorithm`` does not
change the exported graph. float16 and bfloat16 are computed in float32 and
rounded once at the end, as the fused kernels do; onnxruntime then runs
its float32 kernels between two Casts.

How: relu_sum asks ``torch.compiler.is_exporting()`` on every call (a flag
read, which torch.compile folds to a constant) and only then
``torch.onnx.is_in_onnx_export()``, which imports two modules per call
(their costs: docs/how-it-works.md, "What a small call costs").
Why a branch in Python rather than a registered ONNX translation or
decomposition: the math stays written once (the reference), and a
decomposition would have to go into torch's global table, where
torch.compile's Inductor then refuses the op's fallback kernel whenever the
environment variable CI is set. The bare ops ``torch.ops.relu_ext.*`` are not
exported; call ``relu_ext.relu_sum``. Neither is the TorchScript-based
exporter (``dynamo=False``), which torch.compiler.is_exporting() does not see.
"""

import torch

from . import reference
from ._channels import to_channels
from ._validation import channel_dim, check_relu_sum_args
from ._algorithm import check_algorithm


def relu_sum(x, m, b, a, algorithm, dim=1):
    """What ``relu_ext.relu_sum`` traces under torch.onnx.export: its
    arguments checked as the op checks them, then ``reference.relu_sum``
    computed as the fused op computes it (16-bit inputs in float32, the
    result in x's dtype). Per-channel ``(C, K)`` parameters go to the
    reference with their ``dim``."""
    check_algorithm(algorithm)
    if isinstance(m, torch.Tensor) and m.dim() == 2:
        d = channel_dim("relu_sum", x, m, dim)
        check_relu_sum_args("relu_sum", to_channels(x, d)[0], m, b, a)
    else:
        check_relu_sum_args("relu_sum", x, m, b, a)
        d = dim
    dtype = torch.promote_types(x.dtype, torch.float32)
    y = reference.relu_sum(*(t if t is None else t.to(dtype) for t in (x, m, b, a)), dim=d)
    return y.to(x.dtype)
