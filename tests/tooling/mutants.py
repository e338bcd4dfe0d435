"""Can every test fail? Each folder's tests, run against a deliberately broken
relu_ext: for each layer, a few mutants that make one public function return
slightly wrong numbers (a relative 1e-3 off, a gradient zeroed, breakpoints
shifted, standard errors scaled). A test that still passes under every mutant
of its folder is a survivor: either it checks something no mutant touches
(its error messages, its shapes, what runs in a subprocess), or it checks
nothing, and then it should be fixed or removed.

    python tests/tooling/mutants.py                  # every folder, a table of survivors
    python tests/tooling/mutants.py curve nn         # some folders
    python tests/tooling/mutants.py --list           # the mutants
    python tests/tooling/mutants.py ops -- -k relu_sum   # more pytest arguments after --

Each run is `pytest tests/<folder> -p mutants --mutant NAME` in a subprocess,
so a mutant lives only in that process: this module is a pytest plugin only
when named by -p, and a plain `pytest tests` never loads it. With
--mutant none the plugin patches nothing and only records the outcomes: the
baseline, against which a test counts as killed (it passes unmutated and
fails under a mutant).

The mutants patch Python, in the test process: what runs in a subprocess
(the command line run as a program, torchrun workers, the notebook's
kernel, the examples' scripts) or only in C++ is out of their reach, and
the tests that only check that are survivors by construction.
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent

# A relative error this small is far beyond rounding in float32 and float64,
# and within what a loose test of a 16-bit dtype allows.
REL = 1e-3


# -- patching ------------------------------------------------------------------------------------

def _relu_ext_modules():
    """relu_ext and its submodules, the optional front ends imported too (they
    bind the functions the mutants replace when they are imported)."""
    import importlib

    for name in ("relu_ext", "relu_ext.cli", "relu_ext.plot", "relu_ext.sklearn"):
        try:
            importlib.import_module(name)
        except ImportError:  # an optional dependency missing: its tests skip anyway
            pass
    return [m for name, m in sorted(sys.modules.items())
            if m is not None and (name == "relu_ext" or name.startswith("relu_ext."))]


def replace_everywhere(original, mutant):
    """Every module attribute of relu_ext bound to `original` rebound to
    `mutant`, as `from .x import f` bound it; the tests' own modules, imported
    after this, then import the mutant too."""
    count = 0
    for module in _relu_ext_modules():
        for name, value in list(vars(module).items()):
            if value is original:
                setattr(module, name, mutant)
                count += 1
    assert count, f"{original!r} is bound nowhere in relu_ext"


def _scaled(value, factor):
    """value, a tensor or a tuple/list of tensors (None kept), times factor."""
    import torch

    if isinstance(value, torch.Tensor):
        return value * factor if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_scaled(v, factor) for v in value)
    return value


def _zero_grad(t):
    """t's value, with a zero derivative: t.detach() + 0·t."""
    return t if t is None or not t.requires_grad else t.detach() + 0 * t


# -- the mutants, by folder ----------------------------------------------------------------------

def ops_relu_sum_value():
    """relu_ext.relu_sum's output (and so its gradients) a relative 1e-3 too large."""
    import relu_ext

    original = relu_ext.relu_sum

    @functools.wraps(original)
    def relu_sum(*args, **kwargs):
        return original(*args, **kwargs) * (1 + REL)

    replace_everywhere(original, relu_sum)


def ops_relu_sum_dm_zero():
    """relu_ext.relu_sum's gradient in m zero (its values exact)."""
    import relu_ext

    original = relu_ext.relu_sum

    @functools.wraps(original)
    def relu_sum(x, m, b, a=None, **kwargs):
        return original(x, _zero_grad(m), b, a, **kwargs)

    replace_everywhere(original, relu_sum)


def ops_relu_sum_linear_value():
    """relu_ext.relu_sum_linear's output (and so its gradients) a relative 1e-3 too large."""
    import relu_ext

    original = relu_ext.relu_sum_linear

    @functools.wraps(original)
    def relu_sum_linear(*args, **kwargs):
        return original(*args, **kwargs) * (1 + REL)

    replace_everywhere(original, relu_sum_linear)


def ops_relu_sum_linear_da_zero():
    """relu_ext.relu_sum_linear's gradient in a zero (its values exact)."""
    import relu_ext

    original = relu_ext.relu_sum_linear

    @functools.wraps(original)
    def relu_sum_linear(x, m, b, a, *args, **kwargs):
        return original(x, m, b, _zero_grad(a), *args, **kwargs)

    replace_everywhere(original, relu_sum_linear)


