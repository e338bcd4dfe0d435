"""relu_ext.sklearn.PiecewiseLinearRegressor: scikit-learn's own estimator
checks, then the estimator in scikit-learn's machinery (Pipeline,
GridSearchCV, cross_val_score, clone, pickle) and the fit it makes.

The common checks feed the estimator their own data. It fits a function of
one feature and says so (its ``one_d_array`` tag: X may be 1-D, the feature's
values), so the checks that fit on several features cannot pass, nor those
whose own code indexes X as 2-D after that tag made it 1-D; each is listed in
EXPECTED_FAILURES with the reason, and run as a strict xfail, so a check that
starts passing is noticed. What those checks would have tested is tested
below on one feature (the "one feature" section).
"""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import relu_ext
from relu_ext.sklearn import PiecewiseLinearRegressor

# Where the interpreters these tests start run: not the source tree's root, whose
# relu_ext (uncompiled) would shadow the installed one.
HERE = Path(__file__).resolve().parent

# -- scikit-learn's checks ----------------------------------------------------------------------

_CHECK_INDEXES_2D = ("the one_d_array tag makes the check pass X[:, 0], 1-D, and the check then "
                     "indexes that X as 2-D itself (X[:, 0] or X.shape[1]): an IndexError in the "
                     "check's own code, before the estimator is called")
_SEVERAL_FEATURES = ("the check fits on X of several features (its data ignore the one_d_array "
                     "tag); the estimator fits a function of one feature and raises a ValueError "
                     "saying so")

EXPECTED_FAILURES = {
    **{name: _CHECK_INDEXES_2D for name in (
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_f_contiguous_array_estimator",
        "check_fit2d_1feature",
        "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_regressors_no_decision_function",
    )},
    **{name: _SEVERAL_FEATURES for name in (
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weights_not_overwritten",
        "check_sample_weights_shape",
    )},
    "check_estimator_sparse_array": (
        "the one_d_array tag makes the check's X a 1-D sparse array, which the check itself "
        "then fails to convert to LIL format (scipy: 'Cannot convert a 1d sparse array to lil "
        "format'); sparse X is refused, as check_estimator_sparse_matrix and "
        "check_estimator_sparse_tag show"),
    "check_fit1d": (
        "X of shape (n_samples,) is accepted by design, as the one feature's values (the "
        "one_d_array tag says so); the check expects a ValueError"),
    "check_non_transformer_estimators_n_iter": (
        "max_iter bounds the L-BFGS iterations of each of fit_curve's runs (several starts, "
        "then rounds reviving breakpoints); fit_curve reports no count of iterations, so there "
        "is no n_iter_ to give"),
}


def expected_failures(estimator):
    return EXPECTED_FAILURES


