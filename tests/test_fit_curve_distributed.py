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


def data():
    x = torch.linspace(-2, 2, 3001, dtype=torch.float64)
    noise = torch.randn(3001, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return x, torch.sin(3 * x) + 0.05 * noise


def _rank_main(rank, init_file, loss, split, out):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        x, y = data()
        if split == "interleaved":  # uneven; every rank sees points across the range
            mine = torch.arange(rank, x.numel(), WORLD)
        else:  # each rank a contiguous stretch of x, in reverse order
            mine = torch.arange(x.numel()).tensor_split(WORLD)[rank].flip(0)
        model, history = relu_ext.fit_curve(x[mine], y[mine], units=8, loss=loss, restarts=2)
        torch.save({"state": model.state_dict(), "final_loss": history.final_loss},
                   f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("loss,split", [("mse", "interleaved"), ("mae", "interleaved"),
                                        ("mse", "halves")])
def test_split_points_give_the_one_process_fit_bitwise(loss, split, tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    out = str(tmp_path / "model")
    mp.start_processes(_rank_main, args=(str(tmp_path / "init"), loss, split, out), nprocs=WORLD,
                       start_method="spawn")
    x, y = data()
    single, history = relu_ext.fit_curve(x, y, units=8, loss=loss, restarts=2)
    results = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(WORLD)]
    for rank in range(1, WORLD):  # every rank returns the same model
        for key, value in results[0]["state"].items():
            assert torch.equal(value, results[rank]["state"][key]), key
    for key, value in single.state_dict().items():
        assert torch.equal(results[0]["state"][key], value), key
    assert results[0]["final_loss"] == history.final_loss
