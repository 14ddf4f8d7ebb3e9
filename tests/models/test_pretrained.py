"""branchwise.models.pretrained: transformers loads in threads leave torch's default dtype alone."""

from __future__ import annotations

import threading

import torch
from transformers import AutoModelForSequenceClassification

from branchwise.models.pretrained import from_pretrained
from branchwise.relevance.cross_encoder import DEFAULT_MODEL_DIR, CrossEncoderReranker


def _in_threads(fn, n: int = 4) -> None:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_parallel_loads_of_a_float16_checkpoint_keep_the_default_dtype() -> None:
    # the bundled reranker is stored in fp16; transformers sets the process default dtype to the
    # checkpoint's while it builds under dtype="auto" - unlocked parallel loads left float16 behind
    assert torch.get_default_dtype() == torch.float32
    for _ in range(3):
        _in_threads(lambda: from_pretrained(AutoModelForSequenceClassification, str(DEFAULT_MODEL_DIR),
                                            dtype="auto", local_files_only=True))
        assert torch.get_default_dtype() == torch.float32
    assert torch.tensor([1.0]).dtype == torch.float32


def test_rerankers_loaded_in_parallel_run_in_float32() -> None:
    rerankers = [CrossEncoderReranker(DEFAULT_MODEL_DIR) for _ in range(3)]
    it = iter(rerankers)
    lock = threading.Lock()

    def score() -> None:
        with lock:
            r = next(it)
        assert len(r.score("who wrote it?", ["a passage", "another passage"])) == 2

    _in_threads(score, n=3)
    assert torch.get_default_dtype() == torch.float32
    for r in rerankers:
        net = r._loaded[0]  # type: ignore[index]
        assert {p.dtype for p in net.parameters()} == {torch.float32}