@parametrize_with_checks([PiecewiseLinearRegressor()], expected_failed_checks=expected_failures,
                         xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    if getattr(check, "func", check).__name__ == "check_array_api_input":
        array_api_check_in_an_interpreter_of_its_own()
        return
    check(estimator)


def array_api_check_in_an_interpreter_of_its_own():
    """check_array_api_input skips itself unless SCIPY_ARRAY_API=1 was set
    before scipy was first imported, which a test cannot do in this process:
    it runs in a fresh one (instead of reporting a skip, which proves nothing)."""
    code = textwrap.dedent("""
        from sklearn.utils.estimator_checks import check_array_api_input
        from relu_ext.sklearn import PiecewiseLinearRegressor
        check_array_api_input("PiecewiseLinearRegressor", PiecewiseLinearRegressor(),
                              array_namespace="numpy", expect_only_array_outputs=False)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "SCIPY_ARRAY_API": "1"}, cwd=HERE)
    assert done.returncode == 0, done.stderr


def test_import_relu_ext_does_not_load_scikit_learn():
    code = ("import sys, relu_ext; "
            "assert 'sklearn' not in sys.modules, 'sklearn'; "
            "assert 'relu_ext.sklearn' not in sys.modules, 'relu_ext.sklearn'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE)
    assert done.returncode == 0, done.stderr


# -- the fit --------------------------------------------------------------------------------------

BREAKPOINTS = np.array([-0.8, 0.6])
SLOPES = np.array([-1.5, 0.5, 2.0])


def target(x):
    """A continuous piecewise-linear function: slopes SLOPES, kinks at BREAKPOINTS."""
    y = 1.0 + SLOPES[0] * x
    for t, change in zip(BREAKPOINTS, np.diff(SLOPES)):
        y = y + change * np.maximum(x - t, 0.0)
    return y


def data(n=200, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    return x[:, None], target(x) + noise * rng.standard_normal(n)


def test_a_piecewise_linear_target_is_recovered():
    X, y = data()
    model = PiecewiseLinearRegressor(3).fit(X, y)
    np.testing.assert_allclose(model.breakpoints_, BREAKPOINTS, atol=1e-6)
    np.testing.assert_allclose(model.slopes_, SLOPES, atol=1e-6)
    assert model.score(X, y) > 1 - 1e-12
    assert model.loss_ < 1e-12
    assert model.n_features_in_ == 1
    for name in ("breakpoints_", "slopes_", "intercepts_"):
        assert isinstance(getattr(model, name), np.ndarray)
        assert getattr(model, name).dtype == np.float64
    assert isinstance(model.model_, relu_ext.ReLUSum) and model.model_.units == 3


def test_predict_is_the_fitted_module_and_loss_its_training_loss():
    X, y = data(noise=0.1)
    model = PiecewiseLinearRegressor(3).fit(X, y)
    grid = np.linspace(-4.0, 4.0, 1001)  # extrapolation included
    predicted = model.predict(grid[:, None])
    assert isinstance(predicted, np.ndarray) and predicted.shape == (1001,)
    with torch.no_grad():
        by_module = model.model_(torch.from_numpy(grid)).numpy()
    np.testing.assert_allclose(predicted, by_module, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.loss_, np.mean((model.predict(X) - y) ** 2), rtol=1e-9)


def test_x_as_a_column_a_1d_array_or_a_list_gives_the_same_fit():
    X, y = data(noise=0.1)
    column = PiecewiseLinearRegressor(3).fit(X, y)
    flat = PiecewiseLinearRegressor(3).fit(X[:, 0], y)
    listed = PiecewiseLinearRegressor(3).fit(X[:, 0].tolist(), y.tolist())
    for other in (flat, listed):
        np.testing.assert_array_equal(other.breakpoints_, column.breakpoints_)
        np.testing.assert_array_equal(other.predict(X), column.predict(X[:, 0]))


def test_float32_and_integer_data_are_fitted_in_float64():
    X, y = data(noise=0.1)
    model = PiecewiseLinearRegressor(3).fit(X.astype(np.float32), y.astype(np.float32))
    assert model.model_.m.dtype == torch.float64
    assert model.predict(X.astype(np.float32)).dtype == np.float64
    integers = PiecewiseLinearRegressor(2).fit(np.arange(10)[:, None], np.abs(np.arange(10) - 4))
    np.testing.assert_allclose(integers.breakpoints_, [4.0], atol=1e-6)


def test_monotone_gives_slopes_of_one_sign():
    X, y = data(noise=0.1)
    rising = PiecewiseLinearRegressor(3, monotone=1).fit(X, y)
    assert (rising.slopes_ >= 0).all()
    falling = PiecewiseLinearRegressor(3, monotone=-1).fit(X, y)
    assert (falling.slopes_ <= 0).all()
    unconstrained = PiecewiseLinearRegressor(3).fit(X, y)
    assert (unconstrained.slopes_ < 0).any()  # the constraint did something


def test_convex_and_fixed_breakpoints_and_mae_reach_fit_curve():
    X, y = data(noise=0.1)
    convex = PiecewiseLinearRegressor(3, convex=True).fit(X, y)
    assert (np.diff(convex.slopes_) >= 0).all()
    fixed = PiecewiseLinearRegressor(3, breakpoints=[-1.0, 1.0]).fit(X, y)
    np.testing.assert_allclose(fixed.breakpoints_, [-1.0, 1.0], rtol=1e-12)
    mae = PiecewiseLinearRegressor(3, loss="mae").fit(X, y)
    np.testing.assert_allclose(mae.loss_, np.mean(np.abs(mae.predict(X) - y)), rtol=1e-9)


def test_the_same_seed_gives_bitwise_the_same_fit():
    X, y = data(noise=0.3)
    first = PiecewiseLinearRegressor(4, seed=5).fit(X, y)
    again = PiecewiseLinearRegressor(4, seed=5).fit(X, y)
    np.testing.assert_array_equal(first.breakpoints_, again.breakpoints_)
    np.testing.assert_array_equal(first.intercepts_, again.intercepts_)


def test_numpy_integers_and_bools_as_parameters():
    X, y = data(noise=0.1)
    model = PiecewiseLinearRegressor(np.int64(3), monotone=np.int64(1), convex=np.bool_(True),
                                     seed=np.int32(1), restarts=np.int64(2),
                                     max_iter=np.int64(50)).fit(X, y)
    assert (model.slopes_ >= 0).all() and (np.diff(model.slopes_) >= 0).all()


# -- units="auto" and the summary -----------------------------------------------------------------

@pytest.mark.parametrize("select", ["bic", "cv"])
def test_units_auto_finds_the_three_segments(select):
    X, y = data(noise=0.05)
    model = PiecewiseLinearRegressor(select=select).fit(X, y)  # units="auto", the default
    assert model.n_units_ == 3 and model.model_.units == 3
    np.testing.assert_allclose(model.breakpoints_, BREAKPOINTS, atol=0.05)
    assert model.scores_.shape == (20,)  # K = 1 to max_units
    if select == "bic":  # the least; cross-validation keeps the fewest within a standard error
        assert np.argmin(model.scores_) + 1 == 3
    assert model.scores_[0] > model.scores_[1] > model.scores_[2]  # 1 and 2 fall short


def test_units_auto_is_fit_curve_auto():
    X, y = data(noise=0.3)
    model = PiecewiseLinearRegressor(max_units=6, select="cv", folds=4, seed=2).fit(X, y)
    expected, history = relu_ext.fit_curve(torch.from_numpy(X[:, 0]), torch.from_numpy(y),
                                           "auto", max_units=6, select="cv", folds=4, seed=2)
    assert model.n_units_ == history.units
    np.testing.assert_array_equal(model.scores_, history.scores)
    np.testing.assert_array_equal(model.breakpoints_,
                                  expected.to_piecewise().breakpoints.numpy())


def test_a_given_number_of_units_has_no_scores():
    X, y = data(noise=0.05)
    model = PiecewiseLinearRegressor(4).fit(X, y)
    assert model.n_units_ == 4 and model.scores_ is None


def test_grid_search_with_auto_among_the_units():
    X, y = data(noise=0.05)
    search = GridSearchCV(PiecewiseLinearRegressor(), {"units": [1, 2, "auto"]},
                          cv=KFold(5, shuffle=True, random_state=0)).fit(X, y)
    assert search.best_params_ == {"units": "auto"}
    assert search.best_estimator_.n_units_ == 3


def test_summary_is_curve_summary_of_the_fit():
    X, y = data(noise=0.05)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    model = PiecewiseLinearRegressor().fit(X, y, sample_weight=weights)
    options = dict(level=0.9, calibrate="bootstrap", replicates=20, seed=3)  # curve_summary's
    summary = model.summary(X, y, sample_weight=weights, **options)
    expected = relu_ext.curve_summary(model.model_, X[:, 0], y, weights=weights, **options)
    assert str(summary) == str(expected)
    assert summary.level == 0.9 and summary.bootstrapped and not summary.fixed_breakpoints
    np.testing.assert_allclose(summary.breakpoints.numpy(), model.breakpoints_, rtol=1e-12)
    assert str(model.summary(X, y, **options)) != str(expected)  # the weights do count
    low, high = summary.conf_int()["breakpoints"]
    assert ((low < summary.breakpoints) & (summary.breakpoints < high)).all()


def test_summary_of_fixed_breakpoints_treats_them_as_known():
    X, y = data(noise=0.05)
    model = PiecewiseLinearRegressor(3, breakpoints=[-1.0, 1.0]).fit(X, y)
    summary = model.summary(X[:, 0], y)  # X as the feature's values, as fit takes it
    assert summary.fixed_breakpoints and int(summary.n_params) == 4  # 3 slopes, an intercept
    estimated = model.summary(X, y, fixed_breakpoints=False)  # asked for: counted as estimated
    assert not estimated.fixed_breakpoints and int(estimated.n_params) == 6


def test_summary_refuses_what_it_cannot_summarise():
    X, y = data(noise=0.05)
    with pytest.raises(NotFittedError):
        PiecewiseLinearRegressor(3).summary(X, y)
    with pytest.raises(ValueError, match=r"summary\(\): .* least squares'.*loss='mae'"):
        PiecewiseLinearRegressor(3, loss="mae").fit(X, y).summary(X, y)
    model = PiecewiseLinearRegressor(3).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but PiecewiseLinearRegressor is "
                                         "expecting 1 features"):
        model.summary(np.hstack([X, X]), y)
    with pytest.raises(ValueError, match="sample_weight"):
        model.summary(X, y, sample_weight=np.ones(len(y) - 1))


# -- sample_weight --------------------------------------------------------------------------------

def test_a_zero_weight_removes_a_points_influence():
    X, y = data(noise=0.1)
    outlier_X, outlier_y = np.vstack([X, [[0.1]]]), np.append(y, 50.0)
    weights = np.append(np.ones(len(y)), 0.0)
    weighted = PiecewiseLinearRegressor(3).fit(outlier_X, outlier_y, sample_weight=weights)
    without = PiecewiseLinearRegressor(3).fit(X, y)
    np.testing.assert_allclose(weighted.breakpoints_, without.breakpoints_, rtol=1e-9)
    np.testing.assert_allclose(weighted.predict(X), without.predict(X), rtol=1e-9, atol=1e-12)
    pulled = PiecewiseLinearRegressor(3).fit(outlier_X, outlier_y)  # the outlier does matter
    assert np.abs(pulled.predict(X) - without.predict(X)).max() > 0.1


def test_an_integer_weight_counts_a_point_that_many_times():
    # check_sample_weight_equivalence_on_dense_data, on one feature.
    X, y = data(n=60, noise=0.1)
    counts = np.random.default_rng(1).integers(0, 3, len(y))
    weighted = PiecewiseLinearRegressor(3).fit(X, y, sample_weight=counts)
    repeated = PiecewiseLinearRegressor(3).fit(np.repeat(X, counts, axis=0),
                                               np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-7, atol=1e-9)


def test_sample_weight_is_checked_and_left_untouched():
    # check_sample_weights_shape and check_sample_weights_not_overwritten, on one feature.
    X, y = data(n=20)
    weights = np.linspace(0.5, 2.0, 20)
    given = weights.copy()
    PiecewiseLinearRegressor(2).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(weights, given)
    PiecewiseLinearRegressor(2).fit(X, y, sample_weight=weights.tolist())
    with pytest.raises(ValueError, match="sample_weight"):
        PiecewiseLinearRegressor(2).fit(X, y, sample_weight=np.ones(19))
    with pytest.raises(ValueError, match="Negative values.*sample_weight"):
        PiecewiseLinearRegressor(2).fit(X, y, sample_weight=-weights)
    with pytest.raises(ValueError, match="[Ww]eight"):
        PiecewiseLinearRegressor(2).fit(X, y, sample_weight=np.zeros(20))


# -- bad data and parameters ----------------------------------------------------------------------

def test_nan_raises_scikit_learns_value_error():
    X, y = data(n=20)
    bad_X, bad_y = X.copy(), y.copy()
    bad_X[3, 0] = np.nan
    bad_y[5] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        PiecewiseLinearRegressor(2).fit(bad_X, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        PiecewiseLinearRegressor(2).fit(X, bad_y)
    model = PiecewiseLinearRegressor(2).fit(X, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(bad_X)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        model.predict(np.array([[np.inf]]))


def test_two_features_raise_naming_the_count():
    X, y = data(n=20)
    with pytest.raises(ValueError, match="one feature, but X has 2 features"):
        PiecewiseLinearRegressor(2).fit(np.hstack([X, X]), y)
    # check_n_features_in_after_fitting, on one feature: predict names both counts.
    model = PiecewiseLinearRegressor(2).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but PiecewiseLinearRegressor is "
                                         "expecting 1 features"):
        model.predict(np.hstack([X, X]))


def test_one_sample_and_empty_data_are_refused():
    # check_fit2d_1sample, on one feature.
    with pytest.raises(ValueError, match=r"1 sample\(s\).*minimum of 2"):
        PiecewiseLinearRegressor(1).fit([[1.0]], [2.0])
    with pytest.raises(ValueError, match="0 sample"):
        PiecewiseLinearRegressor(1).fit(np.empty((0, 1)), np.empty(0))


def test_more_units_than_points_and_constant_x_raise_value_error():
    with pytest.raises(ValueError, match="at least as many points as units"):
        PiecewiseLinearRegressor(5).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="two distinct values"):
        PiecewiseLinearRegressor(1).fit([[1.0], [1.0], [1.0]], [0.0, 1.0, 0.0])


@pytest.mark.parametrize("params, match", [
    (dict(units=2.5), "units must be an int >= 1 .* or 'auto', but got 2.5"),
    (dict(units=0), "units must be an int >= 1"),
    (dict(units=True), "units must be an int"),
    (dict(units="many"), "units must be an int >= 1 .* or 'auto', but got 'many'"),
    (dict(max_units=0), "max_units must be an int >= 1, but got 0"),
    (dict(max_units=2.5), "max_units must be an int >= 1, but got 2.5"),
    (dict(select="aic"), "select must be one of 'bic', 'cv', but got 'aic'"),
    (dict(select="cv", folds=1), "folds must be an int >= 2, but got 1"),
    # Checked whatever units is: a typo does not wait for a grid to reach "auto".
    (dict(units=3, select="aic"), "select must be one of 'bic', 'cv', but got 'aic'"),
    (dict(units="auto", breakpoints=[0.5]), "cannot be given with units=\"auto\""),
    (dict(loss="huber"), "loss must be one of"),
    (dict(monotone=2), "monotone must be None"),
    (dict(convex="yes"), "convex must be None"),
    (dict(units=3, breakpoints=[0.5]), "breakpoints"),
    (dict(units=3, breakpoints=[0.5, 0.1]), "strictly increasing"),
])
def test_bad_parameters_raise_value_error_in_fit_naming_them(params, match):
    X, y = data(n=20)
    model = PiecewiseLinearRegressor(**params)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)


def test_not_fitted_error_before_fit():
    model = PiecewiseLinearRegressor()
    with pytest.raises(NotFittedError):
        model.predict([[0.0]])
    with pytest.raises(NotFittedError):
        model.score([[0.0], [1.0]], [0.0, 1.0])


def test_a_failed_fit_leaves_the_estimator_unfitted():
    X, y = data(n=20)
    model = PiecewiseLinearRegressor(2)
    with pytest.raises(ValueError):
        model.fit(np.hstack([X, X]), y)
    with pytest.raises(NotFittedError):
        model.predict(X)


# -- one feature: what the checks marked above test -----------------------------------------------

def test_predictions_do_not_depend_on_the_batch():
    # check_methods_subset_invariance and check_methods_sample_order_invariance.
    X, y = data(noise=0.1)
    model = PiecewiseLinearRegressor(3).fit(X, y)
    whole = model.predict(X)
    one_by_one = np.concatenate([model.predict(X[i:i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(one_by_one, whole)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(model.predict(X[order]), whole[order])


def test_fit_changes_neither_the_parameters_nor_the_data():
    # check_dict_unchanged and check_dont_overwrite_parameters.
    X, y = data(n=30, noise=0.1)
    X_given, y_given = X.copy(), y.copy()
    breakpoints = [-1.0, 1.0]
    model = PiecewiseLinearRegressor(3, breakpoints=breakpoints)
    params = model.get_params()
    model.fit(X, y)
    assert model.get_params() == params and model.breakpoints is breakpoints
    np.testing.assert_array_equal(X, X_given)
    np.testing.assert_array_equal(y, y_given)
    before = dict(vars(model))
    model.predict(X)
    assert vars(model).keys() == before.keys()
    assert all(vars(model)[k] is v for k, v in before.items())
    public = {k for k in vars(model) if not k.startswith("_")}
    assert public - set(params) == {"n_features_in_", "n_units_", "scores_", "breakpoints_",
                                    "slopes_", "intercepts_", "model_", "loss_"}


def test_fortran_ordered_readonly_and_object_data_are_accepted():
    # check_f_contiguous_array_estimator, check_readonly_memmap_input and check_dtype_object.
    X, y = data(n=30, noise=0.1)
    expected = PiecewiseLinearRegressor(3).fit(X, y).predict(X)
    fortran = np.asfortranarray(X)
    readonly_X, readonly_y = X.copy(), y.copy()
    readonly_X.flags.writeable = readonly_y.flags.writeable = False
    for fit_X, fit_y in ((fortran, y), (readonly_X, readonly_y), (X.astype(object), y)):
        model = PiecewiseLinearRegressor(3).fit(fit_X, fit_y)
        np.testing.assert_array_equal(model.predict(fit_X), expected)
    with pytest.raises(ValueError, match="could not convert|[Ss]tring"):
        PiecewiseLinearRegressor(3).fit(np.array([["a"]] * 30, dtype=object), y)


def test_a_dataframes_column_name_is_recorded():
    pd = pytest.importorskip("pandas", reason="pandas is not among the test dependencies")
    X, y = data(n=30, noise=0.1)
    frame = pd.DataFrame({"dose": X[:, 0]})
    model = PiecewiseLinearRegressor(3).fit(frame, y)
    assert list(model.feature_names_in_) == ["dose"]
    np.testing.assert_array_equal(model.predict(frame),
                                  PiecewiseLinearRegressor(3).fit(X, y).predict(X))
    PiecewiseLinearRegressor(3).fit(frame["dose"], y)  # a Series: the column's values


# -- scikit-learn's machinery ---------------------------------------------------------------------

def test_get_params_and_set_params():
    breakpoints = np.array([-1.0, 1.0])
    model = PiecewiseLinearRegressor(3, loss="mae", monotone=1, breakpoints=breakpoints, seed=7)
    assert model.get_params() == dict(units=3, max_units=20, select="bic", folds=5, loss="mae",
                                      monotone=1, convex=None, breakpoints=breakpoints, seed=7,
                                      restarts=4, max_iter=200)
    assert model.get_params()["breakpoints"] is breakpoints  # stored untouched
    assert model.set_params(units=4, convex=True) is model
    assert model.units == 4 and model.convex is True
    assert model.set_params(units="auto", select="cv", folds=3) is model
    assert (model.units, model.select, model.folds) == ("auto", "cv", 3)
    assert repr(PiecewiseLinearRegressor()) == "PiecewiseLinearRegressor()"  # units="auto"
    assert repr(PiecewiseLinearRegressor(3)) == "PiecewiseLinearRegressor(units=3)"


def test_clone_copies_the_parameters_not_the_fit():
    X, y = data(noise=0.1)
    model = PiecewiseLinearRegressor(3, monotone=1, seed=3).fit(X, y)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert not hasattr(copy, "model_") and not hasattr(copy, "breakpoints_")
    np.testing.assert_array_equal(copy.fit(X, y).predict(X), model.predict(X))


def test_pickle_round_trip_gives_identical_predictions():
    X, y = data(noise=0.1)
    model = PiecewiseLinearRegressor(3).fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    grid = np.linspace(-5.0, 5.0, 501)[:, None]
    np.testing.assert_array_equal(loaded.predict(grid), model.predict(grid))
    for name in ("breakpoints_", "slopes_", "intercepts_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    with torch.no_grad():
        x = torch.from_numpy(grid[:, 0])
        assert torch.equal(loaded.model_(x), model.model_(x))
    assert loaded.loss_ == model.loss_ and loaded.get_params() == model.get_params()


def test_in_a_pipeline_after_a_scaler():
    X, y = data(noise=0.05)
    X_raw = 40.0 + 15.0 * X  # a feature in other units: the scaler brings it back
    pipe = make_pipeline(StandardScaler(), PiecewiseLinearRegressor(3)).fit(X_raw, y)
    assert pipe.score(X_raw, y) > 0.99
    scaler, model = pipe[0], pipe[-1]
    found = model.breakpoints_ * scaler.scale_[0] + scaler.mean_[0]
    np.testing.assert_allclose(found, 40.0 + 15.0 * BREAKPOINTS, atol=0.3)
    log_pipe = make_pipeline(FunctionTransformer(np.log), PiecewiseLinearRegressor(3))
    np.testing.assert_allclose(log_pipe.fit(np.exp(X), y).predict(np.exp(X)),
                               PiecewiseLinearRegressor(3).fit(X, y).predict(X), rtol=1e-6)


def test_grid_search_over_units_finds_the_segments():
    X, y = data(noise=0.05)
    search = GridSearchCV(PiecewiseLinearRegressor(), {"units": np.arange(1, 6)},
                          cv=KFold(5, shuffle=True, random_state=0)).fit(X, y)
    assert search.best_params_["units"] >= 3
    scores = search.cv_results_["mean_test_score"]
    assert scores[2] > scores[1] > scores[0]  # 3 segments beat 2, which beat 1
    assert search.best_estimator_.score(X, y) > 0.99
    assert isinstance(search.predict(X), np.ndarray)


def test_cross_val_score():
    X, y = data(noise=0.05)
    scores = cross_val_score(PiecewiseLinearRegressor(3), X, y,
                             cv=KFold(5, shuffle=True, random_state=0))
    assert scores.shape == (5,) and (scores > 0.99).all()
    # Scored by mean absolute error, as scikit-learn's scorers name it.
    errors = cross_val_score(PiecewiseLinearRegressor(3, loss="mae"), X, y, cv=3,
                             scoring="neg_mean_absolute_error")
    assert (errors < 0).all() and (-errors < 0.2).all()
