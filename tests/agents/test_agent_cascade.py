"""The cascade nodes on their own (state in, partial update out) and end to end with a scripted
LLM: rerank, the reranker-decided second hop and its bridge query, selective compression,
abstention, summaries as candidates, and the answer-support check."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from agent_doubles import FakeIndex, routed
from langgraph.runtime import Runtime

from branchwise.agents.agent import Agent
from branchwise.agents.config import AgentConfig
from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.nodes_answer import compress
from branchwise.agents.nodes_rank import bridge_query, rerank, sufficient_by_rerank
from branchwise.agents.nodes_verify import claim_of, lexical_support, verify
from branchwise.agents.state import AgentState, EvidenceRecord, ranked_pool
from branchwise.generation.answer import NOT_FOUND_TEXT
from branchwise.models.base import Message
from branchwise.testing import ScriptedLLM
from branchwise.types import Evidence

Q = "Where was the author of Dracula born?"


class WordReranker:
    """Relevance = share of the query's long words in the passage (deterministic, no model)."""

    name = "word-overlap"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        self.calls.append((query, len(passages)))
        words = {w.strip("?.,:").lower() for w in query.split() if len(w) > 4}
        return [len(words & {w.strip("?.,:").lower() for w in p.split()}) / max(1, len(words)) for p in passages]


def run(node: Callable[..., dict[str, Any]], state: AgentState, deps: AgentDeps,
        cfg: AgentConfig = AgentConfig()) -> dict[str, Any]:
    return node(state, Runtime(context=deps, stream_writer=lambda e: None), env=GraphEnv(cfg))


def pool(index: FakeIndex, *ids: str, rnd: int = 0, rerank: Sequence[float] | None = None) -> dict[str, EvidenceRecord]:
    out: dict[str, EvidenceRecord] = {}
    for i, cid in enumerate(ids):
        c = index.chunks.get(cid)
        out[cid] = {"chunk_id": cid, "text": c.text, "score": 1.0 - 0.1 * i, "source": "hybrid", "round": rnd,
                    "query": Q, "facts": [], "title": c.title}
        if rerank is not None:
            out[cid]["rerank"] = rerank[i]
    return out


def test_rerank_scores_new_items_and_orders_the_pool(fake_index: FakeIndex) -> None:
    rr = WordReranker()
    state: AgentState = {"question": Q, "evidence": pool(fake_index, "liffey#0", "dracula#0", "stoker#0"), "round": 0}
    update = run(rerank, state, AgentDeps(fake_index, routed(), reranker=rr))
    assert rr.calls == [(Q, 3)]  # one batched call, against the question
    scored = {k: v["rerank"] for k, v in update["evidence"].items()}
    assert scored["dracula#0"] > scored["liffey#0"]
    merged = {**state["evidence"], **update["evidence"]}
    assert ranked_pool(merged)[0]["chunk_id"] == "dracula#0"  # the reranker's order, not the route's
    assert update["reranks"][0]["scored"] == 3 and update["reranks"][0]["kept_sources"] == {"hybrid": 3}
    assert run(rerank, {**state, "evidence": merged}, AgentDeps(fake_index, routed(), reranker=rr)) == {}  # nothing new
    assert run(rerank, state, AgentDeps(fake_index, routed())) == {}  # no reranker: a no-op


def test_the_second_hop_is_decided_by_scores_and_searched_from_the_best_sentence(fake_index: FakeIndex) -> None:
    cfg = AgentConfig(hop_threshold=0.5, hop_docs=2)
    one = ranked_pool(pool(fake_index, "dracula#0", "liffey#0", rerank=[0.9, 0.1]))
    assert sufficient_by_rerank(one, cfg)[0] is False  # only the bridge passage is relevant: hop
    two = ranked_pool(pool(fake_index, "dracula#0", "stoker#0", rerank=[0.9, 0.7]))
    ok, why = sufficient_by_rerank(two, cfg)
    assert ok and "2 document(s)" in why and "Dracula" in why
    hop = bridge_query(Q, one, WordReranker(), issued=[Q])
    assert hop is not None and hop.startswith(Q + " Dracula: ") and "Bram Stoker" in hop
    assert bridge_query(Q, one[:1], WordReranker(), issued=[Q, hop]) is None  # never the same hop twice


