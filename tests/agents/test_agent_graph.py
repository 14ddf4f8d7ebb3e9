"""The compiled agent graph run end to end with real LangGraph (scripted LLM, lexical index)."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path
from typing import Callable

import pytest
from agent_doubles import DRACULA_PLAN, DRACULA_Q, FakeIndex, RoutedLLM, cite_source_with, plan_reply, routed
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.errors import GraphRecursionError
from langgraph.runtime import Runtime

from branchwise.agents import Agent, AgentConfig, AgentDeps, AgentTrace, build_graph
from branchwise.agents.deps import GraphEnv, TreeSearchResult
from branchwise.agents.routers import after_feedback, route_retrieval
from branchwise.errors import BackendError, InputError
from branchwise.types import Evidence, ScoredChunk, Usage

REPO = Path(__file__).resolve().parents[2]
STOKER_Q = "Where was Bram Stoker born?"
STOKER_PLAN = plan_reply([("Bram Stoker", "born in", "?c")], ["Bram Stoker birthplace"])


def stoker_llm(**scripts: object) -> RoutedLLM:
    defaults = {
        "plan": STOKER_PLAN,
        "answer": cite_source_with("Clontarf", "Bram Stoker was born in Clontarf, Dublin."),
    }
    return routed(**(defaults | scripts))


def test_sufficient_pool_stops_after_one_round_with_the_right_citation(fake_index: FakeIndex) -> None:
    llm = stoker_llm(p_yes=[0.95])
    answer = Agent(fake_index, llm, AgentConfig.rfm(max_rounds=3)).ask(STOKER_Q)
    assert answer.found and "Clontarf" in answer.text
    assert [c.chunk_id for c in answer.citations] == ["stoker#0"]
    trace: AgentTrace = answer.trace
    assert len(trace.rounds) == 1 and trace.stop_reason == "sufficient"
    assert trace.rounds[0]["feedback"]["p_yes"] == pytest.approx(0.95)
    assert llm.counts == {"plan": 1, "feedback": 1, "answer": 1}
    assert answer.usage.llm_calls == 3 and answer.context_tokens == trace.compression["tokens_after"] > 0


def test_insufficient_pool_issues_a_gap_query_and_finds_the_missing_hop(fake_index: FakeIndex) -> None:
    llm = routed(
        plan=DRACULA_PLAN,
        p_yes=[0.1, 0.9],
        answer=cite_source_with("Liffey", "The River Liffey flows through Dublin, Stoker's birthplace."),
    )
    cfg = AgentConfig.rfm(max_rounds=3, k=2, max_subqueries=2)
    answer = Agent(fake_index, llm, cfg).ask(DRACULA_Q)
    trace = answer.trace
    assert [r["decision"] for r in trace.rounds] == ["continue", "answer"]
    first_queries, gap_queries = trace.rounds[0]["queries"], trace.rounds[1]["queries"]
    assert first_queries == [DRACULA_Q, "Who wrote Dracula?"]
    assert gap_queries and not set(gap_queries) & set(first_queries)
    # round 0 found the river and the novel; the birthplace hop is the gap, described via
    # the resolved triple (?a = the author of Dracula)
    assert [t["relation"] for t in trace.rounds[0]["feedback"]["unresolved"]] == ["born in"]
    assert gap_queries == ["author of Dracula born in"]
    assert "stoker#0" in trace.rounds[1]["new_chunk_ids"] and "stoker#0" not in trace.rounds[0]["new_chunk_ids"]
    assert [c.chunk_id for c in answer.citations] == ["liffey#0"]


GAPS = ['{"query": "Clontarf"}', '{"query": "Dublin"}', '{"query": "Ireland"}', '{"query": "theatre"}']


def test_loop_is_bounded_by_max_rounds_not_the_recursion_limit(fake_index: FakeIndex) -> None:
    llm = stoker_llm(p_yes=[0.05], gap=GAPS)
    cfg = AgentConfig.rfm(max_rounds=4, k=1, max_subqueries=1, gap_query="llm", max_llm_calls=50)
    answer = Agent(fake_index, llm, cfg).ask(STOKER_Q)
    trace = answer.trace
    assert len(trace.rounds) == 4 and trace.stop_reason == "max_rounds"
    assert [r["queries"] for r in trace.rounds] == [[STOKER_Q], ["Clontarf"], ["Dublin"], ["Ireland"]]
    assert llm.counts["feedback"] == 3  # the last round's judgement is skipped: it cannot change anything
    # the derived recursion limit has a margin of one round: without it the same run dies
    with pytest.raises(GraphRecursionError):
        build_graph(cfg).invoke(
            {"question": STOKER_Q},
            {"recursion_limit": 3 + 4 * 3},
            context=AgentDeps(fake_index, stoker_llm(p_yes=[0.05], gap=GAPS)),
        )


def test_loop_ends_when_there_is_nothing_new_to_search(fake_index: FakeIndex) -> None:
    llm = stoker_llm(p_yes=[0.05])  # insufficient, but the only triple is covered: no gap query
    answer = Agent(fake_index, llm, AgentConfig.rfm(max_rounds=4, k=1, max_subqueries=1)).ask(STOKER_Q)
    assert len(answer.trace.rounds) == 1 and answer.trace.stop_reason == "no_new_query"
    assert answer.found


def test_call_budget_stops_the_loop_and_still_answers(fake_index: FakeIndex) -> None:
    llm = stoker_llm(p_yes=[0.05], gap=GAPS)
    cfg = AgentConfig.rfm(max_rounds=5, max_llm_calls=3, k=1, gap_query="llm")
    answer = Agent(fake_index, llm, cfg).ask(STOKER_Q)
    # plan + feedback + gap query spend the 3 calls; round 1's judgement is skipped
    assert answer.trace.stop_reason == "call_budget" and len(answer.trace.rounds) == 2
    assert llm.counts == {"plan": 1, "feedback": 1, "gap": 1, "answer": 1}
    assert answer.found and answer.usage.llm_calls == 4


def test_malformed_plan_falls_back_to_the_question_and_is_recorded(fake_index: FakeIndex) -> None:
    llm = stoker_llm(plan=["{{{ not json", "still not json"])
    answer = Agent(fake_index, llm, AgentConfig.rfm(max_rounds=1)).ask(STOKER_Q)
    assert answer.found and answer.citations[0].chunk_id == "stoker#0"
    assert answer.trace.subqueries == [STOKER_Q] and answer.trace.triples == []
    assert [(n["node"], n["kind"]) for n in answer.trace.notes] == [("plan", "fallback")]
    assert llm.counts["plan"] == 2


def test_unsupported_question_answers_not_found(fake_index: FakeIndex) -> None:
    llm = routed(plan=plan_reply([("?x", "founded", "Rome")], []), answer="NOT_FOUND")
    answer = Agent(fake_index, llm, AgentConfig.rfm(max_rounds=1)).ask("Who founded Rome?")
    assert not answer.found and answer.text == "Not found in the corpus." and answer.citations == []
    assert answer.trace.answer["found"] is False


class FakeTree:
    def search(self, query: str, k: int, on_progress: Callable[[str], None] | None = None) -> TreeSearchResult:
        if on_progress:
            on_progress("navigating level 1")
        trace = {
            "schema": "branchwise.trace/1",
            "question": query,
            "iterations": 2,
            "stop_reason": "exhausted",
            "steps": [{"iteration": 1, "expanded": "n0", "items": ["l1"], "roles": ["child"], "raw_scores": [0.9]}],
            "ranked": [["l1", "stoker#0", 0.9]],
            "llm_calls": 1,
            "prompt_tokens": 50,
        }
        return TreeSearchResult([ScoredChunk("stoker#0", 0.9, "tree")], trace, Usage(llm_calls=1, prompt_tokens=50))


class FakeGraph:
    def retrieve(self, query: str, k: int) -> list[Evidence]:
        return [Evidence("dracula#0", "(Bram Stoker) -[author of]-> (Dracula)", 0.6, title="Dracula")]


def test_parallel_routes_merge_into_one_deduplicated_pool_and_traces_round_trip(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    llm = routed(plan=DRACULA_PLAN, p_yes=[0.9], answer=cite_source_with("Clontarf", "Dublin."))
    cfg = AgentConfig.rfm(retrieval="tree+hybrid", graph="auto", max_rounds=2, k=3, max_subqueries=1)
    agent = Agent(fake_index, llm, cfg, tree_search=FakeTree(), graph_search=FakeGraph())
    answer = agent.ask(DRACULA_Q)
    trace = answer.trace
    assert {r["source"] for r in trace.retrievals} == {"tree", "hybrid", "graph"}
    ids = [cid for r in trace.retrievals for cid in r["chunk_ids"]]
    assert len(ids) > len(set(ids))  # routes overlapped ...
    assert trace.rounds[0]["pool_size"] == len(set(ids))  # ... and the pool has each chunk once
    assert len(trace.navigation) == 1 and trace.navigation[0].steps[0].expanded == "n0"
    assert answer.usage.llm_calls == 1 + 1 + 1 + 1  # plan, navigation scorer, feedback, answer
    path = tmp_path / "trace.json"
    trace.save(path)
    loaded = AgentTrace.load(path)
    assert loaded.to_dict() == trace.to_dict()
    assert json.loads(path.read_text())["schema"] == "branchwise.agent_trace/1"


def test_streaming_yields_steps_progress_tokens_then_the_answer(fake_index: FakeIndex) -> None:
    llm = stoker_llm(p_yes=[0.9])
    events = list(Agent(fake_index, llm, AgentConfig.rfm(max_rounds=2)).stream(STOKER_Q))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "answer" and kinds.count("answer") == 1
    assert events[-1].answer is not None and events[-1].answer.citations[0].chunk_id == "stoker#0"
    steps = [e.node for e in events if e.kind == "step"]
    assert steps == ["contextualize", "plan", "retrieve_index", "rerank", "distill", "feedback", "compress", "generate",
                     "verify"]
    progress = [e.message for e in events if e.kind == "progress"]
    assert any(m.startswith("evidence pool: ") for m in progress)
    assert any("no compression" in m or m.startswith("fitting ") for m in progress)
    tokens = "".join(e.message for e in events if e.kind == "token")
    assert tokens.startswith("Bram Stoker was born in Clontarf")
    feedback_step = next(e for e in events if e.kind == "step" and e.node == "feedback")
    assert feedback_step.data["decision"] == "answer"


def test_checkpoint_resume_continues_without_repeating_finished_steps(fake_index: FakeIndex, tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.sqlite"
    broken = stoker_llm(p_yes=[0.9], fail_on={"answer": BackendError("generator down", fix="retry later")})
    with Agent(fake_index, broken, AgentConfig.rfm(max_rounds=2), checkpoint_path=db) as agent:
        with pytest.raises(BackendError):
            agent.ask(STOKER_Q, thread_id="t-1")
        assert agent.last_thread_id == "t-1"
    assert broken.counts == {"plan": 1, "feedback": 1, "answer": 1}
    fresh = stoker_llm(p_yes=[0.9])
    with Agent(fake_index, fresh, AgentConfig.rfm(max_rounds=2), checkpoint_path=db) as agent:
        answer = agent.resume("t-1")
        assert fresh.counts == {"answer": 1}  # plan / retrieval / feedback came from the checkpoint
        assert answer.citations[0].chunk_id == "stoker#0" and answer.trace.thread_id == "t-1"
        again = agent.resume("t-1")  # a finished thread returns its answer without new calls
        assert again.text == answer.text and fresh.counts == {"answer": 1}


def test_transient_backend_errors_are_retried_by_the_node_policy(fake_index: FakeIndex) -> None:
    llm = stoker_llm(p_yes=[0.9], fail_on={"answer": BackendError("HTTP 503", retryable=True)})
    answer = Agent(fake_index, llm, AgentConfig.rfm(max_rounds=1)).ask(STOKER_Q)
    assert answer.found and llm.counts["answer"] == 2


def test_a_reused_thread_starts_each_question_with_an_empty_pool(fake_index: FakeIndex, tmp_path: Path) -> None:
    llm = routed(
        plan=[STOKER_PLAN, plan_reply([("Swept wings", "delay", "?d")], [])],
        p_yes=[0.9],
        answer=[cite_source_with("Clontarf", "Clontarf."), cite_source_with("Swept", "Compressibility drag.")],
    )
    with Agent(
        fake_index, llm, AgentConfig.rfm(max_rounds=1, k=1, max_subqueries=1), checkpoint_path=tmp_path / "c.sqlite"
    ) as agent:
        first = agent.ask(STOKER_Q, thread_id="same")
        second = agent.ask("What do swept wings delay?", thread_id="same")
    assert [r["chunk_ids"] for r in first.trace.retrievals] == [["stoker#0"]]
    assert [r["chunk_ids"] for r in second.trace.retrievals] == [["wing#0"]]
    assert second.trace.rounds[0]["pool_size"] == 1 and second.usage.llm_calls == 2


def test_graph_is_inspectable_and_runs_with_build_time_deps(fake_index: FakeIndex) -> None:
    graph = build_graph(AgentConfig.rfm(max_rounds=1), deps=AgentDeps(fake_index, stoker_llm()))
    mermaid = graph.get_graph().draw_mermaid()
    for edge in (
        "plan -.-> retrieve_tree",
        "feedback -.-> gap_query",
        "gap_query -.-> retrieve_index",
        "compress --> generate",
    ):
        assert edge in mermaid
    state = graph.invoke({"question": STOKER_Q}, {"recursion_limit": AgentConfig.rfm(max_rounds=1).recursion_limit})
    assert state["answer"]["citations"][0]["chunk_id"] == "stoker#0"
    assert graph.get_input_jsonschema()["required"] == ["question"]
    assert graph.get_context_jsonschema() == {}


def test_langgraph_json_registers_a_factory_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = json.loads((REPO / "langgraph.json").read_text())
    path, _, func = spec["graphs"]["branchwise"].partition(":")
    module_spec = importlib.util.spec_from_file_location("lg_entry", REPO / path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, func)
    assert callable(factory) and not hasattr(factory, "invoke")  # a function, not a compiled global
    monkeypatch.setenv("BRANCHWISE_INDEX", str(tmp_path / "not-opened-until-a-run"))
    graph = factory({"configurable": {}})
    assert set(graph.get_graph().nodes) >= {
        "plan",
        "retrieve_index",
        "distill",
        "feedback",
        "gap_query",
        "compress",
        "generate",
    }
    monkeypatch.delenv("BRANCHWISE_INDEX")
    with pytest.raises(InputError, match="BRANCHWISE_INDEX"):
        factory({"configurable": {}})


def test_routers(fake_index: FakeIndex) -> None:
    def routes(cfg: AgentConfig, deps: AgentDeps, **state: object) -> list[str]:
        return list(route_retrieval({"pending_queries": ["q"], **state}, Runtime(context=deps), env=GraphEnv(cfg)))  # type: ignore[arg-type]

    plain = AgentDeps(fake_index, routed())
    full = AgentDeps(fake_index, routed(), tree_search=FakeTree(), graph_search=FakeGraph())
    assert routes(AgentConfig.rfm(), plain) == ["retrieve_index"]
    assert routes(AgentConfig.rfm(), full) == ["retrieve_tree", "retrieve_index"]  # auto: tree and hybrid, fused
    assert routes(AgentConfig.rfm(retrieval="tree"), full) == ["retrieve_tree"]
    assert routes(AgentConfig.rfm(), full, relational=True) == ["retrieve_tree", "retrieve_index", "graph_retrieve"]
    assert routes(AgentConfig.rfm(graph="never"), full, relational=True) == ["retrieve_tree", "retrieve_index"]
    assert routes(AgentConfig.rfm(retrieval="tree+hybrid", graph="always"), full) == [
        "retrieve_tree",
        "retrieve_index",
        "graph_retrieve",
    ]
    assert routes(AgentConfig.rfm(retrieval="tree"), plain) == ["retrieve_index"]  # no tree: falls back, logged
    assert routes(AgentConfig.rfm(retrieval="bm25"), full) == ["retrieve_index"]
    assert list(route_retrieval({"pending_queries": []}, Runtime(context=plain), env=GraphEnv(AgentConfig.rfm()))) == [
        "compress"
    ]
    assert after_feedback({"rounds": [{"decision": "continue"}]}) == "gap_query"  # type: ignore[typeddict-item]
    assert after_feedback({"rounds": [{"decision": "answer"}]}) == "compress"  # type: ignore[typeddict-item]


def test_state_checkpoints_under_a_strict_serializer(fake_index: FakeIndex, tmp_path: Path) -> None:
    """The state is JSON-native: a serializer that may revive no custom type restores it whole."""
    conn = sqlite3.connect(tmp_path / "strict.sqlite", check_same_thread=False)
    strict = JsonPlusSerializer(allowed_msgpack_modules=None)  # built-in safe types only
    cfg: RunnableConfig = {"recursion_limit": 20, "configurable": {"thread_id": "x"}}
    build_graph(AgentConfig.rfm(max_rounds=1), SqliteSaver(conn, serde=strict)).invoke(
        {"question": STOKER_Q}, cfg, context=AgentDeps(fake_index, stoker_llm())
    )
    restored = build_graph(AgentConfig.rfm(max_rounds=1), SqliteSaver(conn, serde=strict)).get_state(cfg).values
    assert restored["answer"]["citations"][0]["chunk_id"] == "stoker#0"
    assert (
        restored["evidence"]["stoker#0"]["facts"] and restored["usage"]["llm_calls"] == 2
    )  # plan + answer: 1 round, no judgement
    conn.close()


def test_overrides_replace_a_node_and_the_graph_nests_as_a_subgraph(fake_index: FakeIndex) -> None:
    from langgraph.graph import END, START, StateGraph

    from branchwise.agents import nodes_retrieve
    from branchwise.agents.state import AgentState

    def expanded(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, object]:
        queries = [f"{q} Clontarf" for q in state["pending_queries"]]
        return nodes_retrieve.retrieve_index({**state, "pending_queries": queries}, runtime, env)

    cfg = AgentConfig.rfm(max_rounds=1, k=1, max_subqueries=1)
    agent_graph = build_graph(cfg, overrides={"retrieve_index": expanded})
    parent = StateGraph(AgentState, context_schema=AgentDeps)
    parent.add_node("shout", lambda state: {"question": state["question"].upper()})
    parent.add_node("agent", agent_graph)
    parent.add_edge(START, "shout")
    parent.add_edge("shout", "agent")
    parent.add_edge("agent", END)
    state = parent.compile().invoke(
        {"question": STOKER_Q}, {"recursion_limit": 20}, context=AgentDeps(fake_index, stoker_llm())
    )
    assert state["question"] == STOKER_Q.upper()
    assert [r["query"] for r in state["retrievals"]] == [f"{STOKER_Q.upper()} Clontarf"]
    assert state["answer"]["citations"][0]["chunk_id"] == "stoker#0"
    with pytest.raises(InputError, match="unknown agent nodes"):
        build_graph(cfg, overrides={"rerank_all": expanded})
