"""``PiecewiseLinearRegressor``: ``fit_curve`` as a scikit-learn regressor.

A front end like the command line and the plots: it drives the public
``fit_curve`` and adds only what scikit-learn asks of an estimator, so that
the fitter works in ``Pipeline``, ``GridSearchCV``, ``cross_val_score``,
``clone`` and pickles. scikit-learn is an optional dependency
(``pip install relu_ext[sklearn]``): ``import relu_ext`` does not load this
module; ``import relu_ext.sklearn`` does, and needs scikit-learn.

The fitted function is kept twice: as the ``ReLUSum`` fit_curve returns
(``model_``) and as the numpy arrays of its pieces (``breakpoints_``,
``slopes_``, ``intercepts_``), and ``predict`` evaluates the pieces with
numpy: each prediction is then a function of its own x alone, bitwise,
whatever else is in the batch (scikit-learn's checks ask for that, and the
op's algorithm, chosen from the sizes, need not give it to the last bit); the
arrays it uses are the ones a user reads; and predicting needs no torch
call. Both pickle (a ReLUSum is an ``nn.Module``), so an unpickled estimator
predicts exactly as the one pickled.
"""

import numbers

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .curve import check_selection, curve_summary, fit_curve

__all__ = ["PiecewiseLinearRegressor"]


