"""branchwise: agentic RAG over hierarchical indices.

Quickstart::

    import branchwise as bw

    index = bw.build_index("docs/", "my-index")          # embedded default models, offline
    answer = bw.ask(index, "How does calibration change path relevance?")
    print(answer.text)
    for c in answer.citations:
        print(c.marker, c.chunk_id)

The facade functions compose objects from the stage packages (``retrieval``, ``trees``,
``graph``, ``agents``, ``generation``, ``evals``); every piece is importable and injectable
on its own. Heavy names are imported lazily so ``import branchwise`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from branchwise.config import Settings
from branchwise.errors import (
    BackendError,
    BranchwiseError,
    BudgetExceeded,
    IndexFormatError,
    InputError,
    MissingDependencyError,
    OutputParseError,
)
from branchwise.facade import (
    add_documents,
    ask,
    build_agent,
    build_index,
    delete_documents,
    load_models,
    make_scorer,
    open_index,
)
from branchwise.types import Answer, Chunk, Citation, Document, Evidence, EvidencePool, ScoredChunk, Usage

__version__ = "0.1.0"

_LAZY = {
    "Index": "branchwise.retrieval.index",
    "Tree": "branchwise.retrieval.tree",
    "Node": "branchwise.retrieval.tree",
    "TreeConfig": "branchwise.indexing.tree_build",
    "NavigatorConfig": "branchwise.navigation.navigator",
    "Navigator": "branchwise.navigation.navigator",
    "TraversalTrace": "branchwise.navigation.trace",
    "Agent": "branchwise.agents.agent",
    "AgentConfig": "branchwise.agents.config",
    "AgentTrace": "branchwise.agents.trace",
    "CompressionConfig": "branchwise.compression.base",
    "IndexConfig": "branchwise.indexing.pipeline",
    "make_llm": "branchwise.models.factory",
    "make_embedder": "branchwise.models.factory",
}

__all__ = [
    "Answer", "BackendError", "BranchwiseError", "BudgetExceeded", "Chunk", "Citation", "Document", "Evidence",
    "EvidencePool", "IndexFormatError", "InputError", "MissingDependencyError", "OutputParseError", "ScoredChunk",
    "Settings", "Usage", "add_documents", "ask", "build_agent", "build_index", "delete_documents", "load_models",
    "make_scorer", "open_index",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'branchwise' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
