"""Reducers of the agent state, the config bounds, and the lexical judgements."""

from __future__ import annotations

import pytest

from branchwise.agents.config import AgentConfig
from branchwise.agents.lexical import is_relational, top_sentences, unresolved_triples
from branchwise.agents.state import (
    EvidenceRecord,
    add_usage,
    evidence_from_record,
    evidence_to_record,
    merge_evidence,
    ranked_pool,
)
from branchwise.errors import InputError
from branchwise.types import Evidence


def rec(cid: str, score: float, rnd: int = 0, facts: list[str] | None = None, source: str = "hybrid") -> EvidenceRecord:
    return {
        "chunk_id": cid,
        "text": f"text of {cid}",
        "score": score,
        "source": source,
        "round": rnd,
        "query": "q",
        "facts": facts or [],
        "title": cid.upper(),
    }


def test_merge_evidence_dedupes_by_chunk_id_keeping_first_round_best_score_and_all_facts() -> None:
    pool = merge_evidence({}, {"a": rec("a", 0.4, 0, ["f1"]), "b": rec("b", 0.9, 0)})
    merged = merge_evidence(pool, {"a": rec("a", 0.7, 1, ["f1", "f2"], source="tree"), "c": rec("c", 0.2, 1)})
    assert sorted(merged) == ["a", "b", "c"]
    a = merged["a"]
    assert a["score"] == 0.7 and a["round"] == 0 and a["source"] == "hybrid"
    assert a["facts"] == ["f1", "f2"]
    # the reducer is pure: inputs are untouched
    assert pool["a"]["facts"] == ["f1"] and pool["a"]["score"] == 0.4


def test_merge_evidence_handles_empty_sides() -> None:
    assert merge_evidence(None, None) == {}
    only = {"x": rec("x", 1.0)}
    assert merge_evidence(only, None) == only


def test_add_usage_sums_fieldwise_with_missing_fields() -> None:
    total = add_usage(
        {"llm_calls": 2, "prompt_tokens": 100}, {"llm_calls": 1, "completion_tokens": 7, "latency_s": 0.5}
    )
    assert total == {"llm_calls": 3, "prompt_tokens": 100, "completion_tokens": 7, "embed_calls": 0, "latency_s": 0.5}


def test_ranked_pool_orders_by_score_then_round_then_id() -> None:
    pool = {"b": rec("b", 0.5, 1), "a": rec("a", 0.5, 1), "c": rec("c", 0.5, 0), "d": rec("d", 0.9, 2)}
    assert [e["chunk_id"] for e in ranked_pool(pool)] == ["d", "c", "a", "b"]


def test_evidence_record_round_trip() -> None:
    ev = Evidence("x#1", "t", 0.25, "graph", 2, "q", ["fact"], "X")
    assert evidence_from_record(evidence_to_record(ev)) == ev


def test_recursion_limit_grows_with_max_rounds_and_covers_the_loop() -> None:
    one, three = AgentConfig(max_rounds=1), AgentConfig(max_rounds=3)
    # contextualize, plan + (retrieve, rerank, distill, feedback, gap) per round + compress, generate, verify,
    # plus margin
    assert one.recursion_limit >= 5 + 5 * 1
    assert three.recursion_limit - one.recursion_limit == 10


@pytest.mark.parametrize("bad", [{"max_rounds": 0}, {"k": 0}, {"sufficiency_threshold": 1.5}, {"snippet_chars": 5}])
def test_config_rejects_out_of_range_values_with_a_fix(bad: dict[str, object]) -> None:
    with pytest.raises(InputError, match="Fix:"):
        AgentConfig(**bad)  # type: ignore[arg-type]


def test_budget_spent_reports_which_budget() -> None:
    cfg = AgentConfig(max_llm_calls=3, max_prompt_tokens=500)
    assert cfg.budget_spent({"llm_calls": 2, "prompt_tokens": 499}) == ""
    assert cfg.budget_spent({"llm_calls": 3}) == "call_budget"
    assert cfg.budget_spent({"llm_calls": 1, "prompt_tokens": 500}) == "token_budget"


def test_top_sentences_prefers_overlap_and_falls_back_to_the_first_sentence() -> None:
    text = "Ireland is green. Bram Stoker was born in Dublin. He managed a theatre."
    assert top_sentences("Where was Bram Stoker born?", text, 1) == ["Bram Stoker was born in Dublin."]
    assert top_sentences("quantum chromodynamics", text, 2) == ["Ireland is green."]


def test_unresolved_triples_by_content_word_coverage() -> None:
    triples = [
        {"subject": "?a", "relation": "author of", "object": "Dracula"},
        {"subject": "?r", "relation": "flows through", "object": "?c"},
    ]
    pool = [rec("d", 1.0) | {"text": "Dracula is a novel; its author was Bram Stoker."}]
    assert unresolved_triples(triples, pool) == [triples[1]]
    assert unresolved_triples(triples, []) == triples


def test_is_relational() -> None:
    t = {"subject": "?a", "relation": "author of", "object": "Dracula"}
    assert not is_relational([t], ["Who wrote Dracula?"])
    assert is_relational([t, t], [])
    assert is_relational([], ["a?", "b?"])
