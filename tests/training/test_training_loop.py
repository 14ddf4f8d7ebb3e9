"""The loop shared by the compressor trainers (scoped seeding, optimiser steps, metadata)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from branchwise.training.loop import TrainResult, finish, run_steps, seeded


def test_seeded_is_reproducible_and_restores_the_global_rng() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        a = torch.rand(2)
    with seeded(7):
        b = torch.rand(2)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's stream is untouched


def test_run_steps_trains_and_leaves_eval_mode(tmp_path: Path) -> None:
    with seeded(0):
        model = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Dropout(0.0))
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.zeros(16, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    modes: list[bool] = []

    def step_loss(i: int) -> float:
        modes.append(model.training)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return float(loss.detach())

    losses = run_steps(model, opt, range(5), step_loss, desc="t", scheduler=sched, max_grad_norm=10.0)
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert all(modes) and not model.training
    assert opt.param_groups[0]["lr"] == 0.1 * 0.5**5

    res = finish(tmp_path, "meta.json", {"losses": losses}, losses, time.perf_counter(), "t")
    assert isinstance(res, TrainResult) and res.steps == 5 and res.losses == losses and res.seconds >= 0
    assert json.loads((tmp_path / "meta.json").read_text()) == {"losses": losses}
