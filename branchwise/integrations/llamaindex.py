"""LlamaIndex: a retriever, a query engine and an ``as_retriever()``-style handle over a branchwise index.

    from branchwise.integrations.llamaindex import BranchwiseIndex

    index = BranchwiseIndex.from_dir("my-index")             # a built branchwise index
    retriever = index.as_retriever(similarity_top_k=4)        # LlamaIndex BaseRetriever: tree navigation
    nodes = retriever.retrieve("Which clustering scales?")    # [NodeWithScore(TextNode(id_=chunk id, ...))]
    engine = index.as_query_engine()                          # the branchwise agent: cited answers
    response = engine.query("Which clustering scales?")       # Response(text, source_nodes=cited chunks)

The retriever plugs into any LlamaIndex pipeline (``RetrieverQueryEngine``, routers,
postprocessors) with LlamaIndex's own LLM; the query engine runs branchwise's whole agent
(planning, evidence feedback, compression, citations) with branchwise's LLM. Both are
assembled by the composition root from a :class:`branchwise.Settings`.
llama-index-core is a core dependency of branchwise (extra ``llamaindex`` adds nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwise.errors import MissingDependencyError
from branchwise.integrations.search import Hit, IndexSearch

try:
    from llama_index.core.base.response.schema import Response
    from llama_index.core.query_engine import CustomQueryEngine
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover - llama-index-core is a core dependency
    raise MissingDependencyError("llama-index-core", "llamaindex", "the LlamaIndex integration") from e

if TYPE_CHECKING:
    from branchwise.assembly.settings import Settings
    from branchwise.models.base import LLM
    from branchwise.retrieval.index import Index


def to_node(hit: Hit) -> NodeWithScore:
    """A LlamaIndex node of a branchwise hit (the node id is the chunk id)."""
    c = hit.chunk
    metadata = {"chunk_id": c.id, "doc_id": c.doc_id, "title": c.title, "retrieval": hit.source}
    node = TextNode(id_=c.id, text=c.text, metadata=metadata,
                    excluded_embed_metadata_keys=list(metadata), excluded_llm_metadata_keys=["chunk_id", "retrieval"])
    return NodeWithScore(node=node, score=hit.score)


class BranchwiseRetriever(BaseRetriever):
    """A LlamaIndex retriever that navigates a branchwise index's semantic tree.

    Args:
        search: an :class:`~branchwise.integrations.search.IndexSearch` (or use :meth:`from_dir`).
        similarity_top_k: nodes returned per query.
    """

    def __init__(self, search: IndexSearch, similarity_top_k: int = 4, **kwargs: Any) -> None:
        self.search = search
        self.similarity_top_k = similarity_top_k
        super().__init__(**kwargs)

    @classmethod
    def from_dir(cls, path: "str | Path | Index", settings: "Settings | None" = None, *, llm: "LLM | None" = None,
                 similarity_top_k: int = 4) -> "BranchwiseRetriever":
        return cls(IndexSearch(path, settings, llm=llm), similarity_top_k)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [to_node(h) for h in self.search.search(query_bundle.query_str, self.similarity_top_k)]


class BranchwiseQueryEngine(CustomQueryEngine):
    """The branchwise agent as a LlamaIndex query engine: a cited answer per query.

    ``response.source_nodes`` are the cited chunks (in citation order); ``response.metadata``
    holds the citations, ``found`` and the agent trace (``AgentTrace.to_dict()``).
    """

    search: Any

    def custom_query(self, query_str: str) -> Response:
        answer = self.search.agent().ask(query_str)
        chunks = self.search.index.chunks
        nodes = [to_node(Hit(chunks.get(c.chunk_id), 1.0, "citation")) for c in answer.citations]
        metadata = {"citations": [{"marker": c.marker, "chunk_id": c.chunk_id, "title": c.title} for c in answer.citations],
                    "found": answer.found, "trace": answer.trace.to_dict() if answer.trace is not None else None}
        return Response(response=answer.text, source_nodes=nodes, metadata=metadata)


class BranchwiseIndex:
    """A branchwise index with LlamaIndex's index handle methods.

    Args:
        search: an :class:`~branchwise.integrations.search.IndexSearch`.
    """

    def __init__(self, search: IndexSearch) -> None:
        self.search = search

    @classmethod
    def from_dir(cls, path: "str | Path | Index", settings: "Settings | None" = None, *,
                 llm: "LLM | None" = None) -> "BranchwiseIndex":
        """Open a built index (``settings``: what to assemble; default from the environment)."""
        return cls(IndexSearch(path, settings, llm=llm))

    def as_retriever(self, similarity_top_k: int = 4, **kwargs: Any) -> BranchwiseRetriever:
        return BranchwiseRetriever(self.search, similarity_top_k, **kwargs)

    def as_query_engine(self, **kwargs: Any) -> BranchwiseQueryEngine:
        return BranchwiseQueryEngine(search=self.search, **kwargs)
