"""The agent over a real ``Index`` (Chroma + BM25) and the real navigator (embedding scorer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_corpora import build_small_index
from agent_doubles import cite_source_with, plan_reply, routed

from branchwise.agents import Agent, AgentConfig
from branchwise.agents.tree_search import NavigatorSearch
from branchwise.errors import InputError
from branchwise.retrieval.index import Index
from branchwise.testing import HashingEmbedder
from branchwise.trees.navigator import NavigatorConfig
from branchwise.types import Chunk

QUESTION = "Where was Bram Stoker born?"


@pytest.fixture
def index(tmp_path: Path, chunks: list[Chunk]) -> Index:
    return build_small_index(tmp_path / "idx", HashingEmbedder(), chunks, group_size=2)


def llm_for_stoker():
    return routed(plan=plan_reply([("Bram Stoker", "born in", "?c")], []), p_yes=[0.9],
                  answer=cite_source_with("Clontarf", "He was born in Clontarf, Dublin."))


def test_tree_route_navigates_the_real_tree_and_embeds_its_trace(index: Index, tmp_path: Path) -> None:
    search = NavigatorSearch.embedding(index, NavigatorConfig(beam=2, iterations=4))
    agent = Agent(index, llm_for_stoker(), AgentConfig(retrieval="tree", max_rounds=1, k=2), tree_search=search)
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
    answer = Agent(index, llm_for_stoker(), AgentConfig(retrieval="hybrid", max_rounds=1, k=2)).ask(QUESTION)
    assert answer.citations[0].chunk_id == "stoker#0"
    assert answer.trace.retrievals[0]["source"] == "hybrid" and answer.trace.retrievals[0]["chunk_ids"][0] == "stoker#0"


def test_explicit_tree_route_without_a_tree_search_is_refused(index: Index) -> None:
    with pytest.raises(InputError, match="tree search"):
        Agent(index, llm_for_stoker(), AgentConfig(retrieval="tree"))
