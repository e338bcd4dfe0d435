"""The ``relu-ext`` command line (also ``python -m relu_ext``).

    relu-ext fit     fit a sum of ReLUs to the lesson's noisy quadratic, a
                     built-in target or a CSV file; print the loss, write a plot
    relu-ext info    how this copy of relu_ext was built

Bad input (a missing or malformed file, a device this build cannot use, an
unknown option) ends with exit status 2 and one line on stderr.

Under ``torchrun --nproc-per-node=W -m relu_ext fit ...`` every rank runs the
same command; fit() trains them together, and rank 0 alone prints and writes
files.
"""

import argparse
import math
import os
import sys

import torch

from .curve import CRITERIA, LEAST, curve_summary, fit_curve
from .data import TARGETS, DataError, load_csv, sample_target
from .nn import ReLUSum
from .ops import build_info
from .plot import save_fit_plot  # loads matplotlib only when it draws
from .train import LOSSES, SCHEDULES, fit
from .train.distributed import data_parallel, is_main_process, local_device

EXIT_USAGE = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT


class UsageError(Exception):
    """A command-line value that cannot be used; reported in one line."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage block before its error; one line is easier
    # to read and to test, and --help still has the details.
    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(prog="relu-ext", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{fit,info}",
                                     parser_class=_Parser)

    fit = commands.add_parser(
        "fit", help="fit a sum of ReLUs and plot it",
        description="Fit y = Σ a_k·relu(m_k·x + b_k) + c with relu_ext.fit_curve (exact least "
                    "squares for the output weights, L-BFGS on the breakpoints), or with "
                    "--method sgd by the lesson's gradient descent. With no arguments: the "
                    "lesson's 20 noisy points of 3x² + 2x + 1 on [-2, 2], fitted on the mean "
                    "absolute error, plotted to fit.png.")
    fit.add_argument("--method", choices=METHODS, default="curve",
                     help="curve: relu_ext.fit_curve, --epochs its L-BFGS iterations per run "
                          "(--lr, --batch-size, --schedule, --momentum and --checkpoint are "
                          "SGD's and ignored, with a note); sgd: the lesson's gradient descent "
                          "with all options (default: curve)")
    source = fit.add_mutually_exclusive_group()
    source.add_argument("--target", choices=sorted(TARGETS), default="quadratic",
                        help="a built-in function to sample with noise (default: quadratic)")
    source.add_argument("--data", metavar="FILE.csv",
                        help="fit two numeric columns x,y from a CSV file (header optional)")
    fit.add_argument("--points", type=int, default=None,
                     help="samples of --target (default: 20, as in the lesson)")
    fit.add_argument("--units", type=_units, default=None, metavar="{K,auto}",
                     help="rectified lines K (default: 20, or one more than --breakpoints); "
                          "auto: fit_curve chooses K from the data (--max-units, --select)")
    fit.add_argument("--out-weights", action=argparse.BooleanOptionalAction, default=None,
                     help="learn output weights a_k; default: off for the convex quadratic "
                          "(the lesson's plain sum), on otherwise")
    fit.add_argument("--epochs", type=int, default=1000, help="default: 1000")
    fit.add_argument("--lr", type=float, default=0.1,
                     help="learning rate, the peak of a schedule (default: 0.1)")
    fit.add_argument("--batch-size", type=int, default=None,
                     help="mini-batch size, reshuffled every epoch (default: the full batch)")
    fit.add_argument("--loss", choices=sorted(LOSSES), default="mae", help="default: mae")
    fit.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                     help="learning-rate schedule (default: cosine)")
    fit.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default: 0)")
    fit.add_argument("--seed", type=int, default=42,
                     help="seeds the noise, the initial parameters and the shuffling "
                          "(default: 42)")
    fit.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    fit.add_argument("--out", default="fit.png", metavar="FILE.png",
                     help="where to write the plot (default: fit.png)")
    fit.add_argument("--save", metavar="MODEL.pt",
                     help="save the fitted model: a dict of units, out_weights, bias (fit_curve), "
                          "input_range (sgd) and state_dict")
    fit.add_argument("--checkpoint", metavar="FILE.pt",
                     help="write a training checkpoint here every --checkpoint-every epochs")
    fit.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                     help="default: about ten checkpoints per run")
    fit.add_argument("--resume", action="store_true",
                     help="continue the run saved in --checkpoint (same options)")
    shape = fit.add_argument_group("fit_curve's options (--method curve)")
    shape.add_argument("--weights-column", metavar="COLUMN",
                       help="weight each point by this column of --data (a header name, or a "
                            "column number counted from 1): weighted least squares")
    shape.add_argument("--breakpoints", metavar="T1,T2,...", type=_numbers,
                       help="fixed breakpoints, increasing: only the slopes and intercepts are "
                            "fitted")
    shape.add_argument("--monotone", nargs="?", const="increasing",
                       choices=("increasing", "decreasing"),
                       help="a non-decreasing fit (or non-increasing: --monotone decreasing)")
    curvature = shape.add_mutually_exclusive_group()
    curvature.add_argument("--convex", action="store_const", const=True, dest="convex",
                           help="a convex fit")
    curvature.add_argument("--concave", action="store_const", const=False, dest="convex",
                           help="a concave fit")
    shape.add_argument("--max-units", type=int, default=None, metavar="N",
                       help="with --units auto: try K = 1 to N (default: 20)")
    shape.add_argument("--select", choices=CRITERIA, default=None,
                       help="with --units auto: choose K by the Bayesian information criterion "
                            "(bic) or by cross-validation with the one-standard-error rule "
                            "(cv) (default: bic)")
    shape.add_argument("--folds", type=int, default=None, metavar="N",
                       help="with --select cv: the folds of the cross-validation (default: 5)")
    shape.add_argument("--summary", action="store_true",
                       help="print relu_ext.curve_summary of the fit: standard errors, "
                            "breakpoint intervals, AIC, BIC (needs --loss mse; with "
                            "--breakpoints they are treated as known); the plot shades the "
                            "intervals")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(run=run_fit)

    info = commands.add_parser("info", help="how this relu_ext was built",
                               description="Print relu_ext.build_info().")
    info.set_defaults(run=run_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, DataError) as e:
        _say(f"relu-ext {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # an output path that cannot be written, say
        where = f"{e.filename}: " if e.filename else ""
        print(f"relu-ext {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except FloatingPointError as e:  # every rank stops at the same step
        _say(f"relu-ext {args.command}: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        hint = "; --resume continues from the last checkpoint" if getattr(
            args, "checkpoint", None) else ""
        print(f"relu-ext {args.command}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _say(*args, **kwargs):
    """print(), once: under torchrun every rank runs the command, rank 0 speaks."""
    if is_main_process():
        print(*args, **kwargs)


def run_info(args):
    for key, value in build_info().items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or "none"
        elif isinstance(value, str) and "\n" in value:
            value = "\n  " + value.strip().replace("\n", "\n  ")
        print(f"{key}: {value}")
    return 0


def run_fit(args):
    _check_options(args)
    device = local_device(_device(args.device))
    torch.manual_seed(args.seed)
    weights = None
    if args.data is not None:
        x, y, *weights = load_csv(args.data, weights_column=args.weights_column)
        weights = weights[0].reshape(-1) if weights else None
        target = None
    else:
        target = TARGETS[args.target]
        x, y = sample_target(target, points=args.points or 20, seed=args.seed)
    x, y = x.to(device), y.to(device)
    if args.method == "curve":
        return _run_fit_curve(args, x, y, weights, target)

    out_weights = args.out_weights
    if out_weights is None:
        out_weights = not (target is not None and target.convex)
    low, high = x.min().item(), x.max().item()
    if low == high:
        low, high = low - 1.0, high + 1.0
    model = ReLUSum(args.units, out_weights=out_weights, input_range=(low, high), device=device)

    try:
        history = fit(
            model, x, y, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
            loss=args.loss, momentum=args.momentum, schedule=args.schedule, seed=args.seed,
            progress=not args.quiet, checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.checkpoint if args.resume else None)
    except ValueError as e:  # a checkpoint from another run; the options are checked above
        raise UsageError(str(e).removeprefix("fit(): ")) from None
    if not is_main_process():
        return 0  # rank 0 reports and writes the files
    print(f"final {args.loss} loss: {history.final_loss:.6g} after {history.epochs} epochs "
          f"({len(x)} points, {args.units} units, output weights "
          f"{'on' if out_weights else 'off'})")
    return _report(args, model, x, y, history, target, summary=None,
                   saved={"units": args.units, "out_weights": out_weights,
                          "input_range": (low, high)})


METHODS = ("curve", "sgd")
# The options only gradient descent uses, and their defaults: given with
# --method curve they are reported as unused rather than silently dropped.
_SGD_ONLY = {"--lr": ("lr", 0.1), "--batch-size": ("batch_size", None),
             "--schedule": ("schedule", "cosine"), "--momentum": ("momentum", 0.0),
             "--checkpoint": ("checkpoint", None),
             "--checkpoint-every": ("checkpoint_every", None), "--resume": ("resume", False)}


def _run_fit_curve(args, x, y, weights, target):
    if args.out_weights is False:
        raise UsageError("--no-out-weights: fit_curve fits with output weights; the lesson's "
                         "plain sum needs --method sgd")
    _say("method: fit_curve (least squares for the output weights, L-BFGS on the breakpoints; "
         "--method sgd runs the lesson's gradient descent)")
    unused = [option for option, (name, default) in _SGD_ONLY.items()
              if getattr(args, name) != default]
    if unused:
        _say(f"note: not used by fit_curve (options of --method sgd): {', '.join(unused)}")
    try:
        # Under torchrun each rank fits its share of the points, the sums over
        # points all-reduced: every rank ends with the same model. fit_curve
        # computes on the CPU, so the group is gloo's whatever --device says.
        with data_parallel(torch.device("cpu")) as group:
            mine = group.share(len(x))
            model, history = fit_curve(
                x[mine].reshape(-1), y[mine].reshape(-1), args.units,
                weights=None if weights is None else weights[mine].reshape(-1),
                breakpoints=args.breakpoints,
                monotone={None: None, "increasing": 1, "decreasing": -1}[args.monotone],
                convex=args.convex, loss=args.loss, seed=args.seed, max_iter=args.epochs,
                **_selection(args))
    except ValueError as e:
        raise UsageError(str(e).removeprefix("fit_curve(): ")) from None
    if not is_main_process():
        return 0  # rank 0 reports and writes the files
    print(f"final {args.loss} loss: {history.final_loss:.6g} from fit_curve ({len(x)} points, "
          f"{model.units} units, output weights on)")
    if args.units == "auto":
        criterion = "cross-validation" if args.select == "cv" else "BIC"
        print(f"units chosen by {criterion}: {history.units} of K = 1 to {len(history.scores)}")
    summary = _summary(args, model, x, y, weights) if args.summary else None
    return _report(args, model, x, y, history, target, summary=summary,
                   saved={"units": model.units, "out_weights": True, "bias": True})


def _selection(args):
    """fit_curve's options for units="auto" that were given (fit_curve's defaults otherwise)."""
    given = {"max_units": args.max_units, "select": args.select, "folds": args.folds}
    return {name: value for name, value in given.items() if value is not None}


def _summary(args, model, x, y, weights):
    """curve_summary of the fit on all the points (rank 0 has them all), printed."""
    try:
        summary = curve_summary(model, x.reshape(-1), y.reshape(-1), weights=weights,
                                fixed_breakpoints=args.breakpoints is not None)
    except ValueError as e:  # too few points for the parameters, say
        raise UsageError(f"--summary: {str(e).removeprefix('curve_summary(): ')}") from None
    print(summary)
    return summary


def _report(args, model, x, y, history, target, summary, saved):
    """What both methods print and write after the fit (rank 0 only): the
    true function's loss, the saved model (``saved`` plus its state_dict), the
    plot (with the breakpoints' intervals when there is a ``summary``)."""
    if target is not None:
        # The yardstick: below this, the fit follows the noise rather than the function.
        true_loss = LOSSES[args.loss](target.fn(x), y).item()
        print(f"the true {target.formula} scores {true_loss:.6g} on the same noisy points")
    if args.save:
        torch.save({**saved, "state_dict": model.state_dict()}, args.save)
        print(f"model saved to {args.save}")
    if target is None:
        known = {"title": os.path.basename(args.data)}
    else:
        known = {"title": f"{target.formula} with noise", "true_fn": target.fn,
                 "true_label": target.formula}
    save_fit_plot(args.out, model, x, y, history=history, summary=summary, **known)
    print(f"plot written to {args.out}")
    return 0


def _units(text):
    """--units: a number of units, or "auto" for fit_curve to choose it."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, but got "
                                         f"{text!r}") from None


def _numbers(text):
    """A comma-separated list of numbers, for argparse."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, but got "
                                         f"{text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


# fit_curve's own options: given with --method sgd they are an error, not ignored.
_CURVE_ONLY = {"--weights-column": "weights_column", "--breakpoints": "breakpoints",
               "--monotone": "monotone", "--convex/--concave": "convex"}
# The options of choosing the number of units: given without --units auto they are an error.
_AUTO_ONLY = {"--max-units": "max_units", "--select": "select", "--folds": "folds"}


def _check_options(args):
    if args.units is None:
        args.units = len(args.breakpoints) + 1 if args.breakpoints else 20
    elif args.units == "auto" and args.breakpoints:
        raise UsageError(f"--units auto: --breakpoints fix the units at one more than their "
                         f"count ({len(args.breakpoints) + 1}); give one or the other")
    elif args.breakpoints and args.units != len(args.breakpoints) + 1:
        raise UsageError(f"--units {args.units} needs {args.units - 1} breakpoints, but "
                         f"--breakpoints has {len(args.breakpoints)} (leave --units out)")
    if args.method == "sgd":
        given = [option for option, name in _CURVE_ONLY.items()
                 if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: options of --method curve (fit_curve), not "
                             f"of the lesson's gradient descent")
        if args.units == "auto":
            raise UsageError("--units auto: choosing the number of units is fit_curve's "
                             "(--method curve); --method sgd trains a given number, such as "
                             "--units 20")
        if args.summary:
            raise UsageError("--summary: curve_summary needs a curve with an intercept (a "
                             "ReLUSum with a bias), and --method sgd trains the lesson's sum "
                             "without one; use --method curve")
    _check_selection(args)
    if args.summary and args.loss != "mse":
        raise UsageError(f"--summary: curve_summary's standard errors and intervals are least "
                         f"squares', so the fit must be too: add --loss mse (got --loss "
                         f"{args.loss})")
    if args.weights_column is not None and args.data is None:
        raise UsageError("--weights-column applies to --data FILE.csv")
    # fit_curve's counts by its own table of least values; the trainer's must be positive.
    least = {"--units": (None if args.units == "auto" else args.units, LEAST["units"]),
             "--max-units": (args.max_units, LEAST["max_units"]), "--epochs": (args.epochs, 1),
             "--points": (args.points, 1), "--batch-size": (args.batch_size, 1),
             "--checkpoint-every": (args.checkpoint_every, 1)}
    for option, (value, smallest) in least.items():
        if value is not None and value < smallest:
            raise UsageError(f"{option} must be at least {smallest}, but got {value}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, but got {args.lr}")
    if not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), but got {args.momentum}")
    if args.points is not None and args.data is not None:
        raise UsageError("--points applies to --target; --data fits every row of the file")
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint FILE to resume from")
    # Before training, rather than failing when the result is to be written.
    for option, path in (("--out", args.out), ("--save", args.save),
                         ("--checkpoint", args.checkpoint)):
        directory = os.path.dirname(path) if path else ""
        if directory and not os.path.isdir(directory):
            raise UsageError(f"{option} {path}: directory {directory} does not exist")
    if args.resume and not os.path.isfile(args.checkpoint):
        raise UsageError(f"--resume: no checkpoint at {args.checkpoint}")


