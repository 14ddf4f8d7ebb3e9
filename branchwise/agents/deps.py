"""What the agent's nodes need at run time, injected through LangGraph's runtime context.

The compiled graph holds no clients: the index, the LLM and the optional retrievers and
compressor arrive per run as an :class:`AgentDeps` (``graph.invoke(..., context=deps)``),
and nodes read them from ``runtime.context``. Each pluggable part is a Protocol, so the
real objects (``retrieval.index.Index``, ``trees.navigate``, ``graph.retrieve.GraphRetriever``,
``generation.compress`` compressors) and test doubles are interchangeable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from branchwise.agents.config import AgentConfig
from branchwise.errors import InputError
from branchwise.compression.base import Compressor
from branchwise.models.base import LLM
from branchwise.relevance.base import Reranker
from branchwise.types import Chunk, Evidence, ScoredChunk, Usage


@runtime_checkable
class ChunkLookup(Protocol):
    """Chunk texts by id (``Index.chunks``)."""

    def get(self, chunk_id: str) -> Chunk: ...


@runtime_checkable
class ChunkIndex(Protocol):
    """The flat retrieval surface of ``retrieval.index.Index`` the agent routes to."""

    @property
    def chunks(self) -> ChunkLookup: ...

    def search_dense(self, query: str, k: int) -> list[ScoredChunk]: ...

    def search_bm25(self, query: str, k: int) -> list[ScoredChunk]: ...

    def search_hybrid(self, query: str, k: int) -> list[ScoredChunk]: ...


@dataclass(slots=True)
class TreeSearchResult:
    """Leaves found by one tree navigation.

    Attributes:
        hits: leaf chunks ranked by path relevance, scores in [0, 1].
        trace: the navigation's ``TraversalTrace`` as a JSON dict (``to_dict()``).
        usage: scorer calls and tokens the navigation spent.
    """

    hits: list[ScoredChunk]
    trace: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class TreeSearch(Protocol):
    """Navigates the semantic tree for a query (see :mod:`branchwise.agents.tree_search`).

    ``on_progress`` receives short lines ("navigating level 2") while it runs.
    """

    def search(self, query: str, k: int, on_progress: Callable[[str], None] | None = None) -> TreeSearchResult: ...


@runtime_checkable
class SummarySearch(Protocol):
    """The tree's internal summaries most similar to a query, as evidence cited through a leaf
    (``navigation.collapsed.CollapsedTree``)."""

    def summaries(self, query: str, n: int) -> list[Evidence]: ...


@runtime_checkable
class GraphSearch(Protocol):
    """GRAG-style graph retrieval (``graph.retrieve.GraphRetriever``)."""

    def retrieve(self, query: str, k: int) -> list[Evidence]: ...


@dataclass(slots=True)
class AgentDeps:
    """The run-time dependencies of the agent graph (its LangGraph context).

    Attributes:
        index: flat retrieval (dense, BM25, hybrid) and chunk texts.
        llm: the LLM used for planning, distillation, feedback, gap queries and answers.
        tree_search: navigates the semantic tree; None disables the tree route.
        graph_search: graph retrieval; None disables the graph route.
        compressor: context compressor; None passes the pool through, truncated to the
            token budget.
        provenance: what assembled these deps (index path, model specs, settings; no
            credentials), recorded in every run's trace. The composition root fills it.
        reranker: orders the evidence pool (the rerank node), scores the second hop's
            sentences; None keeps the retrieval routes' order.
        summary_search: the tree's internal summaries as evidence (``AgentConfig.summaries``);
            None disables the summary route.
    """

    index: ChunkIndex
    llm: LLM
    tree_search: TreeSearch | None = None
    graph_search: GraphSearch | None = None
    compressor: Compressor | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    reranker: Reranker | None = None
    summary_search: SummarySearch | None = None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """An opaque schema for LangGraph's context introspection (``get_context_jsonschema``).

        The deps are live objects, never JSON, so a server cannot set them per run; it
        gets them from the graph factory (:func:`branchwise.server.langgraph_app.make_graph`).
        """
        from pydantic_core import core_schema

        return core_schema.any_schema()

    def __post_init__(self) -> None:
        if not isinstance(self.llm, LLM):
            raise InputError(
                f"AgentDeps.llm must implement the LLM protocol, got {type(self.llm).__name__}.",
                fix="pass a backend from branchwise.models.factory.make_llm(...).",
            )


@dataclass(frozen=True, slots=True)
class GraphEnv:
    """What ``build_graph`` binds into every node and router (with ``functools.partial``).

    Attributes:
        config: the agent configuration (fixed when the graph is built).
        default_deps: deps to use when a run passes no context: a ready
            :class:`AgentDeps`, or a zero-argument provider called on first use (how the
            ``langgraph dev`` factory defers loading the model until a run needs it).
    """

    config: AgentConfig
    default_deps: AgentDeps | Callable[[], AgentDeps] | None = None

    def deps(self, context: object) -> AgentDeps:
        """The deps of a run: the runtime context, else the ones bound at build time."""
        if isinstance(context, AgentDeps):
            return context
        if isinstance(self.default_deps, AgentDeps):
            return self.default_deps
        if self.default_deps is not None:
            return self.default_deps()
        raise InputError(
            "the agent graph was run without its dependencies (index, llm).",
            fix="invoke it with context=AgentDeps(index=..., llm=...), use branchwise.agents.Agent, "
            "or build it with build_graph(config, deps=...).",
        )


def chunk_texts(index: ChunkIndex, ids: Sequence[str]) -> dict[str, Chunk]:
    """Chunks by id; ids the index no longer has are skipped (a stale tree leaf)."""
    out: dict[str, Chunk] = {}
    for cid in ids:
        try:
            out[cid] = index.chunks.get(cid)
        except KeyError:
            continue
    return out
