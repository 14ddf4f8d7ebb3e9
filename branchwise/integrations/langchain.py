"""LangChain: a ``BaseRetriever`` over a branchwise index (extra ``langchain``).

    from branchwise.integrations.langchain import BranchwiseRetriever

    retriever = BranchwiseRetriever.from_dir("my-index", k=4)   # tree navigation, no LLM call
    docs = retriever.invoke("Which clustering scales?")         # [Document(page_content, metadata, id=chunk id)]

It is a Runnable like any LangChain retriever (``retriever | format_docs | prompt | llm``,
``create_retrieval_chain``, LangGraph tools). The route is the agent's
(``settings.agent.retrieval``: the tree when the index has one), assembled by the
composition root from a :class:`branchwise.Settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwise.errors import MissingDependencyError
from branchwise.integrations.search import IndexSearch

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError as e:
    raise MissingDependencyError("langchain-core", "langchain", "the LangChain integration") from e

if TYPE_CHECKING:
    from branchwise.assembly.settings import Settings
    from branchwise.models.base import LLM
    from branchwise.retrieval.index import Index


class BranchwiseRetriever(BaseRetriever):
    """A LangChain retriever that navigates a branchwise index's semantic tree.

    Attributes:
        search: the :class:`~branchwise.integrations.search.IndexSearch` it runs.
        k: documents returned per query.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: IndexSearch
    k: int = 4

    @classmethod
    def from_dir(cls, path: "str | Path | Index", settings: "Settings | None" = None, *, llm: "LLM | None" = None,
                 k: int = 4, **kwargs: Any) -> "BranchwiseRetriever":
        """A retriever over the built index at ``path``."""
        return cls(search=IndexSearch(path, settings, llm=llm), k=k, **kwargs)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(id=h.chunk.id, page_content=h.chunk.text,
                         metadata={"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "title": h.chunk.title,
                                   "score": h.score, "retrieval": h.source})
                for h in self.search.search(query, self.k)]
