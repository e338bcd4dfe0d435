"""fit(): the lesson's training loop, on torch.optim.SGD and its lr schedulers.

One epoch is one pass over the data in mini-batches (or one full batch); the
learning-rate schedule advances once per optimizer step, so a schedule spans
the whole run whatever the batch size.
"""

import math
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, List, Optional

import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler

from .distributed import data_parallel, restart_count

LOSSES = {"mae": F.l1_loss, "mse": F.mse_loss}
SCHEDULES = ("none", "cosine", "onecycle", "linear")
_CHECKPOINT_FORMAT = "relu_ext.fit checkpoint v1"


@dataclass
class History:
    """What fit() measured.

    Attributes:
        loss: loss[e] is the mean training loss over epoch e's batches (each
            taken before its optimizer step, weighted by batch size).
        lr: lr[e] is the learning rate of epoch e's first step.
        final_loss: the loss of the trained model on all the data.
        seed: the seed of the shuffling generator; pass it again to repeat the run.
        units: fit_curve(units="auto") only: the number of units chosen (a
            (B,) tensor for a batch of curves).
        scores: fit_curve(units="auto") only: the criterion (BIC, or the
            cross-validated error) for each number of units tried, K = 1,
            2, ...: a list, or a (B, max_units) tensor for a batch, NaN for
            the K not tried (2K parameters, less one per point to pass
            through, must be fewer than the points).
    """

    loss: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    final_loss: Optional[float] = None
    seed: Optional[int] = None
    units: Optional[Any] = None
    scores: Optional[Any] = None

    @property
    def epochs(self):
        return len(self.loss)


def fit(model, x, y, *, epochs, lr, batch_size=None, loss="mae", momentum=0.0,
        schedule=None, seed=None, progress=True, checkpoint=None, checkpoint_every=None,
        resume=None, optimizer="sgd"):
    """Fit ``model`` to ``(x, y)`` by SGD (or another optimizer) and return a ``History``.

    Args:
        model: any ``nn.Module``; ``model(x[i:j])`` must have the shape of ``y[i:j]``.
        x, y: tensors with the samples along dim 0, on the model's device.
        epochs: passes over the data (>= 1).
        lr: the learning rate; with a schedule, its peak.
        batch_size: samples per step, reshuffled every epoch; None for the full
            batch in the given order (the lesson's gradient descent).
        loss: "mae" (the lesson's mean absolute error), "mse", or a callable
            ``loss(prediction, target) -> scalar tensor``.
        momentum: SGD momentum (only with optimizer="sgd").
        schedule: how lr changes over the run's steps:
            None or "none": constant;
            "cosine": from lr down to 0 along half a cosine (CosineAnnealingLR);
            "onecycle": up from lr/25 to lr over the first 30% of the steps, then
            down to lr/25e4 (OneCycleLR, momentum left as given);
            "linear": straight down from lr towards 0 (LinearLR);
            or a callable ``schedule(optimizer, total_steps) -> LRScheduler``.
        seed: seeds the generator that shuffles the batches (and nothing else:
            the model's initialisation is the caller's). None draws a fresh seed,
            reported in ``History.seed``.
        progress: a tqdm bar on stderr, shown only when stderr is a terminal.
        checkpoint: a path; every ``checkpoint_every`` epochs and after the last
            one, the model, optimizer, scheduler, RNG states, history and epoch
            are written there atomically (a temporary file in the same
            directory, then os.replace), so a crash never leaves half a file.
        checkpoint_every: epochs between checkpoints; None for about ten per run.
        resume: a checkpoint path to continue from. The run's settings (epochs,
            lr, batch_size, loss, momentum, schedule, seed, data size) must equal
            the checkpointed run's; the model's parameters are replaced by the
            checkpoint's. The resumed run ends bitwise equal to one that was
            never interrupted. Resuming a finished run trains no further.
        optimizer: "sgd" (the lesson's, the default), "adam", "lbfgs" (L-BFGS
            with a strong Wolfe line search, up to 20 evaluations per step), or
            a factory ``optimizer(params, lr) -> torch.optim.Optimizer``. An
            L-BFGS optimizer gets a closure that re-evaluates the batch.

    Raises:
        FloatingPointError: the loss became NaN or Inf. The message names the
            epoch, and the model is left with the parameters that gave the last
            finite loss.

    Under torchrun (or with torch.distributed initialized, W > 1 ranks), fit()
    trains with DistributedDataParallel: ``batch_size`` stays the global batch,
    each rank computes its share of every batch, and the loss history and
    parameters are those of the one-process run, to float32 rounding, on every
    rank. Only rank 0 shows progress and writes the checkpoint; every rank
    resumes from it, also by itself after torchrun restarts the group
    (``--max-restarts``). See ``relu_ext.distributed``.
    """
    _check_args(x, y, epochs, lr, batch_size, momentum, checkpoint_every)
    make_optimizer = _optimizer_factory(optimizer, momentum)
    if resume is None and checkpoint is not None and restart_count() > 0 \
            and os.path.isfile(checkpoint):
        resume = checkpoint  # torchrun restarted the group: carry on from the last checkpoint
    with data_parallel(x.device) as group:
        return _train(group, model, x, y, epochs=epochs, lr=lr, batch_size=batch_size,
                      loss=loss, momentum=momentum, schedule=schedule, seed=seed,
                      progress=progress, checkpoint=checkpoint,
                      checkpoint_every=checkpoint_every, resume=resume,
                      optimizer=optimizer, make_optimizer=make_optimizer)


