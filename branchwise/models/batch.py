"""Optional batched calls: one entry point whatever the backend can do.

Callers with many independent prompts (the navigator scoring a beam of slates, evals,
tree summaries) call :func:`chat_batch` / :func:`continuation_logprobs_batch`. Backends
that can do better than a loop implement the :class:`BatchLLM` methods:

* transformers pads a batch into one forward pass (the GPU path);
* the OpenAI-compatible backend sends ``max_concurrency`` requests at a time
  (:func:`map_concurrent` over its transport's slots), so a batching server (vLLM, a
  llama.cpp server with parallel slots) sees a full batch rather than one request at a time;
  the transport's bounded queue applies back-pressure when several callers batch at once;
* llama.cpp orders prompts so consecutive ones share the longest prefix, letting the KV
  cache skip the shared part of the prompt.

Any other :class:`~branchwise.models.base.LLM` (e.g. ``testing.ScriptedLLM``) gets a plain
loop. Wrappers (``CachedLLM``) pass only their cache misses on, as one batch.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Protocol, Sequence, TypeVar, runtime_checkable

from branchwise.models.base import LLM, Completion, GenParams, Message

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class BatchLLM(Protocol):
    """An LLM with native batched calls (results in input order)."""

    def chat_batch(self, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]: ...

    def continuation_logprobs_batch(
        self, batch: Sequence[Sequence[Message]], continuations: Sequence[str]
    ) -> list[list[float]]: ...


def map_concurrent(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads, results in input order.

    Each task runs in a copy of the caller's :mod:`contextvars` context, so the caller's
    :class:`~branchwise.models.retry.CallScope` (a question's deadline and fault log) holds
    in every task. On the first failure the tasks not yet started are cancelled and that
    error is raised; tasks already running finish first (each is bounded by its backend's
    timeouts).
    """
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    pool = ThreadPoolExecutor(max_workers=min(len(items), workers), thread_name_prefix="branchwise-batch")
    try:
        futures = [pool.submit(contextvars.copy_context().run, fn, x) for x in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            if f.done() and not f.cancelled() and (error := f.exception()) is not None:
                raise error
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def chat_batch(llm: LLM, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]:
    """``[llm.chat(m, params) for m in batch]``, batched when the backend supports it."""
    if not batch:
        return []
    native = getattr(llm, "chat_batch", None)
    if callable(native):
        return list(native(batch, params))
    return [llm.chat(m, params) for m in batch]


def continuation_logprobs_batch(
    llm: LLM, batch: Sequence[Sequence[Message]], continuations: Sequence[str]
) -> list[list[float]]:
    """``[llm.continuation_logprobs(m, continuations) for m in batch]``, batched when possible."""
    if not batch:
        return []
    native = getattr(llm, "continuation_logprobs_batch", None)
    if callable(native):
        return [list(x) for x in native(batch, continuations)]
    return [list(llm.continuation_logprobs(m, continuations)) for m in batch]
