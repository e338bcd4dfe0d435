"""relu_sum under PyTorch's transforms: forward mode (torch.func.jvp and
torch.autograd.forward_ad), torch.func's grad/vjp/jacrev/jacfwd/hessian,
vmap with real batching rules, double backward, and ReLUSumFunction. Every
result is compared with the same transform of the pure-PyTorch reference, in
float64, for both algorithms, with and without output weights."""

import copy
import warnings

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import func

import relu_ext
from helpers import make_inputs

reference = relu_ext.reference.relu_sum
ALGORITHMS = ["auto", "dense", "breakpoints"]  # auto: the composite relu_sum_auto
ARGS = (0, 1, 2, 3)


def inputs(out_weights=True, shape=(6, 5), units=7, seed=0):
    x, m, b, a = make_inputs(shape, units, dtype=torch.float64, out_weights=out_weights, seed=seed)
    return x, m, b, (a if out_weights else torch.ones_like(m))


def ours(algorithm, out_weights=True):
    """relu_sum as a function of (x, m, b, a); without output weights a is ignored."""
    if out_weights:
        return lambda x, m, b, a: relu_ext.relu_sum(x, m, b, a, algorithm=algorithm)
    return lambda x, m, b, a: relu_ext.relu_sum(x, m, b, algorithm=algorithm)


def theirs(out_weights=True):
    return reference if out_weights else (lambda x, m, b, a: reference(x, m, b))


def assert_all_close(got, want):
    got, want = torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


