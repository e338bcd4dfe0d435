"""One rank of a distributed fit() test, run by torchrun (or imported by the
tests for the one-process run to compare with):

    torchrun --standalone --nproc-per-node=2 fit_worker.py SETTINGS.json OUT_DIR

Each rank writes OUT_DIR/rank{RANK}.pt: its parameters, History, the inputs
it trained on, where it wrote checkpoints, and what it saw of the group.
"""

import json
import os
import signal
import sys

import torch
import torch.distributed as dist
from torch import nn

import relu_ext
import relu_ext.distributed
import relu_ext.train._fit


def make_data(points, seed=0):
    """Distinct x values, so a batch's x tells which samples it holds."""
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-2, 2, points)
    y = torch.sin(2 * x) + x ** 2 / 2 + 0.1 * torch.randn(points, generator=g)
    return x, y


class UsersModel(nn.Module):
    """A ReLUSum inside the user's own module (fit takes any model), which
    records the batches it trains on and can fail on cue."""

    def __init__(self, units, seed=0, fail_at=None, fail_by=None, layers=False):
        super().__init__()
        torch.manual_seed(seed)
        if layers:  # the lesson's net with a hidden layer of 4: two ReLUSumLinear
            self.relus = nn.Sequential(
                nn.Unflatten(-1, (-1, 1)),
                relu_ext.ReLUSumLinear(1, 4, units, input_range=(-2.0, 2.0)),
                relu_ext.ReLUSumLinear(4, 1, units), nn.Flatten(0))
        else:
            self.relus = relu_ext.ReLUSum(units, input_range=(-2.0, 2.0))
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.seen = []
        self.fail_at, self.fail_by = fail_at, fail_by

    def forward(self, x):
        if torch.is_grad_enabled():  # a training step, not the final loss
            self.seen.append(x.detach().clone())
            if len(self.seen) == self.fail_at:
                if self.fail_by == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise KeyboardInterrupt
        return self.scale * self.relus(x)


def fit_settings(settings):
    return {k: settings[k] for k in ("epochs", "lr", "batch_size", "momentum", "schedule",
                                     "loss", "seed", "checkpoint_every") if k in settings}


def run(settings, out_dir=None):
    """fit() as the settings say; returns what the tests compare."""
    x, y = make_data(settings["points"])
    rank = int(os.environ.get("RANK", "0"))
    fail = settings.get("fail") or {}
    model = UsersModel(settings["units"], fail_at=fail.get("at") if rank == fail.get(
        "rank") and relu_ext.distributed.restart_count() == 0 else None,
        fail_by=fail.get("by"), layers=settings.get("layers", False))
    checkpoint = os.path.join(out_dir, "run.pt") if settings.get("checkpoint") else None
    saves = []
    save = relu_ext.train._fit._save_checkpoint
    relu_ext.train._fit._save_checkpoint = lambda path, config, epoch, *a: (
        saves.append(epoch), save(path, config, epoch, *a))
    if settings.get("user_group"):
        dist.init_process_group("gloo")
    result = {}
    try:
        history = relu_ext.fit(model, x, y, progress=False, checkpoint=checkpoint,
                               resume=settings.get("resume"), **fit_settings(settings))
        result["group_after_fit"] = dist.is_initialized()
        if settings.get("diverge_after"):  # a second fit in the same process, that diverges
            try:
                relu_ext.fit(UsersModel(settings["units"]), x, y, epochs=3, lr=1e30,
                             batch_size=settings.get("batch_size"), seed=1, progress=False)
            except FloatingPointError as e:
                result["diverged"] = str(e)
    finally:
        relu_ext.train._fit._save_checkpoint = save
        if settings.get("user_group"):
            dist.barrier()
            dist.destroy_process_group()
    result.update(params={k: v.detach().clone() for k, v in model.named_parameters()},
                  loss=history.loss, lr=history.lr, final_loss=history.final_loss,
                  seen=model.seen, saves=saves,
                  restarts=relu_ext.distributed.restart_count())
    return result


if __name__ == "__main__":
    settings_path, out = sys.argv[1:3]
    with open(settings_path) as f:
        result = run(json.load(f), out)
    torch.save(result, os.path.join(out, f"rank{os.environ['RANK']}.pt"))
