"""The flat retrievers over an index, by name (the agent's flat routes, eval baselines).

Each factory is ``factory(index) -> search`` where ``search(query, k)`` returns ranked
:class:`~branchwise.types.ScoredChunk` s.
"""

from __future__ import annotations

from branchwise.registry import Registry

RETRIEVERS: Registry = Registry("flat retriever", "--retrieval / AgentConfig.retrieval")
RETRIEVERS.register("hybrid", "branchwise.retrieval.search:hybrid_search", "BM25 + dense, reciprocal rank fusion")
RETRIEVERS.register("dense", "branchwise.retrieval.search:dense_search", "embedding nearest neighbours (Chroma)")
RETRIEVERS.register("bm25", "branchwise.retrieval.search:bm25_search", "BM25 over the chunks (bm25s)")
