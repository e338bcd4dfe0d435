"""The curve fitter: ``fit_curve()``, y ≈ f(x) by a continuous piecewise-linear
function in one call (least squares over hinge features for fixed
breakpoints, L-BFGS on the breakpoints, exact sums over the points), returned
as a ``ReLUSum`` with a bias; and ``curve_summary()``, what such a fit says
about itself (standard errors, profile-likelihood intervals of the
breakpoints, R², AIC, BIC), as a ``CurveSummary``.

The compiled solver it drives is in csrc/curve/, part of the extension the op
layer loads. Imports: the op layer (``relu_ext.ops``), the module
(``relu_ext.nn``), the trainers' ``History`` (``relu_ext.train``), and this
package's own modules.
"""

from ._data import CRITERIA, LEAST, check_selection
from ._fit import fit_curve
from ._summary import CALIBRATIONS, CurveSummary, curve_summary

__all__ = ["CALIBRATIONS", "CRITERIA", "LEAST", "CurveSummary", "check_selection",
           "curve_summary", "fit_curve"]