class PiecewiseLinearRegressor(RegressorMixin, BaseEstimator):
    """A continuous piecewise-linear function of one feature, fitted by
    :func:`relu_ext.fit_curve`: ``units`` straight segments joined at
    ``units - 1`` breakpoints that are fitted too. X is one feature, of shape
    (n_samples, 1) or (n_samples,); the fit is computed in float64.

    Args:
        units: K >= 1, the number of segments (K - 1 breakpoints); or
            ``"auto"``: the K from 1 to ``max_units`` that the data support,
            chosen by ``select``, as ``fit_curve(units="auto")`` does.
        max_units: with ``units="auto"``, the most segments tried (>= 1).
        select: with ``units="auto"``, how K is chosen: ``"bic"``, the
            Bayesian information criterion (2K parameters), or ``"cv"``,
            ``folds``-fold cross-validated error with the one-standard-error
            rule. Either way K is chosen within this one fit, by fit_curve's
            compiled search, where a GridSearchCV over ``units`` refits the
            estimator for every K and fold.
        folds: with ``select="cv"``, the number of folds (>= 2).
        loss: ``"mse"`` (least squares) or ``"mae"`` (least absolute error).
        monotone: +1 non-decreasing or -1 non-increasing everywhere,
            extrapolation included; None for either.
        convex: True convex, False concave; None for either.
        breakpoints: K - 1 fixed breakpoints in X's units, strictly
            increasing: only the slopes and intercepts are fitted.
        seed: seeds fit_curve's random starts; the same data and parameters
            give bitwise the same fit.
        restarts: starts tried, the best kept.
        max_iter: L-BFGS iterations per start.

    Attributes:
        n_features_in_ (int): 1.
        n_units_ (int): the number of segments fitted: ``units``, or the K
            chosen with ``units="auto"``.
        scores_ (numpy.ndarray or None): with ``units="auto"``, the
            criterion (BIC, or the cross-validated error) of each K tried:
            ``scores_[K - 1]``, lower is better; None for a given ``units``.
        feature_names_in_ (numpy.ndarray): the column's name, when X was a
            DataFrame with string column names.
        breakpoints_ (numpy.ndarray): the fitted function's kinks, increasing:
            ``units - 1`` of them, fewer where units fitted onto one
            breakpoint (they count once). With ``units=1`` the line is
            fit_curve's single unit, which bends at the edge of the data (it is
            flat beyond it on one side): one breakpoint.
        slopes_ (numpy.ndarray): each interval's slope, left to right, one more
            than the breakpoints.
        intercepts_ (numpy.ndarray): each interval's intercept: on interval i
            the function is ``slopes_[i] * x + intercepts_[i]``.
        model_ (relu_ext.ReLUSum): the float64 module fit_curve returned, of
            ``n_units_`` units;
            ``model_(torch.from_numpy(x))`` computes the same function.
        loss_ (float): the fitted function's (weighted) loss on the training
            data, in y's units (squared for ``"mse"``).

    Example:
        >>> import numpy as np
        >>> from relu_ext.sklearn import PiecewiseLinearRegressor
        >>> x = np.linspace(0, 4, 101)
        >>> model = PiecewiseLinearRegressor(2).fit(x[:, None], np.abs(x - 1.5))
        >>> model.breakpoints_.round(6)
        array([1.5])
        >>> model.predict([[0.0], [3.0]]).round(6)
        array([1.5, 1.5])
        >>> noisy = np.abs(x - 1.5) + 0.1 * np.random.default_rng(0).standard_normal(101)
        >>> PiecewiseLinearRegressor().fit(x[:, None], noisy).n_units_  # units="auto"
        2
    """

    def __init__(self, units="auto", *, max_units=20, select="bic", folds=5, loss="mse",
                 monotone=None, convex=None, breakpoints=None, seed=0, restarts=4,
                 max_iter=200):
        self.units = units
        self.max_units = max_units
        self.select = select
        self.folds = folds
        self.loss = loss
        self.monotone = monotone
        self.convex = convex
        self.breakpoints = breakpoints
        self.seed = seed
        self.restarts = restarts
        self.max_iter = max_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X of shape (n_samples,) is accepted as the one feature's values.
        tags.input_tags.one_d_array = True
        # The reference score (R² > 0.5 on make_regression's data of
        # ten features, one informative) is out of reach from one feature.
        tags.regressor_tags.poor_score = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the function to the data; returns self.

        Args:
            X: the feature, (n_samples, 1) or (n_samples,), finite.
            y: the target, (n_samples,), finite.
            sample_weight: (n_samples,), >= 0, not all zero: weights each
                point's loss (a weight of 0 leaves the point out, an integer
                weight counts it that many times); None for all 1.
        """
        options = self._fit_curve_options()
        # Two points at least: x must take two distinct values for any line.
        X, y = validate_data(self, _one_column(X), y, dtype=np.float64, y_numeric=True,
                             ensure_min_samples=2)
        _only_one_feature(self, X.shape[1])
        weights = None
        if sample_weight is not None:
            weights = _tensor(_check_sample_weight(sample_weight, X, dtype=np.float64,
                                                   ensure_non_negative=True))
        model, history = fit_curve(_tensor(X[:, 0]), _tensor(y), weights=weights, **options)
        pieces = model.to_piecewise()
        self.model_ = model
        self.n_units_ = model.units
        self.scores_ = None if history.scores is None else np.array(history.scores)
        self.loss_ = float(history.final_loss)
        self.breakpoints_ = pieces.breakpoints.detach().numpy().copy()
        self.slopes_ = pieces.slopes.detach().numpy().copy()
        self.intercepts_ = pieces.intercepts.detach().numpy().copy()
        return self

    def predict(self, X):
        """The fitted function at X, (n_samples, 1) or (n_samples,): a float64
        numpy array of shape (n_samples,)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, _one_column(X), dtype=np.float64, reset=False)
        x = X[:, 0]
        piece = np.searchsorted(self.breakpoints_, x, side="right")
        return self.slopes_[piece] * x + self.intercepts_[piece]

    def summary(self, X, y, sample_weight=None, **options):
        """The fit's statistics on (X, y), the data it was fitted to (an
        estimator keeps no copy of them): :func:`relu_ext.curve_summary` of
        ``model_``, with standard errors of the breakpoints, slopes and
        intercepts, the breakpoints' profile-likelihood intervals, AIC and
        BIC; ``print()`` it for the tables. X, y and ``sample_weight`` as
        ``fit``'s; ``options`` are curve_summary's own (``level``,
        ``calibrate``, ...). ``fixed_breakpoints`` defaults to whether the
        ``breakpoints`` parameter fixed them.

        Raises ValueError for a fit of ``loss="mae"``: the statistics are
        least squares'."""
        check_is_fitted(self, "model_")
        if self.loss != "mse":
            raise ValueError(f"{type(self).__name__}.summary(): the standard errors and "
                             f"intervals are least squares', so the fit must be too "
                             f"(loss='mse'), but it was fitted with loss={self.loss!r}")
        X, y = validate_data(self, _one_column(X), y, dtype=np.float64, y_numeric=True,
                             reset=False)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                           ensure_non_negative=True)
        options = {"fixed_breakpoints": self.breakpoints is not None, **options}
        return curve_summary(self.model_, X[:, 0], y, weights=weights, **options)

    def _fit_curve_options(self):
        """fit_curve's keyword arguments from the parameters, numpy scalars as
        Python's (a grid of np.arange(...) gives np.int64); fit_curve checks
        the values and raises naming the argument."""
        units = self.units
        auto = isinstance(units, str) and units == "auto"
        if not auto and (isinstance(units, (bool, np.bool_))
                         or not isinstance(units, numbers.Integral)):
            raise ValueError(f"{type(self).__name__}: units must be an int >= 1 (the number "
                             f"of segments) or 'auto', but got {units!r}")
        self._check_selection()

        def integer(value):
            return int(value) if isinstance(value, numbers.Integral) and \
                not isinstance(value, (bool, np.bool_)) else value

        breakpoints = self.breakpoints
        if breakpoints is not None:
            breakpoints = _tensor(np.asarray(breakpoints, dtype=np.float64))
        convex = bool(self.convex) if isinstance(self.convex, np.bool_) else self.convex
        return dict(units=units if auto else int(units), max_units=int(self.max_units),
                    select=self.select, folds=int(self.folds), loss=self.loss,
                    monotone=integer(self.monotone), convex=convex, breakpoints=breakpoints,
                    seed=integer(self.seed), restarts=integer(self.restarts),
                    max_iter=integer(self.max_iter))

    def _check_selection(self):
        """max_units, select and folds, checked whatever ``units`` is: fit_curve
        looks at them only with units="auto", and a typo should not wait
        until a grid search reaches "auto"."""
        check_selection(type(self).__name__, self.max_units, self.select, self.folds,
                        integral=(numbers.Integral,), any_select=True)


def _one_column(X):
    """A 1-D X (an array, a list, a pandas Series) as the column (n_samples,
    1) it stands for; anything else as given, for scikit-learn's validation
    to check (and name): 2-D data, DataFrames (whose column names it records),
    sparse matrices (which it refuses), scalars."""
    if sparse.issparse(X):
        return X
    if not hasattr(X, "shape") and (isinstance(X, (list, tuple)) or hasattr(X, "__array__")):
        X = np.asarray(X)
    if len(getattr(X, "shape", ())) == 1:
        return np.reshape(np.asarray(X), (-1, 1))
    return X


def _only_one_feature(estimator, count):
    if count != 1:
        raise ValueError(f"{type(estimator).__name__} fits a function of one feature, but X "
                         f"has {count} features; pass X of shape (n_samples, 1) or "
                         f"(n_samples,)")


def _tensor(array):
    """A float64 numpy array as a torch tensor (a copy when numpy's is read-only, as
    torch.from_numpy needs a writable array)."""
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)
