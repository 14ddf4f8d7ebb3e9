"""Flat retrievers over an index: dense, BM25, and their reciprocal-rank fusion.

These are the non-tree retrieval routes (the agent's ``hybrid`` route and the baselines of
the evals). Each implements the :class:`Retriever` Protocol and is built from the parts of
an :class:`~branchwise.retrieval.index.Index` (``Index.retriever(kind)`` wires them up).

Hybrid search uses reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): a chunk
ranked ``r`` (1-based) by a retriever gains ``1 / (k + r)``; gains add across retrievers.
RRF needs no score calibration between cosine similarities and BM25 scores (which live on
unrelated scales), and ``k = 60`` — the paper's value — damps the influence of the very top
ranks so one retriever's confident mistake does not dominate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from branchwise.errors import InputError
from branchwise.models.base import Embedder
from branchwise.retrieval.bm25 import BM25Index
from branchwise.retrieval.store import VectorStore
from branchwise.types import ScoredChunk


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks chunks for a query (higher score is better)."""

    def retrieve(self, query: str, k: int) -> list[ScoredChunk]: ...


class DenseRetriever:
    """Cosine similarity of the query embedding to chunk embeddings in the vector store.

    Args:
        embedder: the index's embedder (queries must live in the same space as chunks).
        store: the vector store holding the chunk vectors.
        collection: the collection to search.
    """

    def __init__(self, embedder: Embedder, store: VectorStore, collection: str = "chunks"):
        self.embedder = embedder
        self.store = store
        self.collection = collection

    def retrieve(self, query: str, k: int) -> list[ScoredChunk]:
        if k <= 0 or not query.strip():
            return []
        hits = self.store.query(self.collection, self.embedder.embed_query(query), k)
        return [ScoredChunk(cid, sim, "dense") for cid, sim in hits]


class BM25Retriever:
    """Lexical BM25 ranking (see :mod:`branchwise.retrieval.bm25`)."""

    def __init__(self, bm25: BM25Index):
        self.bm25 = bm25

    def retrieve(self, query: str, k: int) -> list[ScoredChunk]:
        return self.bm25.search(query, k)


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """Reciprocal rank fusion settings.

    Attributes:
        rrf_k: the RRF constant (60, from Cormack et al. 2009).
        depth: how many candidates each retriever contributes (at least the ``k`` asked for);
            deeper lists let a chunk ranked moderately by both retrievers surface.
    """

    rrf_k: int = 60
    depth: int = 50

    def __post_init__(self) -> None:
        if self.rrf_k < 0 or self.depth < 1:
            raise InputError(f"invalid HybridConfig {self}.", fix="use rrf_k >= 0 and depth >= 1.")


def reciprocal_rank_fusion(rankings: Sequence[Sequence[ScoredChunk]], rrf_k: int = 60) -> list[ScoredChunk]:
    """Fuse ranked lists: score(c) = Σ_lists 1 / (rrf_k + rank_c), ranks 1-based.

    Ties are broken by the best single rank, then by chunk id, so the output is deterministic.
    """
    score: dict[str, float] = {}
    best: dict[str, int] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            score[hit.chunk_id] = score.get(hit.chunk_id, 0.0) + 1.0 / (rrf_k + rank)
            best[hit.chunk_id] = min(best.get(hit.chunk_id, rank), rank)
    order = sorted(score, key=lambda c: (-score[c], best[c], c))
    return [ScoredChunk(c, score[c], "hybrid") for c in order]


class HybridRetriever:
    """Reciprocal rank fusion of several retrievers (normally dense + BM25)."""

    def __init__(self, retrievers: Sequence[Retriever], config: HybridConfig = HybridConfig()):
        if not retrievers:
            raise InputError("HybridRetriever needs at least one retriever.", fix="pass dense and BM25 retrievers.")
        self.retrievers = list(retrievers)
        self.config = config

    def retrieve(self, query: str, k: int) -> list[ScoredChunk]:
        if k <= 0:
            return []
        depth = max(k, self.config.depth)
        fused = reciprocal_rank_fusion([r.retrieve(query, depth) for r in self.retrievers], self.config.rrf_k)
        return fused[:k]


# -- the registered flat retrievers (branchwise.retrieval.registry.RETRIEVERS) -------------
def hybrid_search(index: Any) -> Callable[[str, int], list[ScoredChunk]]:
    return index.search_hybrid  # type: ignore[no-any-return]


def dense_search(index: Any) -> Callable[[str, int], list[ScoredChunk]]:
    return index.search_dense  # type: ignore[no-any-return]


def bm25_search(index: Any) -> Callable[[str, int], list[ScoredChunk]]:
    return index.search_bm25  # type: ignore[no-any-return]