def _train(group, model, x, y, *, epochs, lr, batch_size, loss, momentum, schedule, seed,
           progress, checkpoint, checkpoint_every, resume, optimizer, make_optimizer):
    loss_fn = _loss_fn(loss)
    n = x.shape[0]
    batch = n if batch_size is None else min(batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    generator = torch.Generator()
    if seed is None:
        seed = generator.seed()  # non-deterministic, and kept in the history
    generator.manual_seed(seed)

    optimizer_name = _name(optimizer)
    optimizer = make_optimizer(model.parameters(), lr)
    needs_closure = isinstance(optimizer, torch.optim.LBFGS)
    scheduler = _scheduler(schedule, optimizer, epochs * steps_per_epoch)
    config = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "momentum": momentum,
              "loss": _name(loss), "schedule": _name(schedule), "seed": seed, "samples": n}
    if optimizer_name != "sgd":  # checkpoints of SGD runs stay as they were
        config["optimizer"] = optimizer_name
    history = History(seed=seed)
    start = 0
    if resume is not None:
        start = _load_checkpoint(resume, config, model, optimizer, scheduler, generator,
                                 history)
    if checkpoint_every is None:
        checkpoint_every = max(1, math.ceil(epochs / 10))

    trained = model if group.size == 1 else _wrap(model, x.device)
    params = [p for p in model.parameters() if p.requires_grad]
    last_finite = [p.detach().clone() for p in params]
    bar = _progress_bar(progress and group.is_main, epochs, start)
    try:
        for epoch in range(start, epochs):
            history.lr.append(optimizer.param_groups[0]["lr"])
            order = None if batch_size is None else torch.randperm(n, generator=generator)
            total = 0.0
            for step in range(steps_per_epoch):
                if order is None:
                    count = n
                    mine = group.share(n)
                    xb, yb = (x, y) if group.size == 1 else (x[mine], y[mine])
                else:
                    idx = order[step * batch:(step + 1) * batch]
                    count = idx.shape[0]
                    idx = idx[group.share(count)].to(x.device)
                    xb, yb = x[idx], y[idx]
                pred = trained(xb)
                if epoch == start and step == 0 and pred.shape != yb.shape:
                    raise ValueError(
                        f"fit(): the model's output must have the shape of y's batch "
                        f"({list(yb.shape)}), but got {list(pred.shape)}"
                    )
                batch_loss, value = _global_batch_loss(group, loss_fn, pred, yb, count)
                if not math.isfinite(value):
                    _restore(params, last_finite)
                    raise FloatingPointError(
                        f"fit(): the loss became {value} at epoch {epoch + 1} of {epochs} "
                        f"(step {step + 1} of {steps_per_epoch}, lr "
                        f"{optimizer.param_groups[0]['lr']:.3g}); the model keeps the "
                        f"parameters of the last finite loss. Try a smaller lr."
                    )
                _save_params(params, last_finite)
                optimizer.zero_grad(set_to_none=True)
                batch_loss.backward()
                if needs_closure:
                    optimizer.step(_closure(group, trained, loss_fn, xb, yb, count, optimizer, value))
                else:
                    optimizer.step()
                scheduler.step()
                total += value * count
            history.loss.append(total / n)
            if bar is not None:
                bar.set_postfix(loss=f"{history.loss[-1]:.4g}", refresh=False)
                bar.update()
            done = epoch + 1
            if group.is_main and checkpoint is not None and (
                    done % checkpoint_every == 0 or done == epochs):
                _save_checkpoint(checkpoint, config, done, model, optimizer, scheduler,
                                 generator, history)
    finally:
        if bar is not None:
            bar.close()

    history.final_loss = _final_loss(group, loss_fn, model, x, y)
    return history


