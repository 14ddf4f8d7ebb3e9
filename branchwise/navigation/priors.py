"""Retrieval priors: cheap, query-dependent relevance estimates for tree nodes.

Why they exist: on 15 Cranfield queries the embedded 1.5B model's own relevance judgement
(P("Yes") reranking) scored nDCG@10 0.290 against 0.547 for plain BM25+dense hybrid order
(issue 5). A small model's scores are one noisy signal; the navigator fuses them with these
priors in its calibration fit (:mod:`branchwise.navigation.calibration`), and scorers can show
them to the model (InsertRank, arXiv 2506.14086) or fall back to them on malformed output.

Sources, each mapped to [0, 1] on one scale per query:

* ``dense`` — cosine of the query embedding and the node's vector (the summary embedding
  for internal nodes, the chunk embedding for leaves), clipped at 0;
* ``bm25`` — for leaves, the chunk's BM25 score divided by the query's best BM25 score
  among the top ``bm25_depth`` hits (chunks beyond that depth get 0); for internal nodes
  (when the prior knows the tree), the best such score among the leaves below: "this
  branch holds a strong keyword match". Summaries are short and generic, so without it
  the lexical signal could not steer the descent at all, only re-rank the leaves reached.

Vectors come through the :class:`NodeVectors` protocol, so tests use a plain dict and
production reads the index (:class:`IndexNodeVectors`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from branchwise.errors import InputError
from branchwise.models.base import Embedder
from branchwise.navigation.slates import SlateItem
from branchwise.retrieval.tree import Tree
from branchwise.types import ScoredChunk

log = logging.getLogger(__name__)

#: A lexical search function: ``(query, k) -> hits`` best first (e.g. ``Index.search_bm25``).
Bm25Search = Callable[[str, int], Sequence[ScoredChunk]]


@runtime_checkable
class NodeVectors(Protocol):
    """Unit vectors of tree nodes: summaries for internal nodes, chunk texts for leaves."""

    def vectors(self, node_ids: Sequence[str]) -> np.ndarray:
        """Shape ``(len(node_ids), dim)``, L2-normalised rows; unknown ids raise InputError."""
        ...


@dataclass(slots=True)
class ArrayNodeVectors:
    """Node vectors held in memory: one matrix and an id → row map."""

    index: dict[str, int]
    matrix: np.ndarray

    @classmethod
    def from_mapping(cls, vectors: Mapping[str, np.ndarray]) -> ArrayNodeVectors:
        ids = list(vectors)
        mat = np.stack([np.asarray(vectors[i], dtype=np.float32) for i in ids]) if ids else np.zeros((0, 1), np.float32)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        unit = (mat / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        return cls(index={i: k for k, i in enumerate(ids)}, matrix=unit)

    def vectors(self, node_ids: Sequence[str]) -> np.ndarray:
        try:
            rows = [self.index[n] for n in node_ids]
        except KeyError as e:
            raise InputError(f"no vector for node {e.args[0]!r}.", fix="embed every node of the tree (rebuild the index).") from e
        return self.matrix[rows]


@dataclass
class IndexNodeVectors:
    """Node vectors read from an index (``node_embeddings`` / ``chunk_embeddings``), cached.

    Args:
        index: an object with ``node_embeddings(ids)`` and ``chunk_embeddings(ids)``
            (``branchwise.retrieval.index.Index``).
        tree: the index's tree (to tell leaves from internal nodes).
        cache_size: vectors kept in memory (LRU).
    """

    index: Any
    tree: Tree
    cache_size: int = 200_000

    def __post_init__(self) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def vectors(self, node_ids: Sequence[str]) -> np.ndarray:
        missing = [n for n in dict.fromkeys(node_ids) if n not in self._cache]
        leaves = [n for n in missing if self.tree[n].is_leaf]
        internal = [n for n in missing if not self.tree[n].is_leaf]
        if leaves:
            vecs = self.index.chunk_embeddings([self.tree[n].chunk_id for n in leaves])
            self._cache.update(zip(leaves, np.asarray(vecs, dtype=np.float32)))
        if internal:
            vecs = self.index.node_embeddings(internal)
            self._cache.update(zip(internal, np.asarray(vecs, dtype=np.float32)))
        for n in node_ids:
            self._cache.move_to_end(n)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return np.stack([self._cache[n] for n in node_ids]) if node_ids else np.zeros((0, 1), np.float32)


@runtime_checkable
class QueryPrior(Protocol):
    """Priors bound to one query: per source, one value in [0, 1] or None per item."""

    def scores(self, items: Sequence[SlateItem]) -> dict[str, list[float | None]]: ...


@dataclass(frozen=True, slots=True)
class RetrievalPriorConfig:
    """Which prior sources to compute.

    Attributes:
        dense: cosine of the query and node vectors (needs vectors and an embedder).
        bm25: BM25 for leaves (needs a BM25 search function).
        bm25_depth: BM25 hits fetched per query; leaves beyond them get 0.
        bm25_subtree: give internal nodes the best BM25 score below them (needs the tree).
    """

    dense: bool = True
    bm25: bool = True
    bm25_depth: int = 1000
    bm25_subtree: bool = True


@dataclass(slots=True)
class BoundPrior:
    """A :class:`QueryPrior` with the query embedding and BM25 scores already computed."""

    query_vector: np.ndarray | None
    vectors: NodeVectors | None
    bm25: dict[str, float] | None
    bm25_nodes: dict[str, float] | None = None

    def scores(self, items: Sequence[SlateItem]) -> dict[str, list[float | None]]:
        out: dict[str, list[float | None]] = {}
        if self.query_vector is not None and self.vectors is not None and items:
            cos = self.vectors.vectors([it.node_id for it in items]) @ self.query_vector
            out["dense"] = [float(max(0.0, min(1.0, c))) for c in cos]
        if self.bm25 is not None:
            nodes = self.bm25_nodes
            out["bm25"] = [
                self.bm25.get(it.chunk_id or "", 0.0) if it.is_leaf else (nodes.get(it.node_id, 0.0) if nodes is not None else None)
                for it in items
            ]
        return out


def subtree_max(tree: Tree, leaf_scores: Mapping[str, float]) -> dict[str, float]:
    """Internal node id → the best score among the chunks below it (chunk id → score)."""
    best: dict[str, float] = {}
    for chunk_id, score in leaf_scores.items():
        leaf = tree.leaf_for_chunk(chunk_id)
        if leaf is None:
            continue
        nid = leaf.parent
        while nid is not None and best.get(nid, -1.0) < score:
            best[nid] = score
            nid = tree[nid].parent
    return best


@dataclass
class RetrievalPrior:
    """Builds a :class:`BoundPrior` per query (one embedding call, one BM25 search).

    Args:
        vectors: node vectors (None disables the dense prior).
        embedder: embeds the query for the dense prior.
        bm25: lexical search function (None disables the BM25 prior).
        config: which sources to compute.
        tree: the tree, for the internal nodes' BM25 prior (None: leaves only).
    """

    vectors: NodeVectors | None = None
    embedder: Embedder | None = None
    bm25: Bm25Search | None = None
    config: RetrievalPriorConfig = RetrievalPriorConfig()
    tree: Tree | None = None

    def for_query(self, question: str) -> BoundPrior:
        qv = None
        if self.config.dense and self.vectors is not None and self.embedder is not None:
            qv = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        bm = None
        if self.config.bm25 and self.bm25 is not None:
            hits = list(self.bm25(question, self.config.bm25_depth))
            top = max((h.score for h in hits), default=0.0)
            bm = {h.chunk_id: (h.score / top if top > 0 else 0.0) for h in hits}
        nodes = subtree_max(self.tree, bm) if bm is not None and self.tree is not None and self.config.bm25_subtree else None
        return BoundPrior(query_vector=qv, vectors=self.vectors if qv is not None else None, bm25=bm, bm25_nodes=nodes)
