"""relu_ext.fit: the lesson's fit, schedules, reproducibility, divergence, checkpoints."""

import copy
import itertools
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import relu_ext
from relu_ext import ReLUSum, fit
from relu_ext.data import TARGETS, lesson_data, sample_target


def make_model(units=20, out_weights=True, seed=0, input_range=(-2.0, 2.0)):
    torch.manual_seed(seed)
    return ReLUSum(units, out_weights=out_weights, input_range=input_range)


def mae(model, x, y):
    with torch.no_grad():
        return F.l1_loss(model(x), y).item()


def best_line_mae(x, y):
    """The smallest mean absolute error of any straight line through the data.

    Some line with the least absolute error passes through two of the points
    (the L1 fit is a linear program whose optimum sits at a vertex), so trying
    every pair finds it exactly.
    """
    xs, ys = x.double().reshape(-1), y.double().reshape(-1)
    best = math.inf
    for i, j in itertools.combinations(range(len(xs)), 2):
        if xs[i] == xs[j]:
            continue
        slope = (ys[j] - ys[i]) / (xs[j] - xs[i])
        line = ys[i] + slope * (xs - xs[i])
        best = min(best, (line - ys).abs().mean().item())
    return best


def noise_level(target, x, y):
    """The MAE of the noiseless function itself on the noisy points."""
    return (target.fn(x) - y).abs().mean().item()


def test_lesson_fit_reaches_the_noise_level_and_beats_any_line():
    x, y = lesson_data()
    model = make_model(out_weights=False)  # the lesson's plain sum of ReLUs
    history = fit(model, x, y, epochs=1000, lr=0.1, schedule="cosine", seed=0, progress=False)

    noise = noise_level(TARGETS["quadratic"], x, y)
    line = best_line_mae(x, y)
    final = mae(model, x, y)
    assert history.final_loss == pytest.approx(final, rel=1e-6)
    assert final <= 1.1 * noise, (final, noise)
    assert final < 0.5 * line, (final, line)
    assert history.loss[-1] < history.loss[0] / 3


def test_non_convex_target_fits_with_output_weights_only():
    target = TARGETS["sin"]
    x, y = sample_target(target)
    with_weights = make_model(out_weights=True)
    fit(with_weights, x, y, epochs=1000, lr=0.1, schedule="cosine", seed=0, progress=False)
    without = make_model(out_weights=False)
    fit(without, x, y, epochs=1000, lr=0.1, schedule="cosine", seed=0, progress=False)

    noise = noise_level(target, x, y)
    assert mae(with_weights, x, y) <= 1.1 * noise
    grid = torch.linspace(-2, 2, 200)[:, None]
    assert mae(with_weights, grid, target.fn(grid)) < 0.3  # amplitude 2
    # A sum of ReLUs with every a_k = 1 is convex and cannot follow a peak and a trough.
    assert mae(without, x, y) > 3 * mae(with_weights, x, y)


def test_mse_loss_is_minimised():
    x, y = lesson_data()
    model = make_model(out_weights=False)
    history = fit(model, x, y, epochs=300, lr=0.01, loss="mse", seed=0, progress=False)
    with torch.no_grad():
        assert history.final_loss == pytest.approx(F.mse_loss(model(x), y).item(), rel=1e-6)
    assert history.final_loss < history.loss[0] / 5


def run_lrs(schedule, epochs=10, batch_size=None, lr=0.5):
    x, y = lesson_data()
    history = fit(make_model(units=3), x, y, epochs=epochs, lr=lr, batch_size=batch_size,
                  schedule=schedule, seed=0, progress=False)
    return history.lr


@pytest.mark.parametrize("schedule", [None, "none"])
def test_constant_schedule(schedule):
    assert run_lrs(schedule) == [0.5] * 10


@pytest.mark.parametrize("batch_size", [None, 5])
def test_cosine_schedule_spans_the_run(batch_size):
    epochs = 10
    steps = 1 if batch_size is None else 20 // batch_size
    lrs = run_lrs("cosine", epochs, batch_size)
    expected = [0.5 * (1 + math.cos(math.pi * e * steps / (epochs * steps))) / 2
                for e in range(epochs)]
    assert lrs == pytest.approx(expected, rel=1e-6)