def _wrap(model, device):
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _global_batch_loss(group, loss_fn, pred, target, count):
    """This rank's loss to backpropagate, and the mean loss over the global batch.

    DDP averages the ranks' gradients; a rank's mean loss over its n_r of the
    batch's B samples, scaled by W·n_r/B, makes that average the gradient of the
    mean loss over all B: the update of one process taking the whole batch.
    (So a callable loss must be a mean over the samples, as the built-in ones are.)
    """
    batch_loss = loss_fn(pred, target)
    if group.size == 1:
        return batch_loss, batch_loss.item()
    mine = target.shape[0]
    if mine == 0:  # a batch smaller than the group: nothing to add, but DDP needs a backward
        return pred.sum(), group.sum(0.0) / count
    value = group.sum(batch_loss.item() * mine) / count
    return batch_loss * (group.size * mine / count), value


@torch.no_grad()
def _final_loss(group, loss_fn, model, x, y):
    if group.size == 1:
        return loss_fn(model(x), y).item()
    mine = group.share(x.shape[0])  # each rank a slice, the loss all-reduced
    count = mine.stop - mine.start
    local = loss_fn(model(x[mine]), y[mine]).item() * count if count else 0.0
    return group.sum(local) / x.shape[0]


def _check_args(x, y, epochs, lr, batch_size, momentum, checkpoint_every):
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"fit(): {name} must be a torch.Tensor, but got {type(t).__name__}")
        if t.dim() == 0:
            raise ValueError(f"fit(): {name} must have the samples along dim 0, but is a scalar")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"fit(): x and y must hold the same number of samples, but got {x.shape[0]} and "
            f"{y.shape[0]}"
        )
    if x.shape[0] == 0:
        raise ValueError("fit(): x and y must hold at least one sample, but are empty")
    _check_int("epochs", epochs, 1)
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)
    if checkpoint_every is not None:
        _check_int("checkpoint_every", checkpoint_every, 1)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"fit(): lr must be a positive finite number, but got {lr!r}")
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"fit(): momentum must be a number in [0, 1), but got {momentum!r}")


OPTIMIZERS = ("sgd", "adam", "lbfgs")


