"""The module layer: ``ReLUSum``, a learnable sum of rectified linear units as
an ``nn.Module``, and its reading as a piecewise-linear function (breakpoints,
slopes and intercepts) and back.

Imports: the op layer (``relu_ext.ops``) and this package's own modules.
"""

from ._module import ReLUSum
from ._piecewise import Piecewise, to_piecewise

__all__ = ["Piecewise", "ReLUSum", "to_piecewise"]
