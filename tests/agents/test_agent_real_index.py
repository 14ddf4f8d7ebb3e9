"""The agent over a real ``Index`` (Chroma + BM25) and the real navigator (embedding scorer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_corpora import build_small_index
from agent_doubles import cite_source_with, plan_reply, routed

from branchwise.agents import Agent, AgentConfig
from branchwise.agents.tree_search import NavigatorSearch
from branchwise.errors import InputError
from branchwise.compression.base import CompressionConfig, make_compressor
from branchwise.retrieval.index import Index
from branchwise.testing import HashingEmbedder
from branchwise.navigation.navigator import NavigatorConfig
from branchwise.types import Chunk

QUESTION = "Where was Bram Stoker born?"


@pytest.fixture
def index(tmp_path: Path, chunks: list[Chunk]) -> Index:
    return build_small_index(tmp_path / "idx", HashingEmbedder(), chunks, group_size=2)


def llm_for_stoker():
    return routed(
        plan=plan_reply([("Bram Stoker", "born in", "?c")], []),
        p_yes=[0.9],
        answer=cite_source_with("Clontarf", "He was born in Clontarf, Dublin."),
    )


def test_tree_route_navigates_the_real_tree_and_embeds_its_trace(index: Index, tmp_path: Path) -> None:
    search = NavigatorSearch.embedding(index, NavigatorConfig(beam=2, iterations=4))
    agent = Agent(index, llm_for_stoker(), AgentConfig.rfm(retrieval="tree", max_rounds=1, k=2), tree_search=search)
    events = list(agent.stream(QUESTION))
    answer = events[-1].answer
    assert answer is not None and answer.found
    assert [c.chunk_id for c in answer.citations] == ["stoker#0"]
    trace = answer.trace
    assert [r["source"] for r in trace.retrievals] == ["tree"]
    assert "stoker#0" in trace.retrievals[0]["chunk_ids"]
    nav = trace.navigation[0]
    assert nav.question == QUESTION and nav.scorer == "embedding" and nav.steps
    assert nav.steps[0].expanded == "root" and nav.ranked[0][1] in trace.retrievals[0]["chunk_ids"]
    progress = [e.message for e in events if e.kind == "progress"]
    assert any(m.startswith("navigating level 2") for m in progress)
    assert any(m.startswith("navigation done") for m in progress)
    trace.save(tmp_path / "t.json")
    assert type(trace).load(tmp_path / "t.json").navigation[0].to_dict() == nav.to_dict()


def test_hybrid_route_over_chroma_and_bm25(index: Index) -> None:
    answer = Agent(index, llm_for_stoker(), AgentConfig.rfm(retrieval="hybrid", max_rounds=1, k=2)).ask(QUESTION)
    assert answer.citations[0].chunk_id == "stoker#0"
    assert answer.trace.retrievals[0]["source"] == "hybrid" and answer.trace.retrievals[0]["chunk_ids"][0] == "stoker#0"


def test_explicit_tree_route_without_a_tree_search_is_refused(index: Index) -> None:
    with pytest.raises(InputError, match="tree search"):
        Agent(index, llm_for_stoker(), AgentConfig.rfm(retrieval="tree"))


def test_real_extractive_compressor_plugs_in_and_citations_survive(index: Index) -> None:
    compressor = make_compressor(CompressionConfig(mode="extractive"), embedder=HashingEmbedder())
    cfg = AgentConfig.rfm(retrieval="hybrid", max_rounds=1, k=4, context_budget_tokens=30)
    answer = Agent(index, llm_for_stoker(), cfg, compressor=compressor).ask(QUESTION)
    comp = answer.trace.compression
    assert comp["method"] == "extractive" and 0 < comp["tokens_after"] <= 30 < comp["tokens_before"]
    assert comp["ratio"] == pytest.approx(comp["tokens_after"] / comp["tokens_before"], abs=1e-4)
    assert answer.context_tokens == comp["tokens_after"]
    # the kept sentence still carries its chunk id, so the citation points at the right chunk
    assert [c.chunk_id for c in answer.citations] == ["stoker#0"]


def test_graph_route_with_the_real_graph_retriever_for_a_relational_question(index: Index) -> None:
    from branchwise.graph.retrieve import GraphRetriever
    from branchwise.graph.types import KnowledgeGraph, Mention, Relation

    kg = KnowledgeGraph()
    for eid, name, chunk_ids in [
        ("e_stoker", "Bram Stoker", ["dracula#0", "stoker#0"]),
        ("e_dracula", "Dracula", ["dracula#0"]),
        ("e_dublin", "Dublin", ["stoker#0", "liffey#0"]),
        ("e_liffey", "River Liffey", ["liffey#0"]),
    ]:
        for cid in chunk_ids:
            kg.add_mention(eid, Mention(chunk_id=cid, doc_id=cid.split("#")[0], name=name))
    for s, p, o, cid in [
        ("e_stoker", "author of", "e_dracula", "dracula#0"),
        ("e_stoker", "born in", "e_dublin", "stoker#0"),
        ("e_liffey", "flows through", "e_dublin", "liffey#0"),
    ]:
        kg.add_relation(Relation(id=Relation.make_id(s, p, o, cid), subject=s, predicate=p, object=o, chunk_id=cid))
    graph_search = GraphRetriever(kg, HashingEmbedder(), chunks=index.chunks)
    llm = routed(
        plan=plan_reply([("?a", "author of", "Dracula"), ("?a", "born in", "?c"), ("?r", "flows through", "?c")], []),
        answer=cite_source_with("Liffey", "The River Liffey."),
    )
    cfg = AgentConfig.rfm(retrieval="hybrid", graph="auto", max_rounds=1, k=3, max_subqueries=1)
    question = "Which river flows through the city where the author of Dracula was born?"
    answer = Agent(index, llm, cfg, graph_search=graph_search).ask(question)
    graph_hits = [r for r in answer.trace.retrievals if r["source"] == "graph"]
    assert answer.trace.relational and graph_hits and graph_hits[0]["chunk_ids"]
    assert set(graph_hits[0]["chunk_ids"]) <= {"dracula#0", "stoker#0", "liffey#0"}
    assert answer.citations[0].chunk_id == "liffey#0"
