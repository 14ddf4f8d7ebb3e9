"""Each agent node on its own: a state in, a partial update out (no graph)."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from agent_doubles import DRACULA_PLAN, DRACULA_Q, FakeIndex, RoutedLLM, cite_source_with, routed
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from branchwise.agents.config import AgentConfig
from branchwise.agents.deps import AgentDeps, GraphEnv, TreeSearchResult
from branchwise.agents.nodes_answer import compress, generate, truncate_pool
from branchwise.agents.nodes_reason import feedback, gap_query, parse_plan, plan
from branchwise.agents.nodes_retrieve import distill, graph_retrieve, retrieve_index, retrieve_tree
from branchwise.agents.state import AgentState, EvidenceRecord, merge_evidence
from branchwise.errors import InputError
from branchwise.compression.base import CompressedContext, count_tokens
from branchwise.types import Evidence, ScoredChunk, Usage


def run(
    node: Callable[..., dict[str, Any]], state: AgentState, deps: AgentDeps, cfg: AgentConfig = AgentConfig()
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    update = node(state, Runtime(context=deps, stream_writer=events.append), env=GraphEnv(cfg))
    return update, events


def deps_for(index: FakeIndex, llm: RoutedLLM, **kw: Any) -> AgentDeps:
    return AgentDeps(index=index, llm=llm, **kw)


def pool_of(index: FakeIndex, *ids: str, rnd: int = 0) -> dict[str, EvidenceRecord]:
    out: dict[str, EvidenceRecord] = {}
    for i, cid in enumerate(ids):
        c = index.chunks.get(cid)
        out[cid] = {
            "chunk_id": cid,
            "text": c.text,
            "score": 1.0 - 0.1 * i,
            "source": "hybrid",
            "round": rnd,
            "query": "q",
            "facts": [],
            "title": c.title,
        }
    return out


# -- plan ---------------------------------------------------------------------------------
def test_plan_extracts_triples_and_queries_and_resets_the_question_logs(fake_index: FakeIndex) -> None:
    llm = routed(plan=DRACULA_PLAN)
    update, events = run(plan, {"question": DRACULA_Q}, deps_for(fake_index, llm), AgentConfig.rfm(max_subqueries=3))
    assert [t["relation"] for t in update["triples"]] == ["author of", "born in", "flows through"]
    assert update["pending_queries"] == [DRACULA_Q, "Who wrote Dracula?", "Where was Bram Stoker born?"]
    assert update["relational"] is True and update["round"] == 0
    for channel in ("evidence", "retrievals", "navigation", "rounds", "usage", "notes", "queries_issued"):
        assert isinstance(update[channel], Overwrite), channel
    assert update["usage"].value["llm_calls"] == 1
    assert events and events[0]["kind"] == "progress" and events[0]["node"] == "plan"


def test_plan_repairs_then_retries_then_falls_back_to_the_question(fake_index: FakeIndex) -> None:
    repaired = routed(plan="Sure! ```json\n{'triples': [], 'sub_questions': ['Who wrote Dracula?',]}\n```")
    update, _ = run(plan, {"question": "Who wrote Dracula?"}, deps_for(fake_index, repaired), AgentConfig.rfm())
    assert update["subqueries"] == ["Who wrote Dracula?"]
    assert update["notes"].value[0]["kind"] == "repaired"

    retried = routed(plan=["no json at all", DRACULA_PLAN])
    update, _ = run(plan, {"question": DRACULA_Q}, deps_for(fake_index, retried), AgentConfig.rfm())
    assert retried.counts["plan"] == 2 and len(update["triples"]) == 3

    broken = routed(plan=["garbage", '{"triples": "not a list"}'])
    update, _ = run(plan, {"question": DRACULA_Q}, deps_for(fake_index, broken), AgentConfig.rfm(json_retries=1))
    assert broken.counts["plan"] == 2
    assert update["triples"] == [] and update["pending_queries"] == [DRACULA_Q]
    note = update["notes"].value[0]
    assert note["kind"] == "fallback" and "unparseable" in note["detail"] and "wrong shape" in note["detail"]
    assert update["usage"].value["llm_calls"] == 2


def test_plan_off_makes_no_call(fake_index: FakeIndex) -> None:
    llm = routed()
    update, _ = run(plan, {"question": "Who wrote Dracula?"}, deps_for(fake_index, llm), AgentConfig(plan=False))
    assert llm.calls == [] and update["pending_queries"] == ["Who wrote Dracula?"]


def test_parse_plan_skips_incomplete_triples() -> None:
    triples, subs = parse_plan(
        {
            "triples": [{"subject": "a", "relation": "r"}, {"subject": "a", "relation": "r", "object": "b"}],
            "sub_questions": ["x", 3, " "],
        }
    )
    assert triples == [{"subject": "a", "relation": "r", "object": "b"}] and subs == ["x"]
    with pytest.raises(ValueError):
        parse_plan({"triples": [], "sub_questions": []})


# -- retrieval ------------------------------------------------------------------------------
def test_retrieve_index_tags_evidence_and_normalises_scores(fake_index: FakeIndex) -> None:
    state: AgentState = {"question": "q", "round": 1, "pending_queries": ["Bram Stoker born", "River Liffey"]}
    update, _ = run(retrieve_index, state, deps_for(fake_index, routed()), AgentConfig(k=2))
    ev = update["evidence"]
    assert "stoker#0" in ev and "liffey#0" in ev
    assert all(r["round"] == 1 and r["source"] == "hybrid" and 0 < r["score"] <= 1 for r in ev.values())
    assert [r["query"] for r in update["retrievals"]] == ["Bram Stoker born", "River Liffey"]
    assert max(update["retrievals"][0]["scores"]) == 1.0


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_retrieve_index_modes_call_the_matching_search(fake_index: FakeIndex, mode: str) -> None:
    run(
        retrieve_index,
        {"question": "q", "pending_queries": ["Dublin"]},
        deps_for(fake_index, routed()),
        AgentConfig(retrieval=mode),
    )  # type: ignore[arg-type]
    assert fake_index.searches == [(mode, "Dublin")]


class FakeTree:
    def __init__(self, hits: list[ScoredChunk]) -> None:
        self.hits = hits
        self.queries: list[str] = []

    def search(self, query: str, k: int, on_progress: Callable[[str], None] | None = None) -> TreeSearchResult:
        self.queries.append(query)
        if on_progress:
            on_progress("navigating level 2")
        trace = {"schema": "branchwise.trace/1", "question": query, "iterations": 3, "stop_reason": "iterations"}
        return TreeSearchResult(self.hits[:k], trace, Usage(llm_calls=4, prompt_tokens=800))


def test_retrieve_tree_keeps_traces_usage_and_progress(fake_index: FakeIndex) -> None:
    tree = FakeTree(
        [
            ScoredChunk("stoker#0", 0.8, "tree"),
            ScoredChunk("missing#9", 0.5, "tree"),
            ScoredChunk("dracula#0", 0.4, "tree"),
        ]
    )
    state: AgentState = {"question": "q", "round": 0, "pending_queries": ["Bram Stoker"]}
    update, events = run(retrieve_tree, state, deps_for(fake_index, routed(), tree_search=tree), AgentConfig(k=3))
    assert list(update["evidence"]) == ["stoker#0", "dracula#0"]  # the stale leaf is skipped
    assert update["evidence"]["stoker#0"]["score"] == 1.0 and update["evidence"]["dracula#0"]["score"] == 0.5
    assert update["navigation"][0]["question"] == "Bram Stoker" and update["navigation"][0]["agent_round"] == 0
    assert update["usage"]["llm_calls"] == 4 and update["usage"]["prompt_tokens"] == 800
    assert "navigating level 2" in [e["message"] for e in events]


def test_retrieve_tree_and_graph_without_backends_note_the_skip(fake_index: FakeIndex) -> None:
    for node in (retrieve_tree, graph_retrieve):
        update, _ = run(node, {"question": "q", "pending_queries": ["x"]}, deps_for(fake_index, routed()))
        assert update["notes"][0]["kind"] == "skipped" and "evidence" not in update


def test_graph_retrieve_relabels_round_query_and_source(fake_index: FakeIndex) -> None:
    class FakeGraph:
        def retrieve(self, query: str, k: int) -> list[Evidence]:
            return [Evidence("stoker#0", "Stoker -[born in]-> Dublin", 0.7, "grag", 9, "other", [], "Bram Stoker")]

    state: AgentState = {"question": "q", "round": 1, "pending_queries": ["Stoker birthplace"]}
    update, _ = run(graph_retrieve, state, deps_for(fake_index, routed(), graph_search=FakeGraph()))
    rec = update["evidence"]["stoker#0"]
    assert (rec["source"], rec["round"], rec["query"], rec["text"]) == (
        "graph",
        1,
        "Stoker birthplace",
        "Stoker -[born in]-> Dublin",
    )


# -- distill ----------------------------------------------------------------------------------
def test_distill_llm_in_batches_with_sentence_fallback_for_skipped_items(fake_index: FakeIndex) -> None:
    pool = pool_of(fake_index, "stoker#0", "liffey#0", "wing#0")
    pool["old#0"] = {**pool["wing#0"], "chunk_id": "old#0", "round": 0, "facts": ["kept"]}
    llm = routed(
        distill=[json.dumps({"items": [{"id": 1, "facts": ["Stoker was born in Clontarf, Dublin."]}]}), "broken"]
    )
    state: AgentState = {"question": "Where was Bram Stoker born?", "round": 0, "evidence": pool}
    update, events = run(
        distill, state, deps_for(fake_index, llm), AgentConfig(distill="llm", distill_batch=2, json_retries=0)
    )
    facts = {cid: r["facts"] for cid, r in update["evidence"].items()}
    assert facts["stoker#0"] == ["Stoker was born in Clontarf, Dublin."]
    assert facts["liffey#0"] and facts["wing#0"]  # skipped by the LLM / failed batch: top sentences
    assert "old#0" not in facts  # already distilled
    assert llm.counts["distill"] == 2 and [n["kind"] for n in update["notes"]] == ["fallback"]
    assert events[0]["data"]["pool_size"] == 4
    merged = merge_evidence(pool, update["evidence"])
    assert merged["stoker#0"]["facts"] == facts["stoker#0"]


def test_distill_sentences_mode_makes_no_call(fake_index: FakeIndex) -> None:
    llm = routed()
    state: AgentState = {
        "question": "Where was Bram Stoker born?",
        "round": 0,
        "evidence": pool_of(fake_index, "stoker#0"),
    }
    update, _ = run(distill, state, deps_for(fake_index, llm), AgentConfig(distill="sentences", facts_per_item=1))
    assert llm.calls == []
    assert update["evidence"]["stoker#0"]["facts"] == [
        "Abraham Stoker was born on 8 November 1847 in Clontarf, on the northside of Dublin, Ireland."
    ]


# -- feedback ----------------------------------------------------------------------------------
def fb_state(index: FakeIndex, rnd: int = 0, **kw: Any) -> AgentState:
    state: AgentState = {
        "question": DRACULA_Q,
        "round": rnd,
        "pending_queries": ["q1"],
        "evidence": pool_of(index, "dracula#0", "stoker#0"),
        "triples": json.loads(DRACULA_PLAN)["triples"],
        "usage": {},
    }
    state.update(kw)  # type: ignore[typeddict-item]
    return state


def test_feedback_logprob_sufficient_and_insufficient(fake_index: FakeIndex) -> None:
    cfg = AgentConfig.rfm(max_rounds=3)
    yes, _ = run(feedback, fb_state(fake_index), deps_for(fake_index, routed(p_yes=[0.8])), cfg)
    assert yes["rounds"][0]["decision"] == "answer" and yes["rounds"][0]["stop_reason"] == "sufficient"
    assert yes["feedback"]["p_yes"] == pytest.approx(0.8) and yes["usage"]["llm_calls"] == 1
    no, _ = run(feedback, fb_state(fake_index), deps_for(fake_index, routed(p_yes=[0.2])), cfg)
    rec = no["rounds"][0]
    assert (
        rec["decision"] == "continue"
        and rec["pool_size"] == 2
        and sorted(rec["new_chunk_ids"]) == ["dracula#0", "stoker#0"]
    )
    assert [t["relation"] for t in no["feedback"]["unresolved"]] == ["flows through"]


def test_feedback_json_mode_and_its_fallback(fake_index: FakeIndex) -> None:
    cfg = AgentConfig.rfm(max_rounds=3, feedback="json", json_retries=0)
    llm = routed(feedback_json='{"sufficient": "false", "missing": "which river flows through Dublin"}')
    update, _ = run(feedback, fb_state(fake_index), deps_for(fake_index, llm), cfg)
    assert (
        update["feedback"]["sufficient"] is False
        and update["feedback"]["missing"] == "which river flows through Dublin"
    )
    broken = routed(feedback_json="maybe?")
    update, _ = run(feedback, fb_state(fake_index), deps_for(fake_index, broken), cfg)
    assert update["feedback"]["sufficient"] is False  # one triple is unresolved
    assert update["notes"][0]["kind"] == "fallback"


def test_feedback_skips_the_call_when_the_decision_cannot_change(fake_index: FakeIndex) -> None:
    llm = routed()
    last, _ = run(feedback, fb_state(fake_index, rnd=1), deps_for(fake_index, llm), AgentConfig.rfm(max_rounds=2))
    assert last["rounds"][0]["stop_reason"] == "max_rounds" and last["feedback"]["mode"] == "skipped"
    spent, _ = run(
        feedback,
        fb_state(fake_index, usage={"llm_calls": 5}),
        deps_for(fake_index, llm),
        AgentConfig.rfm(max_rounds=3, max_llm_calls=5),
    )
    assert spent["rounds"][0]["stop_reason"] == "call_budget"
    empty, _ = run(feedback, fb_state(fake_index, evidence={}), deps_for(fake_index, llm), AgentConfig.rfm(max_rounds=3))
    assert empty["rounds"][0]["decision"] == "continue" and empty["feedback"]["missing"] == DRACULA_Q
    off, _ = run(feedback, fb_state(fake_index), deps_for(fake_index, llm), AgentConfig(max_rounds=3, feedback="none"))
    assert off["rounds"][0]["decision"] == "answer"
    assert llm.calls == []


# -- gap query --------------------------------------------------------------------------------
def gap_state(**fb: Any) -> AgentState:
    record = {
        "round": 0,
        "mode": "logprob",
        "sufficient": False,
        "p_yes": 0.2,
        "missing": "",
        "unresolved": [{"subject": "?r", "relation": "flows through", "object": "Dublin"}],
    } | fb
    return {
        "question": DRACULA_Q,
        "round": 0,
        "feedback": record,
        "queries_issued": [DRACULA_Q],
        "evidence": {},
        "usage": {},
    }  # type: ignore[typeddict-item]


def test_gap_query_template_from_unresolved_triples(fake_index: FakeIndex) -> None:
    update, _ = run(gap_query, gap_state(), deps_for(fake_index, routed()), AgentConfig.rfm(max_subqueries=1))
    assert update["pending_queries"] == ["flows through Dublin"] and update["round"] == 1
    assert update["queries_issued"] == ["flows through Dublin"]
    state = gap_state(unresolved=[{"subject": "?a", "relation": "born in", "object": "?c"}])
    state["triples"] = [
        {"subject": "?a", "relation": "author of", "object": "Dracula"},
        *state["feedback"]["unresolved"],
    ]
    update, _ = run(gap_query, state, deps_for(fake_index, routed()), AgentConfig.rfm(max_subqueries=1))
    assert update["pending_queries"] == ["author of Dracula born in"]


def test_gap_query_llm_first_and_never_repeats(fake_index: FakeIndex) -> None:
    llm = routed(gap='{"query": "river through Dublin"}')
    update, _ = run(
        gap_query,
        gap_state(missing="the river of Dublin"),
        deps_for(fake_index, llm),
        AgentConfig(gap_query="llm", max_subqueries=2),
    )
    assert update["pending_queries"] == ["river through Dublin", "the river of Dublin"]
    state = gap_state(missing="")
    state["queries_issued"] = [DRACULA_Q, "flows through Dublin"]
    update, _ = run(gap_query, state, deps_for(fake_index, routed()))
    assert update["pending_queries"] == [] and update["notes"][0]["kind"] == "stop"


# -- compress and generate ----------------------------------------------------------------------
def test_compress_without_compressor_truncates_to_the_budget(fake_index: FakeIndex) -> None:
    pool = pool_of(fake_index, "stoker#0", "dracula#0", "liffey#0")
    first = count_tokens(pool["stoker#0"]["text"])
    cfg = AgentConfig(context_budget_tokens=first + 25)  # dracula (26 tokens) is cut to 25
    update, _ = run(compress, {"question": "q", "evidence": pool}, deps_for(fake_index, routed()), cfg)
    comp, context = update["compression"], update["context"]
    assert comp["method"] == "truncate" and comp["tokens_after"] <= cfg.context_budget_tokens
    assert [e["chunk_id"] for e in context] == ["stoker#0", "dracula#0"]
    assert context[1]["text"] != pool["dracula#0"]["text"]  # cut at a token edge
    assert comp["removed"] == ["liffey#0"] and comp["ratio"] == pytest.approx(
        comp["tokens_after"] / comp["tokens_before"], abs=1e-4
    )


def test_truncate_pool_never_exceeds_the_budget(fake_index: FakeIndex) -> None:
    pool = list(pool_of(fake_index, "stoker#0", "dracula#0", "liffey#0", "ireland#0").values())
    for budget in (1, 10, 25, 40, 80, 1000):
        kept, before, after = truncate_pool(pool, budget)
        assert after <= budget and after == sum(count_tokens(e["text"]) for e in kept)


def test_compress_with_a_compressor_records_its_stats(fake_index: FakeIndex) -> None:
    class HalfCompressor:
        mode = "extractive"

        def compress(self, question: str, evidence: list[Evidence], budget_tokens: int) -> CompressedContext:
            items = [
                Evidence(e.chunk_id, e.text.split(".")[0] + ".", e.score, e.source, title=e.title) for e in evidence[:1]
            ]
            return CompressedContext(items, 100, 12, self.mode, budget_tokens, usage=Usage(embed_calls=1))

    pool = pool_of(fake_index, "stoker#0", "liffey#0")
    update, events = run(
        compress, {"question": "q", "evidence": pool}, deps_for(fake_index, routed(), compressor=HalfCompressor()),
        AgentConfig(context_budget_tokens=10),  # the pool is longer than that: the compressor runs
    )
    assert update["compression"] | {} == {
        "method": "extractive",
        "budget_tokens": 10,
        "tokens_before": 100,
        "tokens_after": 12,
        "ratio": 0.12,
        "removed": ["liffey#0"],
        "emptied": False,
    }
    assert update["context"][0]["chunk_id"] == "stoker#0" and update["usage"]["embed_calls"] == 1
    assert "compressing" in events[0]["message"]


def test_generate_streams_tokens_and_cites_the_right_chunk(fake_index: FakeIndex) -> None:
    context = list(pool_of(fake_index, "dracula#0", "stoker#0").values())
    llm = routed(answer=cite_source_with("Clontarf", "He was born in Clontarf, Dublin."))
    state: AgentState = {
        "question": "Where was Bram Stoker born?",
        "context": context,
        "compression": {"tokens_after": 57},
    }  # type: ignore[typeddict-item]
    update, events = run(generate, state, deps_for(fake_index, llm))
    ans = update["answer"]
    assert ans["found"] and ans["text"] == "He was born in Clontarf, Dublin. [2]"
    assert [c["chunk_id"] for c in ans["citations"]] == ["stoker#0"] and ans["context_tokens"] == 57
    assert [e["message"] for e in events if e["kind"] == "token"] == [ans["text"]]
    assert update["usage"]["llm_calls"] == 1


def test_generate_not_found_without_context_makes_no_call(fake_index: FakeIndex) -> None:
    llm = routed()
    update, _ = run(generate, {"question": "Who founded Rome?", "context": []}, deps_for(fake_index, llm))
    assert update["answer"]["found"] is False and update["answer"]["text"] == "Not found in the corpus."
    assert llm.calls == [] and update["usage"] == {}


def test_nodes_without_deps_raise_a_fixable_error(fake_index: FakeIndex) -> None:
    with pytest.raises(InputError, match="context=AgentDeps"):
        plan({"question": "q"}, Runtime(context=None), env=GraphEnv(AgentConfig()))
