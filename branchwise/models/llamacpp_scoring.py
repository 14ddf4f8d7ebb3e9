"""Continuation scoring on llama.cpp from one forward pass, without ``logits_all``.

Relevance judgements such as P("Yes") vs P("No") after "Is this passage relevant?" need the
next-token distribution at the start of the assistant turn — one row of logits. The
high-level llama-cpp-python API only exposes logits when the model is created with
``logits_all=True``, which stores ``n_ctx x n_vocab`` floats (4096 x 151,936 x 4 B ≈ 2.5 GB for
Qwen2.5) and computes the output projection for every prompt position; with it off, the
``Llama.scores`` rows silently read as zeros and every P("Yes") comes out 0.5.

:class:`PrefixScorer` instead evaluates the prompt with the normal ``Llama.eval`` (logits
only for the last position) and reads that single row through ``llama_get_logits_ith(ctx,
-1)``. Multi-token continuations extend the sequence one token at a time, reading the last
row each time. Before evaluating, it keeps the longest common prefix of the KV cache with
the new prompt (llama.cpp's ``llama_memory_seq_rm`` drops only the tail), so a slate of
passages scored against one question recomputes only what differs.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from branchwise.errors import BackendError, InputError
from branchwise.models.base import Message


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax in float64."""
    x = np.asarray(logits, dtype=np.float64)
    m = float(x.max())
    return x - (m + float(np.log(np.exp(x - m).sum())))


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefix_order(token_lists: Sequence[Sequence[int]]) -> list[int]:
    """Indices sorted so prompts sharing a prefix are adjacent (lexicographic token order).

    Consecutive prompts then share the longest possible prefix, which the KV cache keeps.
    """
    return sorted(range(len(token_lists)), key=lambda i: list(token_lists[i]))


class PrefixScorer:
    """Scores continuations on a ``llama_cpp.Llama`` created with ``logits_all=False``.

    Not thread-safe by itself: :class:`~branchwise.models.llamacpp.LlamaCppLLM` holds its lock
    around every call.
    """

    def __init__(self, llm: Any, reuse_prefix: bool = True) -> None:
        self._llm = llm
        self.reuse_prefix = reuse_prefix
        self._formatter = self._make_formatter()
        self.reused_tokens = 0
        self.evaluated_tokens = 0

    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = (self._llm.metadata or {}).get("tokenizer.chat_template")
        if not template:
            return None
        model = self._llm._model
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            add_generation_prompt=True,
            stop_token_ids=[eos],
        )

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the chat prompt up to the start of the assistant turn.

        Formatted and tokenized exactly as ``create_chat_completion`` does, so generation
        calls and scoring calls share KV-cache prefixes.
        """
        if self._formatter is None:
            raise BackendError(
                "this GGUF file has no chat template, so the start of the assistant turn is unknown.",
                fix="use a chat/instruct GGUF that embeds tokenizer.chat_template.",
            )
        result = self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        return list(
            self._llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        )

    def _last_logits(self) -> np.ndarray:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        if not ptr:
            raise BackendError("llama.cpp returned no logits for the last position.")
        return np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),)).copy()

    def _eval_from(self, tokens: list[int], keep: int) -> np.ndarray:
        """Keep the first ``keep`` cached tokens, evaluate the rest, return the last logits."""
        llm = self._llm
        llm.n_tokens = keep  # Llama.eval drops the KV cells from n_tokens onwards
        llm.eval(tokens[keep:])
        self.evaluated_tokens += len(tokens) - keep
        return self._last_logits()

    def score(self, tokens: list[int], continuations: Sequence[str]) -> list[float]:
        """log P(continuation | prompt tokens) for each continuation."""
        llm = self._llm
        cached = llm.input_ids[: llm.n_tokens].tolist() if self.reuse_prefix else []
        # Re-evaluate at least the last prompt token: its logits may have been overwritten.
        keep = min(common_prefix_len(cached, tokens), len(tokens) - 1)
        self.reused_tokens += keep
        first = log_softmax(self._eval_from(tokens, keep))
        n_prompt = len(tokens)
        out: list[float] = []
        for cont in continuations:
            ids = list(llm.tokenize(cont.encode("utf-8"), add_bos=False, special=False))
            if not ids:
                raise InputError(f"continuation {cont!r} has no tokens.", fix="pass non-empty continuations.")
            total = float(first[ids[0]])
            for j in range(1, len(ids)):
                # Extend prompt + ids[:j]; the prompt itself stays cached.
                step = log_softmax(self._eval_from(tokens + ids[:j], n_prompt + j - 1))
                total += float(step[ids[j]])
            out.append(total)
        return out
