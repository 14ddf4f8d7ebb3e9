"""branchwise: agentic RAG over hierarchical indices.

Quickstart::

    import branchwise as bw

    index = bw.build_index("docs/", "my-index")          # embedded default models, offline
    answer = bw.ask(index, "How does calibration change path relevance?")
    print(answer.text)
    for c in answer.citations:
        print(c.marker, c.chunk_id)

The facade functions call the composition root (:mod:`branchwise.assembly.root`), which
assembles the stage packages from one :class:`Settings`; every piece is importable and
injectable on its own. Heavy names are imported lazily so ``import branchwise`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from branchwise.assembly.settings import Settings
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
    demo_corpus_dir,
    load_models,
    load_trace,
    make_scorer,
    open_index,
)
from branchwise.offline import apply_offline_defaults
from branchwise.types import Answer, Chunk, Citation, Document, Evidence, EvidencePool, ScoredChunk, Usage

__version__ = "0.1.0"

_LAZY = {
    "Index": "branchwise.retrieval.index",
    "Tree": "branchwise.retrieval.tree",
    "Node": "branchwise.retrieval.tree",
    "IndexConfig": "branchwise.indexing.pipeline",
    "IndexBuildConfig": "branchwise.indexing.chunk_stage",
    "ChunkingConfig": "branchwise.retrieval.chunking",
    "IngestConfig": "branchwise.retrieval.ingest",
    "TreeConfig": "branchwise.indexing.tree_build",
    "SummaryConfig": "branchwise.indexing.summarize",
    "NavigatorConfig": "branchwise.navigation.navigator",
    "Navigator": "branchwise.navigation.navigator",
    "TraversalTrace": "branchwise.navigation.trace",
    "Agent": "branchwise.agents.agent",
    "AgentConfig": "branchwise.agents.config",
    "AgentEvent": "branchwise.agents.events",
    "AgentTrace": "branchwise.agents.trace",
    "CompressionConfig": "branchwise.compression.base",
    "ExtractiveConfig": "branchwise.compression.extractive",
    "Assembly": "branchwise.assembly.root",
    "make_llm": "branchwise.models.factory",
    "make_embedder": "branchwise.models.factory",
    "render_answer": "branchwise.cli.render",
    "render_tree_paths": "branchwise.cli.render",
}

#: submodules reachable as attributes (``bw.trace_view.draw_traversal(...)``), imported on use
_MODULES = {"trace_view": "branchwise.ui.trace_view"}

__all__ = [
    "Answer", "BackendError", "BranchwiseError", "BudgetExceeded", "Chunk", "Citation", "Document", "Evidence",
    "EvidencePool", "IndexFormatError", "InputError", "MissingDependencyError", "OutputParseError", "ScoredChunk",
    "Settings", "Usage", "add_documents", "apply_offline_defaults", "ask", "build_agent", "build_index",
    "delete_documents", "demo_corpus_dir", "load_models", "load_trace", "make_scorer", "open_index",
    *_LAZY, *_MODULES,
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'branchwise' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
