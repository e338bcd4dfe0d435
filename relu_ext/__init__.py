"""relu_ext: fused kernels for sums of rectified linear units.

    y = Σ_k a_k · relu(m_k · x + b_k)

``relu_sum`` is the differentiable op, ``ReLUSum`` the module,
``reference.relu_sum`` the pure-PyTorch definition, and ``torch.ops.relu_ext``
the registered custom operators behind them.
"""

from ._version import __version__
from . import reference
from ._extension import _C
from .module import ReLUSum
from .ops import ReLUSumFunction, relu_sum


def build_info():
    """How this copy was built: version, torch, backends, CUDA archs, CPU
    instruction set in use and those available, intra-op threads."""
    return dict(_C.build_info())


__all__ = ["__version__", "build_info", "reference", "relu_sum", "ReLUSum", "ReLUSumFunction"]
