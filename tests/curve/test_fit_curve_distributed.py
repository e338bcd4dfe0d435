"""fit_curve with a process group: the points split across ranks give bitwise
the one-process fit. Every sum over points is exact (csrc/curve/exact_sum.h),
so splitting the points changes no sum, no step and no bit of the result."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import relu_ext

WORLD = 2


# The fits compared: the sizes, and fit_curve's arguments. "large_k" is
# sized so that relu_sum's "auto" would take the breakpoint kernels for all
# the points and the dense ones for each rank's half: the fit must not
# depend on that choice.
FITS = {
    "small": (3001, dict(units=8, restarts=2)),
    "large_k": (40_000, dict(units=400, restarts=1, max_iter=3, revive=1)),
    # The number of units chosen: every K's fit, BIC's likelihood and the
    # cross-validation folds (a hash of each point) split with the points.
    "auto_bic": (3001, dict(units="auto", max_units=6, restarts=2)),
    "auto_cv": (3001, dict(units="auto", max_units=5, select="cv", folds=3, restarts=2)),
}


def data(size):
    points = FITS[size][0]
    x = torch.linspace(-2, 2, points, dtype=torch.float64)
    noise = torch.randn(points, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return x, torch.sin(3 * x) + 0.05 * noise


def fit(x, y, size, loss):
    return relu_ext.fit_curve(x, y, loss=loss, **FITS[size][1])


def _rank_main(rank, init_file, loss, split, size, out):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        x, y = data(size)
        if split == "interleaved":  # uneven; every rank sees points across the range
            mine = torch.arange(rank, x.numel(), WORLD)
        else:  # each rank a contiguous stretch of x, in reverse order
            mine = torch.arange(x.numel()).tensor_split(WORLD)[rank].flip(0)
        model, history = fit(x[mine], y[mine], size, loss)
        torch.save({"state": model.state_dict(), "final_loss": history.final_loss,
                    "units": history.units, "scores": history.scores}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("loss, split, size", [
    ("mse", "interleaved", "small"), ("mae", "interleaved", "small"), ("mse", "halves", "small"),
    ("mae", "halves", "small"), ("mse", "halves", "large_k"), ("mse", "interleaved", "auto_bic"),
    ("mae", "halves", "auto_bic"), ("mse", "halves", "auto_cv"),
])
def test_split_points_give_the_one_process_fit_bitwise(loss, split, size, tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    out = str(tmp_path / "model")
    mp.start_processes(_rank_main, args=(str(tmp_path / "init"), loss, split, size, out),
                       nprocs=WORLD, start_method="spawn")
    x, y = data(size)
    single, history = fit(x, y, size, loss)
    results = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(WORLD)]
    for rank in range(1, WORLD):  # every rank returns the same model
        for key, value in results[0]["state"].items():
            assert torch.equal(value, results[rank]["state"][key]), key
    for key, value in single.state_dict().items():
        assert torch.equal(results[0]["state"][key], value), key
    assert results[0]["final_loss"] == history.final_loss
    assert results[0]["units"] == history.units and results[0]["scores"] == history.scores


def batch():
    """Curves of sizes that do not divide among the ranks evenly, weighted, with
    padding."""
    g = torch.Generator().manual_seed(2)
    x, _ = torch.sort(torch.rand(5, 400, generator=g, dtype=torch.float64) * 4 - 2, 1)
    y = torch.sin(3 * x + torch.arange(5.0, dtype=torch.float64)[:, None])
    w = torch.rand(5, 400, generator=g, dtype=torch.float64)
    w[3, 300:] = 0
    return x, y, w


def auto_batch():
    """batch()'s x, curve c a noisy curve of c + 1 segments (the curves choose
    different numbers of units), the weights the noise's inverse variances."""
    x, _, _ = batch()
    g = torch.Generator().manual_seed(3)
    w = 1 + 3 * torch.rand(x.shape, generator=g, dtype=torch.float64)
    w[3, 300:] = 0
    y = torch.stack([sum(torch.relu(x[c] - t) * 2 * (-1) ** k
                         for k, t in enumerate(torch.linspace(-1.5, 1.5, c + 2)[1:-1]))
                     + 0.3 * x[c] for c in range(5)])
    noise = 0.05 * torch.randn(y.shape, generator=g, dtype=torch.float64) / w.clamp_min(1).sqrt()
    return x, y + noise, w


def fit_batch(units):
    x, y, w = batch() if units != "auto" else auto_batch()
    return relu_ext.fit_curve(x, y, units, max_units=8, weights=w, loss="mae", restarts=2)


def _batch_rank_main(rank, init_file, units, out):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        model, history = fit_batch(units)  # every rank passes every curve
        torch.save({"state": model.state_dict(), "final_loss": history.final_loss,
                    "loss": history.loss, "units": history.units, "scores": history.scores},
                   f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("units", [6, "auto"])
def test_a_batch_is_split_by_curves_and_every_rank_gets_every_fit(units, tmp_path):
    out = str(tmp_path / "model")
    mp.start_processes(_batch_rank_main, args=(str(tmp_path / "init"), units, out),
                       nprocs=WORLD, start_method="spawn")
    single, history = fit_batch(units)
    if units == "auto":  # the ranks' curves chose different K: the gather pads them
        assert len(set(history.units.tolist())) > 1
    for rank in range(WORLD):
        result = torch.load(f"{out}.{rank}", weights_only=True)
        for key, value in single.state_dict().items():
            assert torch.equal(result["state"][key], value), (rank, key)
        assert torch.equal(result["final_loss"], history.final_loss)
        assert result["loss"] == history.loss
        if units == "auto":
            assert torch.equal(result["units"], history.units)
            assert torch.equal(result["scores"].nan_to_num(-1), history.scores.nan_to_num(-1))


def test_a_group_that_cannot_reduce_cpu_tensors_is_refused(monkeypatch):
    # fit_curve sums on the CPU; an nccl-only group (no GPU here to make one)
    # would fail deep inside with "No backend type associated with device type cpu".
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")
    x, y = data("small")
    with pytest.raises(ValueError, match="process group must reduce CPU tensors .* its backend "
                                         "is nccl"):
        relu_ext.fit_curve(x, y, units=4)
