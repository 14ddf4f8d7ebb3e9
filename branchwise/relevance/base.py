"""The :class:`Reranker` protocol: a query against many passages, scores in [0, 1].

A reranker reads the query and each passage together (a cross-encoder, an LLM judgement, a
reranking endpoint) or compares embeddings (cosine); every implementation returns one score
per passage in [0, 1], higher = more relevant, so scores fuse with the other priors the
navigator and the compressor already use. Scores are comparable within one call; the
learned ones (cross-encoder sigmoid, P(Yes)) are roughly calibrated across calls too.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence, runtime_checkable


@runtime_checkable
class Reranker(Protocol):
    """Scores passages for a query (batched inside one call)."""

    name: str

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One score in [0, 1] per passage, in order."""
        ...


def sigmoid(x: float) -> float:
    """The logistic function, stable for large |x|."""
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def rank(scores: Sequence[float]) -> list[int]:
    """Indices of ``scores`` best first (stable for ties)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def passage_text(title: str, text: str) -> str:
    """How a passage is shown to a reranker: ``"title: text"`` (titles carry the entity that
    pronouns in the text refer to; the bundled reranker was trained on this form)."""
    return f"{title}: {text}" if title else text


def p_yes(logprob_yes: float, logprob_no: float) -> float:
    """``P(Yes) / (P(Yes) + P(No))`` from two log-probabilities, computed stably."""
    d = logprob_no - logprob_yes
    return 1.0 / (1.0 + math.exp(d)) if d < 700 else 0.0