def test_linear_schedule_decays_to_zero():
    lrs = run_lrs("linear", epochs=10)
    assert lrs == pytest.approx([0.5 * (1 - e / 10) for e in range(10)], rel=1e-6)


def test_onecycle_schedule_warms_up_then_anneals():
    lrs = run_lrs("onecycle", epochs=20)
    peak = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(0.5 / 25, rel=1e-6)
    assert max(lrs) == pytest.approx(0.5, rel=1e-6)
    assert peak == round(0.3 * 20) - 1
    assert lrs[:peak + 1] == sorted(lrs[:peak + 1])
    assert lrs[peak:] == sorted(lrs[peak:], reverse=True)
    assert lrs[-1] < 0.5 / 25


def test_onecycle_keeps_the_given_momentum(monkeypatch):
    optimizers = []

    class RecordingSGD(torch.optim.SGD):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            optimizers.append(self)

    monkeypatch.setattr(torch.optim, "SGD", RecordingSGD)
    x, y = lesson_data()
    fit(make_model(units=3), x, y, epochs=3, lr=0.1, momentum=0.3, schedule="onecycle",
        progress=False)
    # OneCycleLR's default cycle_momentum would have left 0.95 here.
    assert optimizers[0].param_groups[0]["momentum"] == 0.3


def test_callable_schedule():
    x, y = lesson_data()

    def halve_each_step(optimizer, total_steps):
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)

    history = fit(make_model(units=3), x, y, epochs=4, lr=0.8, schedule=halve_each_step,
                  progress=False)
    assert history.lr == [0.8, 0.4, 0.2, 0.1]