@pytest.fixture(autouse=True)
def no_fallback_warnings(capfd):
    """vmap's per-sample fallback, a dropped tangent and friends warn: each is a failure here.
    The fallback's warning is off by default and printed by C++ rather than
    raised: it is switched on and looked for on stderr."""
    torch._C._functorch._set_vmap_fallback_warning_enabled(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            yield
    finally:
        torch._C._functorch._set_vmap_fallback_warning_enabled(False)
    err = capfd.readouterr().err
    assert "have not yet implemented the batching rule" not in err, err


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("along, out_weights", [
    (along, out_weights) for along in ("x", "m", "b", "a", "all") for out_weights in (True, False)
    if out_weights or along != "a"  # no output weights, no tangent in a
], ids=str)
def test_jvp_matches_reference(along, out_weights, algorithm):
    # One tangent at a time, so that a dropped one cannot hide behind the others.
    primals = inputs(out_weights)
    g = torch.Generator().manual_seed(1)
    tangents = tuple(
        torch.randn(t.shape, generator=g, dtype=t.dtype) if along in (name, "all")
        else torch.zeros_like(t)
        for name, t in zip("xmba", primals))
    y, y_t = func.jvp(ours(algorithm, out_weights), primals, tangents)
    y_ref, y_t_ref = func.jvp(theirs(out_weights), primals, tangents)
    assert y_t.abs().sum() > 0
    assert_all_close((y, y_t), (y_ref, y_t_ref))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_forward_ad_dual_numbers(algorithm):
    x, m, b, a = inputs()
    x_t, b_t = torch.randn_like(x), torch.randn_like(b)
    with fwAD.dual_level():
        y = relu_ext.relu_sum(fwAD.make_dual(x, x_t), m, fwAD.make_dual(b, b_t), a,
                              algorithm=algorithm)
        tangent = fwAD.unpack_dual(y).tangent
    assert tangent is not None
    _, want = func.jvp(lambda x, b: reference(x, m, b, a), (x, b), (x_t, b_t))
    assert_all_close(tangent, want)


@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobians(transform, algorithm, out_weights):
    primals = inputs(out_weights, shape=(4, 3), units=5)
    jac = getattr(func, transform)
    assert_all_close(jac(ours(algorithm, out_weights), argnums=ARGS)(*primals),
                     jac(theirs(out_weights), argnums=ARGS)(*primals))


@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hessian(algorithm, out_weights):
    primals = inputs(out_weights, shape=(4, 3), units=5)

    def loss(f):
        return lambda *p: (f(*p) ** 2).sum() + f(*p).sum() ** 2

    assert_all_close(func.hessian(loss(ours(algorithm, out_weights)), argnums=ARGS)(*primals),
                     func.hessian(loss(theirs(out_weights)), argnums=ARGS)(*primals))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_grad_and_vjp(algorithm):
    primals = inputs()
    f, f_ref = ours(algorithm), theirs()
    assert_all_close(func.grad(lambda *p: f(*p).sin().sum(), argnums=ARGS)(*primals),
                     func.grad(lambda *p: f_ref(*p).sin().sum(), argnums=ARGS)(*primals))
    cotangent = torch.randn_like(primals[0])
    _, pullback = func.vjp(f, *primals)
    _, pullback_ref = func.vjp(f_ref, *primals)
    assert_all_close(pullback(cotangent), pullback_ref(cotangent))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("in_dims", [(0, None, None, None), (None, 0, 0, 0), (1, 0, None, 0)],
                         ids=["x", "units", "x_and_units"])
def test_vmap(in_dims, algorithm):
    x, m, b, a = inputs()
    batched = [t if d is None else torch.stack([t * (1 + 0.5 * i) for i in range(3)], dim=d)
               for t, d in zip((x, m, b, a), in_dims)]
    got = func.vmap(ours(algorithm), in_dims)(*batched)
    want = func.vmap(reference, in_dims)(*batched)
    assert_all_close(got, want)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("in_dims", [(0, None, None, None), (None, 0, 0, 0)], ids=["x", "units"])
def test_vmap_over_an_empty_batch(in_dims, algorithm):
    x, m, b, a = inputs()
    batched = [t if d is None else t[None][:0] for t, d in zip((x, m, b, a), in_dims)]
    got = func.vmap(ours(algorithm), in_dims)(*batched)
    assert got.shape == (0, *x.shape) and got.dtype == x.dtype


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_per_sample_gradients(algorithm):
    # vmap over grad: each sample's gradient with respect to the shared units.
    x, m, b, a = inputs()
    f, f_ref = ours(algorithm), theirs()
    per_sample = func.vmap(func.grad(lambda x, m, b, a: f(x, m, b, a).sum(), argnums=(1, 2, 3)),
                           in_dims=(0, None, None, None))
    per_sample_ref = func.vmap(func.grad(lambda x, m, b, a: f_ref(x, m, b, a).sum(), argnums=(1, 2, 3)),
                               in_dims=(0, None, None, None))
    assert_all_close(per_sample(x, m, b, a), per_sample_ref(x, m, b, a))


def test_ensemble_with_stack_module_state_and_functional_call():
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(2, 3), relu_ext.ReLUSum(6), torch.nn.Linear(3, 1)).double()
              for _ in range(4)]
    params, buffers = func.stack_module_state(models)
    base = models[0]
    x = torch.randn(10, 2, dtype=torch.float64)

    def run(p, bufs, x):
        return func.functional_call(base, (p, bufs), (x,))

    got = func.vmap(run, in_dims=(0, 0, None))(params, buffers, x)
    torch.testing.assert_close(got, torch.stack([model(x) for model in models]))
    # and its gradients, through vmap of grad
    grads = func.vmap(func.grad(lambda p, bufs, x: run(p, bufs, x).square().mean()),
                      in_dims=(0, 0, None))(params, buffers, x)
    for i, model in enumerate(models):
        model.zero_grad()
        model(x).square().mean().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(grads[name][i], p.grad)