def ops_torch_ops_value():
    """torch.ops.relu_ext.{relu_sum, relu_sum_backward, step_sum, relu_sum_linear...}, called as
    the tests call them, a relative 1e-3 off (their .default overloads, which
    opcheck needs and relu_ext binds at import, left alone)."""
    import torch

    import relu_ext  # noqa: F401  (registers the ops)

    class Perturbed:
        def __init__(self, packet):
            self._packet = packet

        def __call__(self, *args, **kwargs):
            return _scaled(self._packet(*args, **kwargs), 1 + REL)

        def __getattr__(self, name):
            return getattr(self._packet, name)

    for name in ("relu_sum", "relu_sum_backward", "step_sum", "relu_sum_linear",
                 "relu_sum_linear_backward", "relu_sum_linear_breakpoints",
                 "relu_sum_linear_breakpoints_backward"):
        setattr(torch.ops.relu_ext, name, Perturbed(getattr(torch.ops.relu_ext, name)))


def nn_forward_value():
    """ReLUSum's output a relative 1e-3 too large."""
    from relu_ext.nn import ReLUSum

    original = ReLUSum.forward

    def forward(self, x):
        return original(self, x) * (1 + REL)

    ReLUSum.forward = forward


def nn_linear_forward_value():
    """ReLUSumLinear's output a relative 1e-3 too large."""
    from relu_ext.nn import ReLUSumLinear

    original = ReLUSumLinear.forward

    def forward(self, x):
        return original(self, x) * (1 + REL)

    ReLUSumLinear.forward = forward


def nn_forward_dm_zero():
    """ReLUSum's gradient in m zero (its output exact)."""
    import relu_ext.nn._module as module

    original = module.relu_sum

    @functools.wraps(original)
    def relu_sum(x, m, b, a=None, **kwargs):
        return original(x, _zero_grad(m), b, a, **kwargs)

    module.relu_sum = relu_sum


def nn_piecewise_shift():
    """to_piecewise's breakpoints shifted by 1e-3 of their spread (at least 1e-3)."""
    import torch

    from relu_ext.nn import _piecewise

    original = _piecewise.to_piecewise

    @functools.wraps(original)
    def to_piecewise(*args, **kwargs):
        found = original(*args, **kwargs)
        t = found.breakpoints
        finite = t[t.isfinite()]
        spread = (finite.max() - finite.min()).item() if finite.numel() else 0.0
        return found._replace(breakpoints=t + REL * max(spread, 1.0) * torch.ones_like(t))

    replace_everywhere(original, to_piecewise)


def train_fit_parameters():
    """fit's trained model nudged afterwards: every parameter a relative 1e-3 off."""
    import torch

    import relu_ext

    original = relu_ext.fit

    @functools.wraps(original)
    def fit(model, *args, **kwargs):
        history = original(model, *args, **kwargs)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + REL)
        return history

    replace_everywhere(original, fit)


def train_fit_history():
    """fit's History: every epoch's loss and the final loss a relative 1e-3 too large."""
    import relu_ext

    original = relu_ext.fit

    @functools.wraps(original)
    def fit(*args, **kwargs):
        history = original(*args, **kwargs)
        history.loss = [v * (1 + REL) for v in history.loss]
        if history.final_loss is not None:
            history.final_loss *= 1 + REL
        return history

    replace_everywhere(original, fit)


def train_fit_lr():
    """fit trains with a learning rate 3% too small."""
    import relu_ext

    original = relu_ext.fit

    @functools.wraps(original)
    def fit(*args, lr, **kwargs):
        return original(*args, lr=lr * 0.97, **kwargs)

    replace_everywhere(original, fit)


def _shifted_breakpoints(original):
    """fit_curve with its model's breakpoints -b/m shifted by 1e-3 of their
    spread (at least 1e-3): b - δ·m, the rest as fitted."""
    import torch

    @functools.wraps(original)
    def fit_curve(*args, **kwargs):
        model, history = original(*args, **kwargs)
        with torch.no_grad():
            t = model.breakpoints()
            finite = t[t.isfinite()]
            spread = (finite.max() - finite.min()).item() if finite.numel() else 0.0
            model.b.sub_(REL * max(spread, 1.0) * model.m)
        return model, history

    return fit_curve


def _scaled_errors(original):
    """curve_summary's per-curve statistics with every standard error a
    relative 1e-3 too large."""
    @functools.wraps(original)
    def fit_statistics(*args, **kwargs):
        found = original(*args, **kwargs)
        return {name: value * (1 + REL) if name.startswith("se_") else value
                for name, value in found.items()}

    return fit_statistics


def curve_fit_breakpoints():
    """fit_curve's model with its breakpoints -b/m shifted by 1e-3 of their
    spread (at least 1e-3): b - δ·m, the rest as fitted."""
    import relu_ext

    original = relu_ext.fit_curve
    replace_everywhere(original, _shifted_breakpoints(original))


