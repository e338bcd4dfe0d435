"""What is benchmarked: the implementations of relu_sum, the phases of work
each one is timed on, and the setup of one case (implementation × phase × N × K).

Adding an implementation is one entry in IMPLEMENTATIONS. The first entry is
the one the others are compared against.
"""

import copy
import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import relu_ext
from relu_ext import reference


class FunctionalReLUSum(nn.Module):
    """ReLUSum's parameters with the forward computed by any relu_sum
    implementation: the training step of the reference implementations."""

    def __init__(self, relu_sum, like):
        super().__init__()
        self.relu_sum = relu_sum
        self.m = nn.Parameter(like.m.detach().clone())
        self.b = nn.Parameter(like.b.detach().clone())
        self.a = nn.Parameter(like.a.detach().clone())

    def forward(self, x):
        return self.relu_sum(x, self.m, self.b, self.a)


@dataclass(frozen=True)
class Implementation:
    name: str
    label: str
    # Returns the relu_sum(x, m, b, a) to benchmark. Called once per case, so
    # that whatever it caches (compiled graphs) belongs to that case alone.
    make: Callable[[], Callable]
    # N×K-sized tensors alive at once at the peak of each phase: a
    # deliberately high estimate, used only to skip cases that would not fit
    # in memory. O(N + K) memory is not counted.
    nk_tensors_at_peak: dict
    # The module of the training step, given the relu_sum and a freshly
    # initialised relu_ext.ReLUSum; by default its parameters around relu_sum.
    make_model: Callable[[Callable, nn.Module], nn.Module] = FunctionalReLUSum


def _relu_ext(name, algorithm):
    """relu_ext with one algorithm pinned: by default it picks by size
    ("auto"), and each implementation here must be that algorithm's figures."""

    def with_algorithm(relu_sum, model):
        model.algorithm = algorithm
        return model

    return Implementation(
        name=name,
        label=f"relu_ext ({name})",
        make=lambda: functools.partial(relu_ext.relu_sum, algorithm=algorithm),
        # Neither holds anything N×K-sized.
        nk_tensors_at_peak={"forward": 0, "forward_backward": 0, "train_step": 0},
        make_model=with_algorithm,
    )


def _compiled_reference():
    # One graph specialised to this case's shapes (what a training loop with
    # fixed shapes gets). Graphs accumulate on reference.relu_sum's code
    # object: whoever makes many cases resets dynamo between sizes (run.py),
    # or past its recompile limit dynamo would silently fall back to eager.
    return torch.compile(reference.relu_sum, dynamic=False)


IMPLEMENTATIONS = {
    impl.name: impl
    for impl in (
        _relu_ext("fused", "dense"),
        _relu_ext("breakpoints", "breakpoints"),
        Implementation(
            name="eager",
            label="reference, eager",
            make=lambda: reference.relu_sum,
            # forward: x·m and +b (and each later pair) coexist; backward: the
            # saved relu output and two gradient-sized temporaries (3 measured
            # at N = 2^18, K = 1024), plus one for safety.
            nk_tensors_at_peak={"forward": 2, "forward_backward": 4, "train_step": 4},
        ),
        Implementation(
            name="compiled",
            label="reference, torch.compile",
            make=_compiled_reference,
            # Inductor fuses the forward into one reduction; its backward
            # reduces over both N (dm, db, da) and K (dx) and holds one N×K
            # tensor (measured at N = 2^18, K = 1024), plus one for safety.
            nk_tensors_at_peak={"forward": 1, "forward_backward": 2, "train_step": 2},
        ),
    )
}

BASELINE = next(iter(IMPLEMENTATIONS))

PHASES = ("forward", "forward_backward", "train_step")

PHASE_LABELS = {
    "forward": "forward",
    "forward_backward": "forward + backward",
    "train_step": "SGD training step",
}

# Floating-point operations per (input, unit) pair, counting a multiply and an
# add as one each (an FMA as two) and max/compare/select as none, as the fused
# kernels (csrc/relu_sum_math.h) do them:
#   forward   m·x+b (FMA), y += a·h (FMA)                                 4
#   backward  m·x+b (FMA), g·a, dx += t·m (FMA), dm += t·x (FMA), db += t,
#             da += g·h (FMA)                                             10
# The training step needs no dx (x is data, not a parameter): 4 + 8. Its
# O(N + K) loss and optimizer work is not counted.
FLOPS_PER_PAIR = {"forward": 4, "forward_backward": 14, "train_step": 12}


def predicted_peak_bytes(impl, phase, n, k, dtype):
    itemsize = torch.empty((), dtype=dtype).element_size()
    return IMPLEMENTATIONS[impl].nk_tensors_at_peak[phase] * n * k * itemsize


@dataclass
class Case:
    impl: str
    phase: str
    n: int
    k: int
    # Runs the case once. Holds the inputs, so they stay allocated (part of
    # the memory baseline) for as long as the case does.
    step: Callable[[], None]


def make_case(impl, phase, n, k, device, dtype, seed=0):
    """Inputs and the step of one case: x ~ N(0, 2²) and the units of a
    freshly initialised ReLUSum, whose breakpoints lie in (-3, 3), so that
    about half of the (input, unit) pairs are active, as when fitting data."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {impl!r}; known: {', '.join(IMPLEMENTATIONS)}")
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; known: {', '.join(PHASES)}")
    torch.manual_seed(seed)
    factory = {"device": device, "dtype": dtype}
    x = 2 * torch.randn(n, **factory)
    seed_module = relu_ext.ReLUSum(k, **factory)
    implementation = IMPLEMENTATIONS[impl]
    relu_sum = implementation.make()

    if phase == "forward":
        m, b, a = (p.detach() for p in (seed_module.m, seed_module.b, seed_module.a))

        def step():
            with torch.no_grad():
                relu_sum(x, m, b, a)

    elif phase == "forward_backward":
        inputs = [t.detach().clone().requires_grad_() for t in (x, seed_module.m, seed_module.b, seed_module.a)]
        grad = torch.randn(n, **factory)

        def step():
            torch.autograd.grad(relu_sum(*inputs), inputs, grad)

    else:
        target = torch.randn(n, **factory)
        model = implementation.make_model(relu_sum, copy.deepcopy(seed_module))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.mse_loss(model(x), target).backward()
            optimizer.step()

    return Case(impl, phase, n, k, step)


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)

