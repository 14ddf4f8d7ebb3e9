"""Deterministic test doubles for unit tests: **never use these in production**.

* :class:`ScriptedLLM` answers from a script (a list of replies or a function of the
  prompt), so agent and navigator logic can be tested without a model.
* :class:`HashingEmbedder` maps text to a bag-of-hashed-words vector: similar wording gives
  similar vectors, with no model. Good enough to exercise clustering and search logic.

Every component is *also* tested against the real backends (see ``tests/``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from branchwise.models.base import Completion, GenParams, Message, StructuredCompletion

Script = Callable[[Sequence[Message]], str] | list[str]


@dataclass
class ScriptedLLM:
    """An LLM whose replies are scripted.

    Args:
        replies: a list consumed in order (the last one repeats), or a function from the
            messages to the reply text.
        logprob_fn: optional function ``(messages, continuation) -> logprob`` for
            :meth:`continuation_logprobs`; by default every continuation gets log(0.5).
    """

    replies: Script = field(default_factory=lambda: ["OK"])
    logprob_fn: Callable[[Sequence[Message], str], float] | None = None
    name: str = "scripted"
    calls: list[list[Message]] = field(default_factory=list)

    def _reply(self, messages: Sequence[Message]) -> str:
        self.calls.append(list(messages))
        if callable(self.replies):
            return self.replies(messages)
        idx = min(len(self.calls) - 1, len(self.replies) - 1)
        return self.replies[idx]

    def chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Completion:
        text = self._reply(messages)
        return Completion(
            text=text,
            prompt_tokens=sum(self.count_tokens(m.content) for m in messages),
            completion_tokens=self.count_tokens(text),
        )

    def chat_json(
        self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams = GenParams()
    ) -> StructuredCompletion:
        from branchwise.text.jsonparse import parse_json_lenient

        c = self.chat(messages, params)
        value, repaired = parse_json_lenient(c.text)
        return StructuredCompletion(value=value, completion=c, repaired=repaired)

    def continuation_logprobs(self, messages: Sequence[Message], continuations: Sequence[str]) -> list[float]:
        self.calls.append(list(messages))
        if self.logprob_fn is None:
            return [float(np.log(0.5))] * len(continuations)
        return [self.logprob_fn(messages, c) for c in continuations]

    def count_tokens(self, text: str) -> int:
        return len(text.split())


_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class HashingEmbedder:
    """Bag of hashed lower-cased words (+ bigrams), L2-normalised. For unit tests only."""

    dim: int = 256
    name: str = "hashing-test-embedder"

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = _WORD.findall(text.lower())
        for tok in words + [a + "_" + b for a, b in zip(words, words[1:])]:
            h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 63) == 0 else -1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vec(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


def json_reply(obj: Any) -> str:
    """Helper for scripts: the JSON text of ``obj``."""
    return json.dumps(obj)