def curve_summary_se():
    """curve_summary's standard errors a relative 1e-3 too large (and so the
    Wald intervals built on them)."""
    from relu_ext.curve import _summary

    _summary._fit_statistics = _scaled_errors(_summary._fit_statistics)


def curve_solvers():
    """The compiled solvers, as the tests call them: _C.constrained_lstsq's
    solution and HingeLeastSquares.solve's error, coefficients and gradient a
    relative 1e-3 off; _C.exact_round's sums too."""
    from relu_ext.ops import _C

    constrained = _C.constrained_lstsq

    def constrained_lstsq(*args, **kwargs):
        found = constrained(*args, **kwargs)
        return (found[0], *_scaled(tuple(found[1:]), 1 + REL))

    hinge = _C.HingeLeastSquares

    class HingeLeastSquares:
        def __init__(self, *args, **kwargs):
            self._solver = hinge(*args, **kwargs)

        def solve(self, *args, **kwargs):
            return _scaled(tuple(self._solver.solve(*args, **kwargs)), 1 + REL)

        def __getattr__(self, name):
            return getattr(self._solver, name)

    exact_round = _C.exact_round

    def perturbed_round(*args, **kwargs):
        return _scaled(exact_round(*args, **kwargs), 1 + REL)

    _C.constrained_lstsq = constrained_lstsq
    _C.HingeLeastSquares = HingeLeastSquares
    _C.exact_round = perturbed_round


# The front ends' tests compare what a front end gives with what the library
# gives (the estimator's fit with fit_curve's, the command line's summary
# with curve_summary's): a mutant of the library changes both sides alike.
# These break the front ends' own calls of the library instead.
FRONT_ENDS = ("relu_ext.cli", "relu_ext.sklearn")


def _in_front_ends(name, mutant_of):
    _in_front_ends_named(FRONT_ENDS, name, mutant_of)


def _in_front_ends_named(modules, name, mutant_of):
    import importlib

    for module in map(importlib.import_module, modules):
        setattr(module, name, mutant_of(getattr(module, name)))


def frontends_fit_curve():
    """fit_curve as the command line and the estimator call it: the
    breakpoints shifted as curve_fit_breakpoints shifts them."""
    _in_front_ends("fit_curve", _shifted_breakpoints)


def frontends_summary_se():
    """curve_summary as the command line and the estimator call it: its
    standard errors a relative 1e-3 too large."""
    from relu_ext.curve import _summary

    def scaled(original):
        @functools.wraps(original)
        def curve_summary(*args, **kwargs):
            exact = _summary._fit_statistics
            _summary._fit_statistics = _scaled_errors(exact)
            try:
                return original(*args, **kwargs)
            finally:
                _summary._fit_statistics = exact
        return curve_summary

    _in_front_ends("curve_summary", scaled)


def frontends_outputs():
    """What the front ends hand back: PiecewiseLinearRegressor.predict, the
    loss the command line prints after SGD, and the breakpoint lines
    plot_fit draws, a relative 1e-3 off."""
    import relu_ext.plot
    from relu_ext.sklearn import PiecewiseLinearRegressor

    shade = relu_ext.plot._shade_breakpoints

    def shade_breakpoints(ax, summary):
        drawn = len(ax.lines)
        shade(ax, summary)
        for line in ax.lines[drawn:]:
            line.set_xdata([v * (1 + REL) for v in line.get_xdata()])

    relu_ext.plot._shade_breakpoints = shade_breakpoints

    original = PiecewiseLinearRegressor.predict

    def predict(self, *args, **kwargs):
        return original(self, *args, **kwargs) * (1 + REL)

    PiecewiseLinearRegressor.predict = predict

    def reported(fit):
        @functools.wraps(fit)
        def cli_fit(*args, **kwargs):
            history = fit(*args, **kwargs)
            history.final_loss *= 1 + REL
            return history
        return cli_fit

    _in_front_ends_named(("relu_ext.cli",), "fit", reported)


MUTANTS = {
    "ops": [ops_relu_sum_value, ops_relu_sum_dm_zero, ops_relu_sum_linear_value,
            ops_relu_sum_linear_da_zero, ops_torch_ops_value],
    "nn": [nn_forward_value, nn_forward_dm_zero, nn_piecewise_shift, nn_linear_forward_value],
    "train": [train_fit_parameters, train_fit_history, train_fit_lr],
    "curve": [curve_fit_breakpoints, curve_summary_se, curve_solvers],
    "frontends": [frontends_fit_curve, frontends_summary_se, frontends_outputs],
    # The docs' examples print and assert numbers of the op and of fit_curve;
    # the rest of tooling checks the build, the package and its layering.
    "tooling": [ops_relu_sum_value, curve_fit_breakpoints],
}
BY_NAME = {f.__name__: f for mutants in MUTANTS.values() for f in mutants}


# -- the pytest plugin (active only under -p mutants) --------------------------------------------