def _check_selection(args):
    """--max-units, --select and --folds: only with --units auto, --folds only with --select cv."""
    given = [option for option, name in _AUTO_ONLY.items() if getattr(args, name) is not None]
    if args.units != "auto" and given:
        raise UsageError(f"{', '.join(given)}: for --units auto (choosing the number of "
                         f"units), but --units is {args.units}")
    if args.folds is not None and args.select != "cv":
        raise UsageError(f"--folds: for --select cv (cross-validation), but got --select "
                         f"{args.select or 'bic (the default)'}")
    if args.folds is not None and args.folds < LEAST["folds"]:
        raise UsageError(f"--folds must be at least {LEAST['folds']}, but got {args.folds}")


def _device(spec):

    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device: {spec!r} is not a device; expected cpu or cuda[:N]") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UsageError(f"--device {spec}: relu_ext has kernels for cpu and cuda only")
    if "cuda" not in build_info()["backends"]:
        raise UsageError(
            f"--device {spec}: this build of relu_ext has no CUDA kernels; rebuild it with a "
            f"CUDA-enabled torch and nvcc: RELU_EXT_CUDA=1 pip install --no-build-isolation "
            f"--force-reinstall ."
        )
    if not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: no CUDA GPU is visible to torch")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(
            f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    return device
