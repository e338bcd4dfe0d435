"""fit() and `relu-ext fit` under torchrun: two gloo ranks on this CPU train
exactly as one process would (to float32 rounding), each on its share of every
batch, and rank 0 alone writes. Each torchrun launch costs seconds, so one
launch serves several tests where it can."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import relu_ext

from relu_ext.cli import main as cli_main

WORKER = Path(__file__).parent / "fit_worker.py"
RANKS = 2

# The ranks' gradient sums are split and added in another order than one
# process's: equal to float32 rounding, amplified a little by training.
RTOL, ATOL = 1e-4, 1e-5

# 50 samples in batches of 7: uneven shares (3 and 4), and a last batch of one
# sample, which leaves rank 0 with nothing to compute.
MINIBATCH = {"points": 50, "units": 8, "epochs": 6, "lr": 0.05, "batch_size": 7,
             "momentum": 0.9, "schedule": "cosine", "seed": 3}


def _load_worker():
    spec = importlib.util.spec_from_file_location("fit_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker = _load_worker()


def torchrun(args, cwd, *options):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={RANKS}", *options, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout}\n{result.stderr}"
    return result


def run_ranks(tmp_path, settings, *options):
    """Every rank's result of fit_worker.run(settings)."""
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    torchrun([WORKER, tmp_path / "settings.json", tmp_path], tmp_path, *options)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(RANKS)]


def one_process(settings):
    return worker.run(dict(settings, checkpoint=False, resume=None, user_group=False))


