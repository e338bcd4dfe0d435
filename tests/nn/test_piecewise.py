"""ReLUSum.to_piecewise / from_piecewise: the intervals pwlf users read, and back."""

import pytest
import torch

import relu_ext
from relu_ext import ReLUSum


def random_module(units=9, seed=0):
    torch.manual_seed(seed)
    module = ReLUSum(units, bias=True, dtype=torch.float64)
    with torch.no_grad():
        module.m.copy_(torch.randn(units))
        module.bias.fill_(0.25)
    return module


def evaluate(piecewise, x):
    i = torch.searchsorted(piecewise.breakpoints, x)
    return piecewise.slopes[i] * x + piecewise.intercepts[i]


def test_intervals_compute_the_module():
    module = random_module()
    piecewise = module.to_piecewise()
    assert piecewise.breakpoints.shape == (9,)
    assert piecewise.slopes.shape == piecewise.intercepts.shape == (10,)
    assert (piecewise.breakpoints[1:] > piecewise.breakpoints[:-1]).all()
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(evaluate(piecewise, x), module(x), rtol=0, atol=1e-12)


def test_round_trip_module_to_piecewise_and_back():
    module = random_module()
    piecewise = module.to_piecewise()
    rebuilt = ReLUSum.from_piecewise(*piecewise)
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), module(x), rtol=0, atol=1e-12)
    again = rebuilt.to_piecewise()
    for field, first, second in zip(piecewise._fields, piecewise, again):
        torch.testing.assert_close(second, first, rtol=0, atol=1e-12, msg=field)


def test_round_trip_piecewise_to_module_and_back():
    breakpoints = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    slopes = torch.tensor([0.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    intercepts = torch.tensor([1.0, 3.0, 4.5, 1.5], dtype=torch.float64)
    module = ReLUSum.from_piecewise(breakpoints, slopes, intercepts)
    assert module.units == 3  # a flat left end needs no unit of its own
    for expected, got in zip((breakpoints, slopes, intercepts), module.to_piecewise()):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_units_at_one_breakpoint_merge_and_flat_units_are_constants():
    module = ReLUSum(3, bias=True, dtype=torch.float64)
    with torch.no_grad():
        module.m.copy_(torch.tensor([1.0, -2.0, 0.0]))
        module.b.copy_(torch.tensor([-1.0, 2.0, 3.0]))  # both bend at x = 1
        module.a.copy_(torch.tensor([1.0, 1.0, 0.5]))
        module.bias.fill_(0.0)
    piecewise = module.to_piecewise()
    torch.testing.assert_close(piecewise.breakpoints, torch.tensor([1.0], dtype=torch.float64))
    torch.testing.assert_close(piecewise.slopes, torch.tensor([-2.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(piecewise.intercepts,
                               torch.tensor([3.5, 0.5], dtype=torch.float64))


def test_without_output_weights_or_bias():
    torch.manual_seed(1)
    module = ReLUSum(5, out_weights=False, dtype=torch.float64)
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(evaluate(module.to_piecewise(), x), module(x), rtol=0,
                                   atol=1e-12)


@pytest.mark.parametrize("args, message", [
    (([0.0, 1.0], [1.0, 2.0], [0.0, 0.0]), r"slopes and intercepts of shape \(K \+ 1,\)"),
    (([1.0, 0.0], [1.0, 2.0, 3.0], [0.0, -1.0, 0.0]), "sorted and distinct"),
    (([0.0], [1.0, 2.0], [0.0, 5.0]), "the lines must meet at the breakpoints"),
    (([float("nan")], [1.0, 2.0], [0.0, 0.0]), "must be finite"),
])
def test_from_piecewise_rejects_what_is_not_a_continuous_function(args, message):
    with pytest.raises(ValueError, match=message):
        ReLUSum.from_piecewise(*(torch.tensor(a, dtype=torch.float64) for a in args))


def test_bias_is_opt_in():
    assert ReLUSum(4).bias is None and "bias" not in ReLUSum(4).state_dict()
    module = ReLUSum(4, bias=True)
    assert [name for name, _ in module.named_parameters()] == ["m", "b", "a", "bias"]
    assert repr(module) == "ReLUSum(units=4, out_weights=True, bias=True)"
    x = torch.randn(7)
    with torch.no_grad():
        module.bias.fill_(2.0)
    torch.testing.assert_close(module(x), relu_ext.reference.relu_sum(x, module.m, module.b,
                                                                      module.a) + 2.0)


def test_from_piecewise_takes_arrays_and_integers_give_float64():
    import numpy as np
    import pandas as pd

    module = ReLUSum.from_piecewise(np.array([1, 3]), pd.Series([1, -1, 2]), [0, 2, -7])
    assert module.m.dtype == torch.float64
    np.testing.assert_allclose(module.predict([0, 1, 2, 3, 4]), [0.0, 1.0, 0.0, -1.0, 1.0])
