"""Optional batched calls: one entry point whatever the backend can do.

Callers with many independent prompts (the navigator scoring a beam of slates, evals,
tree summaries) call :func:`chat_batch` / :func:`continuation_logprobs_batch`. Backends
that can do better than a loop implement the :class:`BatchLLM` methods:

* transformers pads a batch into one forward pass (the GPU path);
* the OpenAI-compatible backend runs requests concurrently under its semaphore;
* llama.cpp orders prompts so consecutive ones share the longest prefix, letting the KV
  cache skip the shared part of the prompt.

Any other :class:`~branchwise.models.base.LLM` (e.g. ``testing.ScriptedLLM``) gets a plain loop.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from branchwise.models.base import LLM, Completion, GenParams, Message


@runtime_checkable
class BatchLLM(Protocol):
    """An LLM with native batched calls (results in input order)."""

    def chat_batch(self, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]: ...

    def continuation_logprobs_batch(
        self, batch: Sequence[Sequence[Message]], continuations: Sequence[str]
    ) -> list[list[float]]: ...


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
