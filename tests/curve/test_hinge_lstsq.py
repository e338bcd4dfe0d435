"""fit_curve's compiled solver (csrc/curve/): the exact sums, the least squares
over hinge features against torch.linalg.lstsq on the explicit N×(K+1) feature
matrix, the gradient against finite differences, and L-BFGS."""

import random
from fractions import Fraction

import pytest
import torch

from relu_ext.ops import _C


def HingeLeastSquares(u, v, weights=None):
    """The compiled solver over the points (u, v) of these weights, sorted as it takes them."""
    order = torch.argsort(u, stable=True)
    u, v = u[order].contiguous(), v[order]
    w = torch.ones_like(u) if weights is None else weights[order]
    uw, vw = w * u, w * v
    return _C.HingeLeastSquares(u, torch.stack([w, uw, uw * u, vw, uw * v, vw * v]), None)


def exact(values, segment=None, segments=1):
    return _C.exact_round(_C.exact_sums(values, segment, segments))


# ---------------------------------------------------------------- exact sums

def test_exact_sums_are_the_exact_sum_to_an_ulp_over_the_whole_double_range():
    rng = random.Random(0)
    for _ in range(500):
        values = [rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 307)
                  for _ in range(rng.randint(1, 40))]
        values += [5e-324, -2.5e-320, 0.0, -0.0, 1.7e308, -1.7e308]
        rng.shuffle(values)
        got = exact(torch.tensor([values], dtype=torch.float64)).item()
        want = float(sum(map(Fraction, values)))  # exact, then rounded once
        assert got == want or abs(got - want) <= abs(want) * 2**-52, (got, want)


def test_exact_sums_do_not_depend_on_order_or_split():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(3, 5000, generator=g, dtype=torch.float64) * torch.logspace(
        -30, 30, 5000, dtype=torch.float64)
    values = torch.cat([values, -values[:, :2000] * (1 + 1e-15)], 1)  # heavy cancellation
    whole = _C.exact_sums(values, None, 1)
    shuffled = values[:, torch.randperm(values.shape[1], generator=g)]
    parts = sum(_C.exact_sums(part, None, 1) for part in shuffled.tensor_split(7, dim=1))
    assert torch.equal(_C.exact_round(parts), _C.exact_round(whole))
    # a float64 sum in another order differs: the test can tell
    assert not torch.equal(shuffled.sum(1), values.sum(1))


def test_exact_sums_by_segment():
    values = torch.tensor([[1.0, 2.0, 4.0, 8.0, 16.0]], dtype=torch.float64)
    segment = torch.tensor([2, 0, 2, 1, 0])
    assert exact(values, segment, 4).tolist() == [[18.0, 8.0, 5.0, 0.0]]


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([[1.0, float("inf")]], dtype=torch.float64), "values must be finite"),
    (torch.tensor([[1.0, float("nan")]], dtype=torch.float64), "values must be finite"),
    (torch.ones(1, 2), "values must be a 2-D Double"),
])
def test_exact_sums_refuse_what_they_cannot_sum(bad, message):
    with pytest.raises(ValueError, match=message):
        _C.exact_sums(bad, None, 1)


# ---------------------------------------------------------------- least squares

def points(n=700, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, generator=g, dtype=torch.float64)
    v = torch.sin(2 * u) + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    return u, v, w


def explicit_solve(u, v, w, t):
    """The same least squares on the N×(H+2) feature matrix, by torch."""
    features = torch.cat([torch.ones_like(u)[:, None], u[:, None], torch.relu(u[:, None] - t)], 1)
    root = w.sqrt()[:, None]
    coef = torch.linalg.lstsq(root * features, root[:, 0] * v).solution
    mse = (w * (v - features @ coef) ** 2).sum() / w.sum()
    return mse.item(), coef


@pytest.mark.parametrize("weighted", [False, True])
def test_solve_is_the_least_squares_of_the_feature_matrix(weighted):
    u, v, w = points()
    w = w if weighted else torch.ones_like(u)
    t = torch.tensor([0.9, -1.2, 0.1, 0.4], dtype=torch.float64)  # any order
    mse, coef, _ = HingeLeastSquares(u, v, w if weighted else None).solve(t)
    want_mse, want_coef = explicit_solve(u, v, w, t)
    assert mse == pytest.approx(want_mse, rel=1e-10)
    torch.testing.assert_close(coef, want_coef, rtol=1e-8, atol=1e-10)


def test_gradient_is_the_derivative_of_the_error():
    u, v, w = points()
    ls = HingeLeastSquares(u, v, w)
    t = torch.tensor([-1.05, -0.3, 0.2, 1.1], dtype=torch.float64)
    _, _, grad = ls.solve(t)
    step = 1e-6  # well inside the gap between t_k and its neighbouring points
    for k in range(t.numel()):
        up, down = t.clone(), t.clone()
        up[k] += step
        down[k] -= step
        numeric = (ls.solve(up)[0] - ls.solve(down)[0]) / (2 * step)
        assert grad[k].item() == pytest.approx(numeric, rel=1e-4, abs=1e-9)


def test_a_breakpoint_outside_the_data_leaves_a_solvable_system():
    u, v, _ = points()
    t = torch.tensor([-0.5, 50.0, 0.5], dtype=torch.float64)  # nothing right of 50
    mse, coef, grad = HingeLeastSquares(u, v).solve(t)
    want_mse, _ = explicit_solve(u, v, torch.ones_like(u), t[[0, 2]])
    assert mse == pytest.approx(want_mse, rel=1e-9)
    assert torch.isfinite(coef).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("n", [640, 641, 1])  # whole blocks of 64 points, one more, one point
def test_suffix_sums_at_block_boundaries_and_beyond_the_data(n):
    u = torch.linspace(-1, 1, n, dtype=torch.float64)
    v = torch.cos(3 * u)
    ls = HingeLeastSquares(u, v)
    t = torch.cat([u[::7], u[-1:], torch.tensor([-5.0, 5.0], dtype=torch.float64)])
    right = (u[None, :] > t[:, None]).double()  # [k, i]: point i right of t_k
    columns = torch.stack([torch.ones_like(u), u, u * u, v, u * v])
    want = torch.einsum("ki,pi->pk", right, columns)
    torch.testing.assert_close(ls.suffix_sums(t), want, rtol=1e-12, atol=1e-12)
    assert ls.suffix_sums(t)[:, -1].abs().max() == 0  # nothing right of 5


def test_no_solution_is_an_infinite_error_that_minimize_stays_away_from():
    u, v, _ = points()
    ls = HingeLeastSquares(u, v)
    mse, coef, grad = ls.solve(torch.tensor([0.1, float("nan")], dtype=torch.float64))
    assert mse == float("inf") and not coef.any() and not grad.any()
    start = torch.tensor([float("nan")], dtype=torch.float64)
    t, trace = ls.minimize(start, 50)  # nowhere to go: one evaluation, no step
    assert trace == [float("inf")] and t.isnan().all()


def test_minimize_descends_to_a_stationary_point():
    u, v, _ = points(2000)
    ls = HingeLeastSquares(u, v)
    start = torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64)
    t, trace = ls.minimize(start, 200)
    assert torch.equal(t, t.sort().values)
    assert trace[-1] <= min(trace) * (1 + 1e-12) and trace[-1] < 0.8 * ls.solve(start)[0]
    assert ls.solve(t)[2].abs().max().item() < 1e-6
    again, trace_again = ls.minimize(start, 200)  # deterministic
    assert torch.equal(again, t) and trace_again == trace