def assert_same_run(ranks, single):
    for result in ranks:
        assert result["loss"] == pytest.approx(single["loss"], rel=RTOL)
        assert result["lr"] == pytest.approx(single["lr"], rel=1e-12)
        assert result["final_loss"] == pytest.approx(single["final_loss"], rel=RTOL)
        for name, p in single["params"].items():
            torch.testing.assert_close(result["params"][name], p, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def minibatch(tmp_path_factory):
    """One torchrun launch: a mini-batch fit with checkpoints, then in the same
    processes a second fit that diverges."""
    out = tmp_path_factory.mktemp("minibatch")
    settings = dict(MINIBATCH, checkpoint=True, checkpoint_every=2, diverge_after=True)
    return out, run_ranks(out, settings)


def test_two_ranks_train_as_one_process(minibatch):
    _, ranks = minibatch
    assert_same_run(ranks, one_process(MINIBATCH))


def test_a_network_of_relu_sum_linear_layers_trains_as_one_process(tmp_path):
    settings = dict(MINIBATCH, layers=True)
    ranks = run_ranks(tmp_path, settings)
    single = one_process(settings)
    assert_same_run(ranks, single)
    assert single["final_loss"] < single["loss"][0]


def test_every_rank_ends_with_the_same_parameters_and_history(minibatch):
    _, (first, second) = minibatch
    for name, p in first["params"].items():
        assert torch.equal(second["params"][name], p), name
    assert first["loss"] == second["loss"] and first["lr"] == second["lr"]
    assert first["final_loss"] == second["final_loss"]


def test_each_rank_trains_on_its_share_of_every_batch(minibatch):
    _, ranks = minibatch
    x, _ = worker.make_data(MINIBATCH["points"])
    batch = MINIBATCH["batch_size"]
    # The one-process order, derived here independently of fit(): the seed's
    # permutations, cut into batches, each cut into contiguous shares.
    g = torch.Generator().manual_seed(MINIBATCH["seed"])
    expected = [[] for _ in range(RANKS)]
    for _ in range(MINIBATCH["epochs"]):
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            for r in range(RANKS):
                expected[r].append(x[idx[len(idx) * r // RANKS:len(idx) * (r + 1) // RANKS]])
    for r, result in enumerate(ranks):
        assert len(result["seen"]) == len(expected[r])
        for seen, want in zip(result["seen"], expected[r]):
            assert torch.equal(seen, want)
    sizes = {len(s) for result in ranks for s in result["seen"]}
    assert sizes == {0, 1, 3, 4}  # uneven shares, and an empty one


def test_only_rank_0_writes_checkpoints_and_the_group_is_torn_down(minibatch):
    out, (first, second) = minibatch
    assert first["saves"] == [2, 4, 6] and second["saves"] == []
    assert torch.load(out / "run.pt", weights_only=True)["epoch"] == 6
    assert not list(out.glob("*.tmp"))
    assert first["group_after_fit"] is False and second["group_after_fit"] is False


def test_nan_stops_every_rank_at_the_same_step(minibatch):
    _, (first, second) = minibatch
    assert re.match(r"fit\(\): the loss became (inf|nan) at epoch 1 of 3 \(step \d+ ",
                    first["diverged"])
    assert second["diverged"] == first["diverged"]


def test_full_batch_in_the_callers_own_group(tmp_path):
    settings = {"points": 37, "units": 8, "epochs": 15, "lr": 0.05, "batch_size": None,
                "momentum": 0.5, "schedule": "onecycle", "seed": 0, "user_group": True}
    ranks = run_ranks(tmp_path, settings)
    assert_same_run(ranks, one_process(settings))
    assert [len(s) for s in ranks[0]["seen"]] == [18] * 15  # 37 = 18 + 19
    assert [len(s) for s in ranks[1]["seen"]] == [19] * 15
    assert all(result["group_after_fit"] for result in ranks)  # left for the caller


def test_resume_under_torchrun_from_a_one_process_checkpoint(tmp_path):
    settings = dict(MINIBATCH, checkpoint_every=2)
    steps = 8  # per epoch: ceil(50 / 7)
    with pytest.raises(KeyboardInterrupt):  # interrupted in epoch 4: checkpoint of epoch 2
        interrupted = dict(settings, checkpoint=True, fail={"rank": 0, "at": 3 * steps + 2})
        worker.run(interrupted, str(tmp_path))
    assert torch.load(tmp_path / "run.pt", weights_only=True)["epoch"] == 2

    ranks = run_ranks(tmp_path, dict(settings, resume=str(tmp_path / "run.pt")))
    assert_same_run(ranks, one_process(settings))
    assert all(len(result["seen"]) == 4 * steps for result in ranks)  # epochs 3 to 6


def test_killed_rank_is_restarted_and_the_group_resumes(tmp_path):
    settings = dict(MINIBATCH, epochs=8, checkpoint=True, checkpoint_every=2,
                    fail={"rank": 1, "by": "kill", "at": 5 * 8 + 3})  # epoch 6, step 3
    ranks = run_ranks(tmp_path, settings, "--max-restarts=1")
    assert [result["restarts"] for result in ranks] == [1, 1]
    assert ranks[0]["saves"] == [6, 8]  # resumed from epoch 4's checkpoint
    assert len(ranks[1]["seen"]) == 4 * 8
    assert_same_run(ranks, one_process(dict(settings, fail=None)))
    assert torch.load(tmp_path / "run.pt", weights_only=True)["epoch"] == 8
    assert not list(tmp_path.glob("*.tmp"))


def run_cli_alone(folder, options):
    """`relu-ext fit` in this one process, in its own folder (for its files)."""
    folder.mkdir()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert cli_main(options) == 0
    finally:
        os.chdir(cwd)
    return folder


def test_cli_under_torchrun_prints_once_and_matches_one_process(tmp_path, capsys):
    options = ["fit", "--method", "sgd", "--points", "50", "--units", "8", "--epochs", "30",
               "--batch-size", "7", "--target", "sin", "--quiet", "--save", "model.pt",
               "--out", "fit.png"]
    result = torchrun(["-m", "relu_ext", *options], tmp_path)
    assert result.stdout.count("final mae loss: ") == 1
    assert result.stdout.count("plot written to fit.png") == 1
    assert (tmp_path / "fit.png").exists() and (tmp_path / "model.pt").exists()

    alone = run_cli_alone(tmp_path / "alone", options)
    assert "final mae loss: " in capsys.readouterr().out
    ranks = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    single = torch.load(alone / "model.pt", weights_only=True)["state_dict"]
    for name, p in single.items():
        torch.testing.assert_close(ranks[name], p, rtol=RTOL, atol=ATOL)


def test_cli_fit_curve_under_torchrun_splits_the_points_and_prints_once(tmp_path, capsys):
    # relu-ext fit's default method: each rank fits its share of the points,
    # the sums all-reduced; rank 0 alone prints and writes. The breakpoints may
    # move by rounding (the error is not smooth in them), so the check is on
    # what the user reads: the fitted curve and its loss.
    options = ["fit", "--points", "400", "--units", "8", "--target", "sin", "--loss", "mse",
               "--save", "model.pt", "--out", "fit.png"]
    result = torchrun(["-m", "relu_ext", *options], tmp_path)
    assert result.stdout.count("method: fit_curve") == 1
    assert result.stdout.count("final mse loss: ") == 1
    assert result.stdout.count("plot written to fit.png") == 1
    assert (tmp_path / "fit.png").exists() and (tmp_path / "model.pt").exists()

    alone = run_cli_alone(tmp_path / "alone", options)
    out = capsys.readouterr().out
    loss_of = lambda text: float(text.split("final mse loss: ")[1].split()[0])
    assert loss_of(result.stdout) == pytest.approx(loss_of(out), rel=1e-4)
    models = []
    for path in (tmp_path / "model.pt", alone / "model.pt"):
        saved = torch.load(path, weights_only=True)
        model = relu_ext.ReLUSum(saved["units"], bias=True)
        model.load_state_dict(saved["state_dict"])
        models.append(model)
    grid = torch.linspace(-2, 2, 201)
    with torch.no_grad():
        torch.testing.assert_close(models[0](grid), models[1](grid), rtol=0, atol=2e-2)


def test_cli_units_auto_and_summary_under_torchrun_print_once(tmp_path, capsys):
    # The criterion's sums are all-reduced, so the ranks choose the K one
    # process choosing on all the points does; rank 0, which holds them all,
    # prints it and the summary.
    options = ["fit", "--points", "400", "--units", "auto", "--max-units", "8", "--target", "sin",
               "--loss", "mse", "--summary", "--out", "fit.png"]
    result = torchrun(["-m", "relu_ext", *options], tmp_path)
    assert result.stdout.count("units chosen by BIC: ") == 1
    assert result.stdout.count("Piecewise-linear curve: ") == 1
    assert (tmp_path / "fit.png").exists()

    run_cli_alone(tmp_path / "alone", options)
    out = capsys.readouterr().out
    chosen = [text.split("units chosen by BIC: ")[1].split()[0] for text in (result.stdout, out)]
    assert chosen[0] == chosen[1]