def test_compress_passes_short_pools_whole_and_abstains_when_nothing_is_relevant(fake_index: FakeIndex) -> None:
    state: AgentState = {"question": Q, "evidence": pool(fake_index, "dracula#0", "stoker#0", rerank=[0.9, 0.8])}
    update = run(compress, state, AgentDeps(fake_index, routed(), reranker=WordReranker()))
    assert update["compression"]["method"] == "none" and len(update["context"]) == 2  # it fits: not cut
    low: AgentState = {"question": Q, "evidence": pool(fake_index, "wing#0", "liffey#0", rerank=[0.2, 0.1])}
    cfg = AgentConfig(abstain_threshold=0.5)
    update = run(compress, low, AgentDeps(fake_index, routed(), reranker=WordReranker()), cfg)
    assert update["compression"]["method"] == "abstain" and update["context"] == []
    assert run(verify, {**low, **update, "answer": None}, AgentDeps(fake_index, routed()), cfg)["support"]["method"] == "abstain"


def _answered(fake_index: FakeIndex, text: str, cited: str) -> AgentState:
    ctx = list(pool(fake_index, cited).values())
    return {"question": Q, "context": ctx, "compression": {"method": "none"},
            "answer": {"text": text, "found": True, "citations": [{"chunk_id": cited, "marker": "[1]", "title": "",
                                                                    "quote": ""}],
                       "context_tokens": 10, "inferred_citations": False}}


def test_verify_accepts_lexically_supported_answers_without_a_call(fake_index: FakeIndex) -> None:
    llm = routed()
    update = run(verify, _answered(fake_index, "Clontarf [1]", "stoker#0"), AgentDeps(fake_index, llm))
    assert update["support"]["method"] == "lexical" and update["support"]["supported"] is True
    assert "answer" not in update and llm.calls == []
    assert claim_of("Born in Clontarf [1][2].") == "Born in Clontarf." and lexical_support("yes", "anything") == 0.0


def test_verify_withholds_what_the_cited_text_does_not_support(fake_index: FakeIndex) -> None:
    def fn(messages: Sequence[Message], c: str) -> float:
        p = 0.1  # the LLM judges the claim unsupported
        return math.log(p if c == "Yes" else 1.0 - p)

    llm = ScriptedLLM(logprob_fn=fn)
    update = run(verify, _answered(fake_index, "He was born in Paris [1]", "stoker#0"), AgentDeps(fake_index, llm))
    assert update["support"]["method"] == "llm" and update["support"]["supported"] is False
    assert update["answer"]["text"] == NOT_FOUND_TEXT and update["answer"]["found"] is False
    assert update["answer"]["withheld"] == "He was born in Paris [1]" and update["answer"]["citations"] == []
    assert update["calls"][0]["node"] == "verify" and len(llm.calls) == 1


def test_summaries_compete_with_passages_and_the_trace_says_which_won(fake_index: FakeIndex) -> None:
    class Summaries:
        def summaries(self, query: str, n: int) -> list[Evidence]:
            return [Evidence("stoker#0", "Summary: Bram Stoker, author of Dracula, was born in Clontarf, Dublin.",
                             0.9, "summary", title="summary of 2 passages (n1)")][:n]

    def answer(messages: Sequence[Message]) -> str:
        return "Clontarf [1]" if "numbered sources" in messages[0].content else "{}"

    llm = ScriptedLLM(replies=answer)
    deps = dict(reranker=WordReranker())
    agent = Agent(fake_index, llm, AgentConfig(summaries=1, max_rounds=1, keep=2), **deps)
    agent.deps.summary_search = Summaries()
    got = agent.ask(Q)
    keys = [r["source"] for r in got.trace.retrievals]  # type: ignore[union-attr]
    assert "summary" in keys and "hybrid" in keys
    kept = got.trace.reranks[0]["kept_sources"]  # type: ignore[union-attr]
    assert kept.get("summary") == 1  # the summary outranked a passage for this question
    assert got.text.startswith("Clontarf") and got.citations[0].chunk_id == "stoker#0"