def test_unknown_schedule_and_loss_are_named():
    x, y = lesson_data()
    with pytest.raises(ValueError, match="schedule must be .* but got 'step'"):
        fit(make_model(), x, y, epochs=1, lr=0.1, schedule="step", progress=False)
    with pytest.raises(ValueError, match="loss must be .* but got 'huber'"):
        fit(make_model(), x, y, epochs=1, lr=0.1, loss="huber", progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs must be an int >= 1, but got 0"),
    ({"lr": -1.0}, "lr must be a positive finite number, but got -1.0"),
    ({"lr": math.nan}, "lr must be a positive finite number"),
    ({"batch_size": 0}, "batch_size must be an int >= 1, but got 0"),
    ({"momentum": 1.5}, r"momentum must be a number in \[0, 1\), but got 1.5"),
    ({"checkpoint_every": 0}, "checkpoint_every must be an int >= 1"),
])
def test_bad_arguments_are_named(kwargs, match):
    x, y = lesson_data()
    args = {"epochs": 2, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        fit(make_model(), x, y, progress=False, **args)


def test_bad_data_is_named():
    x, y = lesson_data()
    with pytest.raises(ValueError, match="same number of samples, but got 20 and 19"):
        fit(make_model(), x, y[:19], epochs=1, lr=0.1, progress=False)
    with pytest.raises(ValueError, match="at least one sample"):
        fit(make_model(), x[:0], y[:0], epochs=1, lr=0.1, progress=False)
    with pytest.raises(ValueError, match=r"output must have the shape of y's batch \(\[20\]\)"):
        fit(make_model(), x, y.reshape(-1), epochs=1, lr=0.1, progress=False)


def fit_copy(model, x, y, **kwargs):
    model = copy.deepcopy(model)
    history = fit(model, x, y, progress=False, **kwargs)
    return model, history


def test_same_seed_same_result_whatever_the_global_rng():
    x, y = lesson_data()
    start = make_model()
    settings = {"epochs": 30, "lr": 0.05, "batch_size": 6, "momentum": 0.9,
                "schedule": "onecycle", "seed": 7}
    first, h1 = fit_copy(start, x, y, **settings)
    torch.rand(1000)  # fit's shuffling must not depend on torch's global RNG
    second, h2 = fit_copy(start, x, y, **settings)
    for p, q in zip(first.parameters(), second.parameters()):
        assert torch.equal(p, q)
    assert h1.loss == h2.loss and h1.lr == h2.lr and h2.seed == 7

    other, _ = fit_copy(start, x, y, **{**settings, "seed": 8})
    assert not torch.equal(first.b, other.b)  # the seed does choose the batches


def test_seed_none_is_reported_and_repeats_the_run():
    x, y = lesson_data()
    start = make_model()
    first, h1 = fit_copy(start, x, y, epochs=5, lr=0.05, batch_size=4)
    second, _ = fit_copy(start, x, y, epochs=5, lr=0.05, batch_size=4, seed=h1.seed)
    assert isinstance(h1.seed, int)
    assert torch.equal(first.b, second.b)


class FailingLoss:
    """The MAE, except that call number ``fail_at`` (1-based) goes wrong."""

    def __init__(self, fail_at=None, error=None):
        self.calls = 0
        self.fail_at = fail_at
        self.error = error

    def __call__(self, prediction, target):
        self.calls += 1
        loss = F.l1_loss(prediction, target)
        if self.calls == self.fail_at:
            if self.error is not None:
                raise self.error
            return loss * math.nan
        return loss


def test_nan_loss_stops_and_keeps_the_last_finite_parameters():
    x, y = lesson_data()
    start = make_model()
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 4 of 10"):
        fit_copy(start, x, y, epochs=10, lr=0.1, loss=FailingLoss(fail_at=4))
    model = copy.deepcopy(start)
    with pytest.raises(FloatingPointError):
        fit(model, x, y, epochs=10, lr=0.1, loss=FailingLoss(fail_at=4), progress=False)
    # Epoch 3's loss was the last finite one: it was taken after two steps.
    expected, _ = fit_copy(start, x, y, epochs=2, lr=0.1)
    for p, q in zip(model.parameters(), expected.parameters()):
        assert torch.equal(p, q)


def test_divergence_stops_with_finite_parameters():
    x, y = lesson_data()
    model = make_model()
    with pytest.raises(FloatingPointError, match=r"loss became (inf|nan) at epoch \d+ of 1000"):
        fit(model, x, y, epochs=1000, lr=10.0, loss="mse", progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with torch.no_grad():
        assert math.isfinite(F.mse_loss(model(x), y).item())


RESUME_SETTINGS = {"epochs": 12, "lr": 0.05, "batch_size": 6, "momentum": 0.9,
                   "schedule": "onecycle", "seed": 3, "checkpoint_every": 4}


def test_resume_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    x, y = lesson_data()
    start = make_model()
    path = tmp_path / "run.pt"
    uninterrupted, full = fit_copy(start, x, y, loss=FailingLoss(), **RESUME_SETTINGS)

    # Crash in epoch 10 (4 steps per epoch): the checkpoint holds epoch 8.
    crash = FailingLoss(fail_at=9 * 4 + 2, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        fit_copy(start, x, y, loss=crash, checkpoint=path, **RESUME_SETTINGS)
    assert torch.load(path, weights_only=True)["epoch"] == 8
    assert os.listdir(tmp_path) == ["run.pt"]  # no temporary file left behind

    torch.rand(10)  # the global RNG moved on meanwhile
    resumed = make_model(seed=99)  # any initial parameters: the checkpoint replaces them
    history = fit(resumed, x, y, loss=FailingLoss(), checkpoint=path, resume=path,
                  progress=False, **RESUME_SETTINGS)
    for p, q in zip(resumed.parameters(), uninterrupted.parameters()):
        assert torch.equal(p, q)
    assert history.loss == full.loss and history.lr == full.lr
    assert torch.load(path, weights_only=True)["epoch"] == 12

    # Resuming a finished run trains no further.
    again = make_model(seed=5)
    done = fit(again, x, y, loss=FailingLoss(), resume=path, progress=False, **RESUME_SETTINGS)
    assert torch.equal(again.b, uninterrupted.b) and done.loss == full.loss


def test_resume_refuses_a_different_run(tmp_path):
    x, y = lesson_data()
    path = tmp_path / "run.pt"
    fit(make_model(), x, y, epochs=4, lr=0.05, seed=1, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match=r"different run; differing: lr=0.1 \(checkpoint: 0.05\)"):
        fit(make_model(), x, y, epochs=4, lr=0.1, seed=1, resume=path, progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a fit\\(\\) checkpoint"):
        fit(make_model(), x, y, epochs=4, lr=0.05, resume=tmp_path / "junk.pt", progress=False)


def test_failed_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    x, y = lesson_data()
    path = tmp_path / "run.pt"
    fit(make_model(), x, y, epochs=2, lr=0.05, seed=1, checkpoint=path, progress=False)
    before = path.read_bytes()

    def torn_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(relu_ext.train._fit.torch, "save", torn_save)
    with pytest.raises(OSError, match="No space left"):
        fit(make_model(), x, y, epochs=2, lr=0.05, seed=1, checkpoint=path, progress=False)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.pt"]


def test_progress_bar_only_on_a_terminal(capsys, monkeypatch):
    x, y = lesson_data()
    fit(make_model(), x, y, epochs=3, lr=0.05, progress=True)
    assert capsys.readouterr().err == ""  # captured stderr is not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    fit(make_model(), x, y, epochs=3, lr=0.05, progress=True)
    assert "3/3" in capsys.readouterr().err
    fit(make_model(), x, y, epochs=3, lr=0.05, progress=False)
    assert capsys.readouterr().err == ""


def test_import_does_not_load_matplotlib(tmp_path):
    code = "import sys, relu_ext; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_every_optimizer_reduces_the_loss(optimizer):
    x = torch.linspace(-2, 2, 50)[:, None]
    y = torch.sin(2 * x)
    model = make_model(units=8)
    before = F.mse_loss(model(x), y).item()
    lr = {"sgd": 0.1, "adam": 0.02, "lbfgs": 1.0}[optimizer]
    history = fit(model, x, y, epochs=20, lr=lr, loss="mse", optimizer=optimizer, seed=0,
                  progress=False)
    assert history.final_loss < 0.5 * before


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_full_batch_run_is_the_named_optimizers_own_loop(optimizer):
    # Reducing the loss shows that some optimizer ran; this, that it is the one
    # named, at the lr given, one step an epoch on the whole data, and that the
    # history reports that run's losses.
    x = torch.linspace(-2, 2, 50)[:, None]
    y = torch.sin(2 * x)
    lr = {"sgd": 0.1, "adam": 0.02}[optimizer]
    model = make_model(units=8)
    by_hand = copy.deepcopy(model)
    history = fit(model, x, y, epochs=20, lr=lr, loss="mse", optimizer=optimizer, seed=0,
                  progress=False)
    step = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer](by_hand.parameters(),
                                                                          lr=lr)
    losses = []
    for _ in range(20):
        loss = F.mse_loss(by_hand(x), y)
        losses.append(loss.item())
        step.zero_grad()
        loss.backward()
        step.step()
    for p, q in zip(model.parameters(), by_hand.parameters()):
        assert torch.equal(p, q)
    assert history.loss == losses and history.lr == [lr] * 20
    assert history.final_loss == F.mse_loss(by_hand(x), y).item()


def test_lbfgs_beats_sgd_on_the_same_budget_of_epochs():
    x = torch.linspace(-2, 2, 200)[:, None]
    y = torch.tanh(3 * x)
    results = {}
    for optimizer, lr in (("sgd", 0.1), ("lbfgs", 1.0)):
        results[optimizer] = fit(make_model(units=10), x, y, epochs=30, lr=lr, loss="mse",
                                 optimizer=optimizer, seed=0, progress=False).final_loss
    assert results["lbfgs"] < results["sgd"]


def test_optimizer_factory_is_called_with_params_and_lr():
    made = []

    def factory(params, lr):
        made.append(lr)
        return torch.optim.RMSprop(params, lr=lr)

    x = torch.linspace(-2, 2, 30)[:, None]
    fit(make_model(units=4), x, x.abs(), epochs=3, lr=0.01, optimizer=factory, seed=0,
        progress=False)
    assert made == [0.01]


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "rmsprop"}, "optimizer must be one of 'sgd', 'adam', 'lbfgs' or a callable, "
                               "but got 'rmsprop'"),
    ({"optimizer": "adam", "momentum": 0.9}, "momentum applies to optimizer='sgd'"),
])
def test_bad_optimizer_is_named(kwargs, message):
    x = torch.linspace(-2, 2, 10)[:, None]
    with pytest.raises(ValueError, match=message):
        fit(make_model(units=2), x, x, epochs=1, lr=0.1, progress=False, **kwargs)
