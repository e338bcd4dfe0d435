"""relu_ext: fused kernels for sums of rectified linear units.

    y = Σ_k a_k · relu(m_k · x + b_k)

``relu_sum`` is the differentiable op, ``ReLUSum`` the module,
``reference.relu_sum`` the pure-PyTorch definition, ``fit`` the lesson's SGD
trainer, ``fit_curve`` the one-call curve fitter, and ``torch.ops.relu_ext``
the registered custom operators behind
them. Plots live in ``relu_ext.plot`` (imported on demand: it needs matplotlib).
"""

from ._version import __version__
from . import reference
from ._extension import _C
from .module import ReLUSum
from .ops import ReLUSumFunction, relu_sum
from .train import History, fit
from .curve import fit_curve


def build_info():
    """How this copy was built: version, torch, backends, CUDA archs, CPU
    instruction set in use and those available, intra-op threads."""
    return dict(_C.build_info())


__all__ = ["__version__", "build_info", "fit", "fit_curve", "History", "reference", "relu_sum",
           "ReLUSum", "ReLUSumFunction"]
