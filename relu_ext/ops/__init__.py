"""The op layer: relu_sum, relu_sum_linear and the custom operators behind them.

Loading this package loads the compiled extension (``_C``, after checking the
torch it was built against), which registers ``torch.ops.relu_ext.*``, and
gives the ops what PyTorch asks of a custom operator from Python: fake kernels
and argument checks for torch.compile and torch.export, batching rules for
vmap, and the reference they become under ONNX export. Everything above
(the module, the trainers, the curve fitter) reaches the ops through the
names exported here.

Imports: torch and this package's own modules only; it is the bottom layer.
"""

from . import reference
from ._algorithm import ALGORITHMS, check_algorithm, choose_algorithm, choose_linear_algorithm
from ._extension import _C, build_info
from ._relu_sum import ReLUSumFunction, relu_sum
from ._relu_sum_linear import relu_sum_linear


__all__ = ["ALGORITHMS", "_C", "build_info", "check_algorithm", "choose_algorithm",
           "choose_linear_algorithm", "reference", "relu_sum", "relu_sum_linear", "ReLUSumFunction"]
