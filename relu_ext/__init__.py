"""relu_ext: fused kernels for sums of rectified linear units.

    y = Σ_k a_k · relu(m_k · x + b_k)

``relu_sum`` is the differentiable op, ``ReLUSum`` the module,
``ReLUSumLinear`` a layer whose every edge is a learnable sum of ReLUs,
``relu_sum_linear`` the layer op whose every input-output edge is such a sum,
``reference.relu_sum`` and ``reference.relu_sum_linear`` the pure-PyTorch
definitions, ``fit`` the lesson's SGD
trainer, ``fit_curve`` the one-call curve fitter, ``curve_summary`` what a
fitted curve says about itself (standard errors, intervals, R², AIC, BIC), and
``torch.ops.relu_ext`` the registered custom operators behind them. Plots live
in ``relu_ext.plot`` (imported on demand: it needs matplotlib), and fit_curve
as a scikit-learn regressor in ``relu_ext.sklearn`` (imported on demand: it
needs scikit-learn).

The package is layered; each layer imports only from those below it
(tests/tooling/test_layers.py holds the code to this):

    relu_ext/             the public API (this file) and the front ends: the
                          command line (cli.py, __main__.py), plots (plot.py),
                          the lesson's data (data.py), the scikit-learn
                          estimator (sklearn.py)
    relu_ext/curve/       fit_curve, the curve fitter, and curve_summary
    relu_ext/train/       fit, the trainer, and its torchrun part (distributed)
    relu_ext/nn/          ReLUSum, the module, and ReLUSumLinear, the layer
    relu_ext/ops/         relu_sum, relu_sum_linear and the custom operators: the compiled
                          extension, fake kernels, checks, vmap, ONNX, reference
"""

import sys

from ._version import __version__
from .curve import curve_summary, fit_curve
from .nn import ReLUSum, ReLUSumLinear
from .ops import ReLUSumFunction, _C, build_info, reference, relu_sum, relu_sum_linear
from .train import History, distributed, fit

# relu_ext.reference and relu_ext.distributed keep their public names, so that
# ``import relu_ext.reference`` and ``from relu_ext.distributed import ...`` work
# as before; each is defined once, in the layer it belongs to.
sys.modules[__name__ + ".reference"] = reference
sys.modules[__name__ + ".distributed"] = distributed

__all__ = ["__version__", "build_info", "curve_summary", "fit", "fit_curve", "History",
           "reference", "relu_sum", "relu_sum_linear", "ReLUSum", "ReLUSumFunction",
           "ReLUSumLinear"]
