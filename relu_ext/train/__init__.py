"""The trainers: ``fit()``, the lesson's gradient descent on torch.optim and
its lr schedulers, for any model (``ReLUSum`` or one of your own), and its
``distributed`` part, which runs it under torchrun with DistributedDataParallel.

Imports: torch and this package's own modules. fit() takes any nn.Module, so
nothing here needs the layers below; the curve fitter above reuses
``History``.
"""

from . import distributed
from ._fit import LOSSES, OPTIMIZERS, SCHEDULES, History, fit

__all__ = ["distributed", "fit", "History", "LOSSES", "OPTIMIZERS", "SCHEDULES"]