@pytest.mark.parametrize("out_weights", [True, False], ids=["a", "no_a"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradgradcheck(algorithm, out_weights):
    x, m, b, a = inputs(out_weights, shape=(9,), units=4)
    leaves = [t.requires_grad_() for t in (x, m, b, a)[: 4 if out_weights else 3]]
    fn = (lambda *p: relu_ext.relu_sum(*p, algorithm=algorithm))
    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradgradcheck(fn, leaves)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradient_penalty_matches_reference(algorithm):
    # A WGAN-GP style penalty: the norm of d(output)/d(input), then backward
    # into the parameters through the first backward.
    def penalty_grads(f):
        x, m, b, a = (t.clone().requires_grad_() for t in inputs(seed=3))
        y = f(x, m, b, a)
        (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        ((gx.norm() - 1) ** 2 + y.mean()).backward()
        return x.grad, m.grad, b.grad, a.grad

    assert_all_close(penalty_grads(ours(algorithm)), penalty_grads(reference))


class ReferenceReLUSum(torch.nn.Module):
    """A ReLUSum's forward by the reference, on the module's own parameters."""

    def __init__(self, module):
        super().__init__()
        assert module.bias is None  # the default; the sum alone is compared
        self.module = module

    def forward(self, x):
        f = self.module
        return reference(x, f.m, f.b, f.a, dim=f.dim)


@pytest.mark.parametrize("algorithm", ["dense", "breakpoints"])
@pytest.mark.parametrize("channels", [None, 5], ids=["shared", "per_channel"])
def test_gradient_penalty_reaches_every_parameter(channels, algorithm):
    # Through the first backward only x's gradient is taken, so b, and the
    # bias of the layer before (which reaches the penalty only through x),
    # get their second derivatives from relu'' = 0: zeros, which
    # torch.autograd.grad must find, as it does through torch.relu.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5),
                                relu_ext.ReLUSum(4, channels=channels, algorithm=algorithm),
                                torch.nn.Linear(5, 1)).double()
    model_ref = copy.deepcopy(model)
    model_ref[1] = ReferenceReLUSum(model_ref[1])
    x = torch.randn(8, 6, dtype=torch.float64)

    def penalty_grads(model):
        x_ = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(model(x_).sum(), x_, create_graph=True)
        penalty = ((gx.norm(dim=1) - 1) ** 2).mean()
        # Every parameter but the last layer's bias, which gx does not depend on.
        params = [p for name, p in model.named_parameters() if name != "2.bias"]
        return torch.autograd.grad(penalty, params)

    got, want = penalty_grads(model), penalty_grads(model_ref)
    assert len(got) == len(want) == 6
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("of, wrt, out_weights", [
    (of, wrt, out_weights) for out_weights in (True, False) for of in ARGS for wrt in ARGS
    if out_weights or 3 not in (of, wrt)  # no output weights, no a
], ids=lambda v: ("a" if v else "no_a") if isinstance(v, bool) else f"d{'xmba'[v]}")
def test_second_derivatives_are_zeros_where_relu_has_none(of, wrt, out_weights, algorithm):
    # One first-order gradient, then its gradient with respect to one input:
    # most of these are zero (relu'' = 0), and must come back as zeros, not
    # as "not used in the graph". The reference has no graph at all from
    # da to a (a enters y linearly); there it counts as zero.
    def second(f, **flags):
        leaves = [t.clone().requires_grad_() for t in inputs(out_weights, seed=4)]
        (first,) = torch.autograd.grad(f(*leaves).sum(), leaves[of], create_graph=True)
        weights = torch.linspace(-1, 2, first.numel(), dtype=first.dtype).view_as(first)
        return torch.autograd.grad((first * weights).sum(), leaves[wrt], **flags)

    assert_all_close(second(ours(algorithm, out_weights)),
                     second(theirs(out_weights), allow_unused=True, materialize_grads=True))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_third_derivatives_are_zeros_where_relu_has_none(algorithm):
    # d(dm)/dx = g·step_sum(x, m, b, a): x, m and b reach it only through
    # step_sum, which is piecewise constant in them.
    def third(f, **flags):
        leaves = [t.clone().requires_grad_() for t in inputs(seed=6)]
        (dm,) = torch.autograd.grad(f(*leaves).sum(), leaves[1], create_graph=True)
        (dm_dx,) = torch.autograd.grad(dm.sum(), leaves[0], create_graph=True)
        return torch.autograd.grad(dm_dx.sum(), leaves, **flags)

    assert_all_close(third(ours(algorithm)),
                     third(reference, allow_unused=True, materialize_grads=True))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dual", [0, 1, 2], ids=["x_t", "m_t", "b_t"])
@pytest.mark.parametrize("of", [1, 3], ids=["dm", "da"])
def test_second_derivatives_carry_tangents_in_forward_mode(of, dual, algorithm):
    # d(dm)/dx = g·step_sum(x, m, b, a) and d(da)/dx = g·step_sum(x, m, b, m),
    # g = 1 here: along x, m or b their tangents come from step_sum's, which
    # are zero in x, m and b, and must be there, as the reference's are.
    primals = inputs(seed=5)
    tangent = torch.randn(primals[dual].shape, generator=torch.Generator().manual_seed(6),
                          dtype=torch.float64)

    def forward_over_second(f):
        with fwAD.dual_level():
            leaves = [t.clone().requires_grad_() for t in primals]
            duals = [fwAD.make_dual(t, tangent) if i == dual else t for i, t in enumerate(leaves)]
            (first,) = torch.autograd.grad(f(*duals).sum(), leaves[of], create_graph=True)
            (second,) = torch.autograd.grad(first.sum(), leaves[0])
            return fwAD.unpack_dual(second)

    got, want = forward_over_second(ours(algorithm)), forward_over_second(reference)
    assert got.tangent is not None and want.tangent is not None
    assert_all_close((got.primal, got.tangent), (want.primal, want.tangent))


def test_relu_sum_function_composes_like_the_op():
    x, m, b, a = inputs(shape=(5,), units=4)
    apply = relu_ext.ReLUSumFunction.apply
    tangents = tuple(torch.randn_like(t) for t in (x, m, b, a))
    assert_all_close(func.jvp(apply, (x, m, b, a), tangents),
                     func.jvp(reference, (x, m, b, a), tangents))
    assert_all_close(func.jacrev(apply, argnums=ARGS)(x, m, b, a),
                     func.jacrev(reference, argnums=ARGS)(x, m, b, a))
    X = torch.randn(3, 5, dtype=torch.float64)
    assert_all_close(func.vmap(apply, (0, None, None, None))(X, m, b, a), reference(X, m, b, a))
    leaves = [t.clone().requires_grad_() for t in (x, m, b, a)]
    assert torch.autograd.gradgradcheck(apply, leaves)


def test_backward_computes_only_what_is_asked_for_in_double_backward():
    # Second-order terms in the parameters only: no dx-shaped work is asked
    # of relu_sum_backward for x, which does not require grad.
    x, m, b, a = inputs()
    m, b, a = (t.requires_grad_() for t in (m, b, a))
    y = relu_ext.relu_sum(x, m, b, a)
    gm, gb, ga = torch.autograd.grad(y.square().sum(), (m, b, a), create_graph=True)
    hm, hb, ha = torch.autograd.grad(gm.sum() + gb.sum() + ga.sum(), (m, b, a))
    ref_inputs = [t.detach().clone().requires_grad_() for t in (m, b, a)]
    y_ref = reference(x, *ref_inputs)
    rm, rb, ra = torch.autograd.grad(y_ref.square().sum(), ref_inputs, create_graph=True)
    assert_all_close((hm, hb, ha), torch.autograd.grad(rm.sum() + rb.sum() + ra.sum(), ref_inputs))


def test_jit_trace_emits_no_warning_from_relu_ext():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), relu_ext.ReLUSum(8), torch.nn.Linear(4, 1))
    x = torch.randn(5, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(model, x)
    ours_ = [w for w in caught if "relu_ext" in w.filename]
    assert not ours_, [str(w.message) for w in ours_]
    torch.testing.assert_close(traced(x), model(x))
