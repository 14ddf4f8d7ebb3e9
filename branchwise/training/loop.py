"""The plain PyTorch loop shared by the compressor trainers.

:mod:`branchwise.training.extractive` (a sentence-transformers dual encoder) and
:mod:`branchwise.training.preference` (a causal LM under ORPO/DPO) differ in their
model and loss; what they share lives here:

* :func:`seeded` — torch seeding scoped to the run (``fork_rng``: the caller's global RNG
  state is restored afterwards);
* :func:`run_steps` — the optimiser loop: zero the gradients, forward/backward (the
  trainer's ``step_loss``), clip the gradient norm, step the optimiser and scheduler;
* :func:`finish` — the JSON metadata beside the saved model (models themselves are saved by
  their libraries as safetensors; nothing is pickled) and the :class:`TrainResult`.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from tqdm.auto import tqdm

from branchwise.files import atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "finish", "run_steps", "seeded"]

T = TypeVar("T")


@dataclass(slots=True)
class TrainResult:
    """What training did: where the model is, optimiser steps taken, per-step losses, wall time."""

    out_dir: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block; the global RNG state is restored on exit."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def run_steps(
    model: Any,
    optimizer: Any,
    steps: Sequence[T],
    step_loss: Callable[[T], float],
    *,
    desc: str,
    scheduler: Any = None,
    max_grad_norm: float = 1.0,
) -> list[float]:
    """Train ``model`` for one optimiser step per item of ``steps``; returns the step losses.

    ``step_loss(item)`` runs the forward and backward passes of one step (several with
    gradient accumulation) and returns the step's loss as a float. The model is in train
    mode during the loop and in eval mode after it.
    """
    import torch

    model.train()
    losses: list[float] = []
    for item in tqdm(steps, desc=desc, unit="step"):
        optimizer.zero_grad()
        losses.append(step_loss(item))
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    model.eval()
    return losses


def finish(out_dir: Path, meta_file: str, meta: dict[str, Any], losses: list[float], start: float, what: str) -> TrainResult:
    """Write ``meta`` as ``out_dir/meta_file`` (atomically), log the run, and return its result.

    ``start`` is the ``time.perf_counter()`` value when training began; one loss per step.
    """
    atomic_write_json(out_dir / meta_file, meta)
    seconds = time.perf_counter() - start
    logger.info(
        "%s: %d steps in %.1fs, loss %.4f -> %.4f -> %s",
        what,
        len(losses),
        seconds,
        losses[0] if losses else 0,
        losses[-1] if losses else 0,
        out_dir,
    )
    return TrainResult(out_dir, len(losses), losses, seconds)