def _optimizer_factory(optimizer, momentum):
    """``factory(params, lr)`` for fit()'s optimizer argument."""
    if callable(optimizer):
        return optimizer
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"fit(): optimizer must be one of {', '.join(map(repr, OPTIMIZERS))} "
                         f"or a callable, but got {optimizer!r}")
    if optimizer != "sgd" and momentum:
        raise ValueError(f"fit(): momentum applies to optimizer='sgd', but got momentum="
                         f"{momentum!r} with optimizer={optimizer!r}")
    if optimizer == "sgd":
        return lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=momentum)
    if optimizer == "adam":
        return lambda params, lr: torch.optim.Adam(params, lr=lr)
    return lambda params, lr: torch.optim.LBFGS(params, lr=lr, line_search_fn="strong_wolfe")


def _closure(group, model, loss_fn, xb, yb, count, optimizer, value):
    # The batch's loss and gradient are already there (computed for the
    # history): L-BFGS's first evaluation takes them, its line search recomputes.
    # Under DDP every evaluation is of the global batch (this rank's share,
    # gradients averaged by DDP, the loss all-reduced), so that every rank's
    # line search sees the same values and takes the same steps.
    pending = [torch.tensor(value)]

    def closure():
        if pending:
            return pending.pop()
        optimizer.zero_grad(set_to_none=True)
        local, global_value = _global_batch_loss(group, loss_fn, model(xb), yb, count)
        local.backward()
        return torch.tensor(global_value)

    return closure


def _check_int(name, value, minimum):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"fit(): {name} must be an int >= {minimum}, but got {value!r}")


def _loss_fn(loss):
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(
            f"fit(): loss must be one of {', '.join(map(repr, LOSSES))} or a callable, but got "
            f"{loss!r}"
        )
    return LOSSES[loss]


def _scheduler(schedule, optimizer, total_steps):
    if callable(schedule):
        return schedule(optimizer, total_steps)
    if schedule is None or schedule == "none":
        return lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if schedule == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if schedule == "onecycle":
        # cycle_momentum would overwrite the caller's momentum with 0.85..0.95.
        return lr_scheduler.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"],
                                       total_steps=total_steps, cycle_momentum=False)
    if schedule == "linear":
        return lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0,
                                     total_iters=total_steps)
    raise ValueError(
        f"fit(): schedule must be None, one of {', '.join(map(repr, SCHEDULES))} or a callable, "
        f"but got {schedule!r}"
    )


def _name(option):
    # What a checkpoint records of a loss or schedule, to recognise the same run:
    # a function's name, or a callable object's class (its repr may hold an address).
    if callable(option):
        return getattr(option, "__qualname__", None) or type(option).__qualname__
    return option


@torch.no_grad()
def _save_params(params, into):
    for p, saved in zip(params, into):
        saved.copy_(p)


@torch.no_grad()
def _restore(params, saved):
    for p, value in zip(params, saved):
        p.copy_(value)


def _progress_bar(progress, epochs, start):
    if not (progress and sys.stderr.isatty()):
        return None
    from tqdm.auto import tqdm  # only when shown: the trainer itself does not need it

    return tqdm(total=epochs, initial=start, desc="fit", unit="epoch", file=sys.stderr)


def _save_checkpoint(path, config, epoch, model, optimizer, scheduler, generator, history):
    state = {
        "format": _CHECKPOINT_FORMAT,
        "config": config,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": {"loss": list(history.loss), "lr": list(history.lr)},
    }
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _load_checkpoint(path, config, model, optimizer, scheduler, generator, history):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError):
        state = None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"fit(): resume={os.fspath(path)!r} is not a fit() checkpoint")
    saved = state["config"]
    differ = [f"{k}={config[k]!r} (checkpoint: {saved.get(k)!r})"
              for k in config if saved.get(k) != config[k]]
    if differ:
        raise ValueError(
            f"fit(): resume={os.fspath(path)!r} is from a different run; differing: "
            + ", ".join(differ)
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    # The model may draw from the global RNG (dropout, say); an uninterrupted run
    # would have carried on from where this one stood.
    torch.set_rng_state(state["torch_rng"])
    history.loss[:] = state["history"]["loss"]
    history.lr[:] = state["history"]["lr"]
    return state["epoch"]
