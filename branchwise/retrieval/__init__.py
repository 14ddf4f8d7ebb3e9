"""Ingestion, chunking, the index directory (its manifest, chunks, vectors, BM25 and tree), and
flat (dense / BM25 / hybrid) retrieval. Building an index is :mod:`branchwise.indexing`.

    load_documents ─▶ chunk_documents ─▶ Index (manifest.json, chunks.jsonl, chroma/, bm25/, tree.json)
                                            └─ search_dense / search_bm25 / search_hybrid

Names are re-exported lazily (PEP 562) so that importing a light submodule such as
``branchwise.retrieval.manifest`` does not pull in Chroma, bm25s or llama-index.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "IngestConfig": "ingest",
    "load_documents": "ingest",
    "ChunkingConfig": "chunking",
    "Chunker": "chunking",
    "chunk_documents": "chunking",
    "Manifest": "manifest",
    "EmbedderInfo": "manifest",
    "ChunkStore": "chunkstore",
    "VectorStore": "store",
    "ChromaStore": "store",
    "ChromaConfig": "store",
    "make_store": "store",
    "BM25Index": "bm25",
    "BM25Config": "bm25",
    "Retriever": "search",
    "DenseRetriever": "search",
    "BM25Retriever": "search",
    "HybridRetriever": "search",
    "HybridConfig": "search",
    "reciprocal_rank_fusion": "search",
    "Index": "index",
    "Tree": "tree",
    "Node": "tree",
}

__all__ = [
    "BM25Config",
    "BM25Index",
    "BM25Retriever",
    "ChromaConfig",
    "ChromaStore",
    "ChunkStore",
    "Chunker",
    "ChunkingConfig",
    "DenseRetriever",
    "EmbedderInfo",
    "HybridConfig",
    "HybridRetriever",
    "Index",
    "IngestConfig",
    "Manifest",
    "Node",
    "Retriever",
    "Tree",
    "VectorStore",
    "chunk_documents",
    "load_documents",
    "make_store",
    "reciprocal_rank_fusion",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from branchwise.retrieval.bm25 import BM25Config, BM25Index
    from branchwise.retrieval.chunking import Chunker, ChunkingConfig, chunk_documents
    from branchwise.retrieval.chunkstore import ChunkStore
    from branchwise.retrieval.index import Index
    from branchwise.retrieval.ingest import IngestConfig, load_documents
    from branchwise.retrieval.manifest import EmbedderInfo, Manifest
    from branchwise.retrieval.search import (
        BM25Retriever,
        DenseRetriever,
        HybridConfig,
        HybridRetriever,
        Retriever,
        reciprocal_rank_fusion,
    )
    from branchwise.retrieval.store import ChromaConfig, ChromaStore, VectorStore, make_store
    from branchwise.retrieval.tree import Node, Tree
