"""Cosine similarity of embeddings as a reranker (``cosine``): the cheap baseline.

Scores are the cosine of the query and passage vectors clipped to [0, 1] (the same mapping as
the navigator's embedding scorer), from the index's embedder unless another is given.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from branchwise.models.base import Embedder


class CosineReranker:
    """cos(query, passage) in [0, 1] with one embedder call per :meth:`score`."""

    name = "cosine"

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        q = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
        m = np.asarray(self.embedder.embed(list(passages)), dtype=np.float32)
        return [float(x) for x in np.clip(m @ q, 0.0, 1.0)]