def pytest_addoption(parser):
    group = parser.getgroup("mutants", "run against a broken relu_ext (tests/tooling/mutants.py)")
    group.addoption("--mutant", help="the mutant to apply, or none: " + ", ".join(BY_NAME))
    group.addoption("--mutant-report", help="write each test's outcome here, as JSON")


def pytest_configure(config):
    name = config.getoption("--mutant")
    if name is None:
        raise SystemExit("-p mutants needs --mutant NAME (or none)")
    if name != "none":
        BY_NAME[name]()  # before collection: the test modules import the mutant


_OUTCOMES = {}  # test id: passed, failed, error (setup or teardown failed) or skipped
_SECONDS = {}  # test id: seconds, setup, call and teardown


def pytest_runtest_logreport(report):
    _SECONDS[report.nodeid] = _SECONDS.get(report.nodeid, 0.0) + report.duration
    if _OUTCOMES.get(report.nodeid) in ("failed", "error"):
        return
    if report.failed:
        _OUTCOMES[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.skipped or report.when == "call":
        _OUTCOMES[report.nodeid] = report.outcome


def pytest_sessionfinish(session):
    path = session.config.getoption("--mutant-report")
    if path:
        Path(path).write_text(json.dumps(_OUTCOMES, indent=0, sort_keys=True))
        Path(path).with_suffix(".seconds.json").write_text(
            json.dumps({t: round(s, 3) for t, s in _SECONDS.items()}, indent=0, sort_keys=True))


# -- the runner ----------------------------------------------------------------------------------

def run(folder, mutant, out, pytest_args):
    """Outcomes {test id: passed/failed/skipped/error} of one folder under one mutant."""
    report = out / f"{folder}.{mutant}.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(TESTS / "tooling"), str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    command = [sys.executable, "-m", "pytest", str(TESTS / folder), "-p", "mutants",
               "--mutant", mutant, "--mutant-report", str(report), "-q", "--tb=no",
               "-p", "no:cacheprovider", "-m", "not cuda_emu",
               # (the harness's own tests, which an ordinary run alone can pass)
               "--ignore", str(TESTS / "tooling" / "test_mutants.py"), *pytest_args]
    start = time.monotonic()
    # From --out: `python -m pytest` puts its working directory first on sys.path,
    # where the root's relu_ext (uncompiled) would shadow the installed one.
    done = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True)
    if not report.exists():
        raise SystemExit(f"pytest wrote no report ({' '.join(command)}):\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")
    outcomes = json.loads(report.read_text())
    print(f"  {folder:10} {mutant:24} {sum(v == 'passed' for v in outcomes.values()):5} passed "
          f"{sum(v in ('failed', 'error') for v in outcomes.values()):5} failed "
          f"({time.monotonic() - start:.0f} s)", flush=True)
    return outcomes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", default=list(MUTANTS), help="tests/ folders")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--out", default=str(REPO / "build" / "mutants"),
                        help="where the outcomes go (JSON per folder and mutant)")
    parser.add_argument("--reuse-baseline", action="store_true",
                        help="reuse a baseline already in --out instead of running it again")
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1:]  # extra: pytest's
    if args.list:
        for folder, mutants in MUTANTS.items():
            for mutant in mutants:
                print(f"{folder:10} {mutant.__name__:24} {mutant.__doc__.splitlines()[0]}")
        return 0
    unknown = set(args.folders) - set(MUTANTS)
    if unknown:
        parser.error(f"no mutants for {sorted(unknown)}: choose from {list(MUTANTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    for folder in args.folders:
        baseline_file = out / f"{folder}.none.json"
        if args.reuse_baseline and baseline_file.exists():
            baseline = json.loads(baseline_file.read_text())
        else:
            baseline = run(folder, "none", out, extra)
        passing = {t for t, outcome in baseline.items() if outcome == "passed"}
        killed_by = {t: [] for t in passing}
        for mutant in MUTANTS[folder]:
            outcomes = run(folder, mutant.__name__, out, extra)
            for t in passing:
                if outcomes.get(t) in ("failed", "error"):
                    killed_by[t].append(mutant.__name__)
        survivors = sorted(t for t, killers in killed_by.items() if not killers)
        summary.append((folder, len(baseline), len(passing), len(passing) - len(survivors),
                        survivors))
        (out / f"{folder}.survivors.txt").write_text("".join(s + "\n" for s in survivors))
    print("\nfolder     tests  passing  killed  survivors")
    for folder, tests, passing, killed, survivors in summary:
        print(f"{folder:10} {tests:5} {passing:8} {killed:7} {len(survivors):10}")
    for folder, _, _, _, survivors in summary:
        if survivors:
            print(f"\n{folder}: passing under every mutant ({len(survivors)})")
            print("".join(f"  {s}\n" for s in survivors), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
