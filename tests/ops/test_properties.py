"""Property-based: random shapes and values, fused against the float64 reference."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_close_to_reference, reference_forward_and_grads

import relu_ext

# Multiples of 1/1024 in [-100, 100]: exact ties m·x + b == 0 come up often,
# and no product underflows, which in float32 would (rightly) differ from the
# float64 reference on which side of the kink a tiny pre-activation falls.
finite = st.integers(-102_400, 102_400).map(lambda i: i / 1024)


@st.composite
def problems(draw):
    n = draw(st.integers(0, 300))
    k = draw(st.integers(0, 40))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    def tensor(size):
        return torch.tensor(draw(st.lists(finite, min_size=size, max_size=size)), dtype=dtype)
    x, m, b, g = tensor(n), tensor(k), tensor(k), tensor(n)
    a = tensor(k) if draw(st.booleans()) else None
    return x, m, b, a, g


@settings(max_examples=150, deadline=None)
@given(problems())
def test_fused_matches_reference(problem):
    x, m, b, a, g = problem
    leaves = [t.clone().requires_grad_() for t in (x, m, b)] + ([a.clone().requires_grad_()] if a is not None else [])
    y = relu_ext.relu_sum(*leaves[:3], leaves[3] if a is not None else None)
    grads = torch.autograd.grad(y, leaves, g)
    y_ref, grads_ref = reference_forward_and_grads(x, m, b, a, g)
    assert_close_to_reference(y, y_ref, x.dtype)
    for got, want in zip(grads, grads_ref):
        assert_close_to_reference(got, want, x.dtype)
