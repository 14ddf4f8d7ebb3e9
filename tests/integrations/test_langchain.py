"""LangChain over a real branchwise index: the retriever navigates the tree, runs as a Runnable
in a chain, and a missing langchain-core names the extra to install."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from branchwise.assembly.settings import Settings
from branchwise.errors import MissingDependencyError
from branchwise.integrations.langchain import BranchwiseRetriever

ETNA_Q = "Which city did the lava of Etna reach in 1669?"


def test_the_retriever_returns_documents_from_tree_navigation(small_index: Path) -> None:
    retriever = BranchwiseRetriever.from_dir(small_index, Settings(), k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(ETNA_Q)
    assert len(docs) == 2 and all(isinstance(d, Document) for d in docs)
    assert docs[0].id == "etna#0" and "Catania" in docs[0].page_content
    assert docs[0].metadata["retrieval"] == "tree" and docs[0].metadata["doc_id"] == "etna"
    assert docs[0].metadata["score"] >= docs[1].metadata["score"]


def test_the_retriever_composes_in_a_chain(small_index: Path) -> None:
    retriever = BranchwiseRetriever.from_dir(small_index, Settings(), k=1)
    chain = retriever | RunnableLambda(lambda docs: "\n".join(f"[{d.metadata['title']}] {d.page_content}" for d in docs))
    assert chain.invoke("What does sourdough rise with?").startswith("[Bread] Bread is baked")
    assert [len(d) for d in retriever.batch([ETNA_Q, "pizza oven temperature"])] == [1, 1]


def test_a_missing_langchain_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "branchwise.integrations.langchain")
    monkeypatch.setitem(sys.modules, "langchain_core.retrievers", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"branchwise\[langchain\]"):
        importlib.import_module("branchwise.integrations.langchain")
