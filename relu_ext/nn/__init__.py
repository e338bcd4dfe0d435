"""The module layer: ``ReLUSum``, a learnable sum of rectified linear units as
an ``nn.Module``; ``ReLUSumLinear``, a layer whose every edge is one; and their
reading as piecewise-linear functions (breakpoints, slopes and intercepts) and
back.

Imports: the op layer (``relu_ext.ops``) and this package's own modules.
"""

from ._linear import ReLUSumLinear
from ._module import ReLUSum
from ._piecewise import LayerPiecewise, Piecewise, to_piecewise

__all__ = ["LayerPiecewise", "Piecewise", "ReLUSum", "ReLUSumLinear", "to_piecewise"]
