"""LlamaIndex over a real branchwise index: the retriever navigates the tree, composes with
LlamaIndex's own query engine, and the branchwise agent runs as a query engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from llama_index.core.llms.mock import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore

from branchwise.assembly.settings import Settings
from branchwise.integrations.llamaindex import BranchwiseIndex, BranchwiseRetriever
from branchwise.models.base import Message
from branchwise.testing import ScriptedLLM

ETNA_Q = "Which city did the lava of Etna reach in 1669?"


def test_as_retriever_navigates_the_tree_and_returns_llamaindex_nodes(small_index: Path) -> None:
    retriever = BranchwiseIndex.from_dir(small_index, Settings()).as_retriever(similarity_top_k=2)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve(ETNA_Q)
    assert len(nodes) == 2 and all(isinstance(n, NodeWithScore) for n in nodes)
    top = nodes[0]
    assert top.node.node_id == "etna#0" and "Catania" in top.node.get_content()
    assert top.node.metadata == {"chunk_id": "etna#0", "doc_id": "etna", "title": "Etna", "retrieval": "tree"}
    assert nodes[0].score is not None and nodes[0].score >= nodes[1].score  # type: ignore[operator]
    # the route follows the settings: a flat retriever on request
    flat = BranchwiseRetriever.from_dir(small_index, Settings().replace(agent={"retrieval": "bm25"}), similarity_top_k=1)
    assert [n.node.metadata["retrieval"] for n in flat.retrieve("sourdough yeast")] == ["bm25"]


def test_the_retriever_plugs_into_a_llamaindex_query_engine(small_index: Path) -> None:
    retriever = BranchwiseRetriever.from_dir(small_index, Settings(), similarity_top_k=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
    response = engine.query("What does sourdough rise with?")
    assert [n.node.node_id for n in response.source_nodes][0] == "bread#0"
    assert isinstance(response.response, str) and response.response


def cite(messages: Sequence[Message]) -> str:
    """The branchwise answer step: cite the source that mentions Catania."""
    if "numbered sources" not in messages[0].content:
        return '{"triples": [], "sub_questions": []}'
    for n, text in re.findall(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', messages[-1].content, re.S):
        if "Catania" in text:
            return f"The lava reached Catania [{n}]."
    return "NOT_FOUND"


def test_the_branchwise_agent_as_a_query_engine_answers_with_cited_source_nodes(small_index: Path) -> None:
    llm = ScriptedLLM(cite)
    engine = BranchwiseIndex.from_dir(small_index, Settings().replace(agent={"max_rounds": 1}), llm=llm).as_query_engine()
    response = engine.query(ETNA_Q)
    assert str(response) == "The lava reached Catania [1]."
    assert [n.node.node_id for n in response.source_nodes] == ["etna#0"]
    assert response.metadata["found"] and response.metadata["citations"][0]["marker"] == "[1]"
    assert response.metadata["trace"]["navigation"]  # the agent navigated the tree
