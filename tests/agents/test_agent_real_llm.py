"""The whole agent with the real embedded LLM and embedder on real HotpotQA paragraphs.

One question, its ten distractor-setting paragraphs indexed with all-MiniLM-L6-v2 in Chroma,
a two-level tree navigated with the embedding scorer, the 1.5B Qwen model planning and
answering. Kept to one round and small budgets: ~30 s on 2 CPU cores.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from agent_corpora import build_small_index, hotpot_chunks, hotpot_record
from langgraph.runtime import Runtime

from branchwise.agents import Agent, AgentConfig
from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.nodes_reason import feedback
from branchwise.agents.state import EvidenceRecord
from branchwise.agents.tree_search import NavigatorSearch
from branchwise.navigation.navigator import NavigatorConfig

log = logging.getLogger(__name__)

LORENZO = "5abcf2b4554299700f9d7937"  # "Lorenzo Monaco was influenced by which Italian painter and architect?" → Giotto


@pytest.mark.real_llm
def test_agent_answers_a_hotpotqa_question_citing_a_supporting_paragraph(
    real_llm: Any, real_embedder: Any, shared_data: Path, tmp_path: Path
) -> None:
    rec = hotpot_record(shared_data, LORENZO)
    supporting = {f"{title}#0" for title, _ in rec["supporting_facts"]}
    index = build_small_index(tmp_path / "idx", real_embedder, hotpot_chunks(rec), group_size=4)
    search = NavigatorSearch.embedding(index, NavigatorConfig(beam=2, iterations=6))
    cfg = AgentConfig.rfm(max_rounds=1, k=3, max_subqueries=1, context_budget_tokens=450, answer_max_tokens=64)
    t0 = time.perf_counter()
    answer = Agent(index, real_llm, cfg, tree_search=search).ask(rec["question"])
    elapsed = time.perf_counter() - t0
    log.info(
        "real agent: %.1f s, %d LLM calls, %d prompt tokens, answer %r",
        elapsed,
        answer.usage.llm_calls,
        answer.usage.prompt_tokens,
        answer.text,
    )
    cited = [c.chunk_id for c in answer.citations]
    context = {e for r in answer.trace.retrievals for e in r["chunk_ids"]}
    assert answer.found, answer.text
    assert rec["answer"].lower() in answer.text.lower()
    assert cited and set(cited) <= context, (cited, context)
    assert set(cited) & supporting, (cited, supporting)
    assert answer.trace.navigation and answer.trace.navigation[0].scorer == "embedding"
    assert 1 <= answer.usage.llm_calls <= 3  # plan (+ one retry at most) and the answer


@pytest.mark.real_llm
def test_real_feedback_judges_a_supporting_pool_more_sufficient_than_a_distractor_pool(
    real_llm: Any, shared_data: Path
) -> None:
    """P("Yes") from one forward pass separates a pool holding the answer from one that does not."""
    rec = hotpot_record(shared_data, LORENZO)
    chunks = {c.id: c for c in hotpot_chunks(rec)}

    def pool(ids: list[str]) -> dict[str, EvidenceRecord]:
        return {
            cid: {
                "chunk_id": cid,
                "text": chunks[cid].text,
                "score": 1.0,
                "source": "hybrid",
                "round": 0,
                "query": rec["question"],
                "facts": [],
                "title": chunks[cid].title,
            }
            for cid in ids
        }

    supporting = pool(["Lorenzo Monaco#0", "Giotto#0"])
    distractors = pool([cid for cid in chunks if cid not in ("Lorenzo Monaco#0", "Giotto#0")][:2])
    cfg = AgentConfig.rfm(max_rounds=2, snippet_chars=400)
    deps = AgentDeps(index=None, llm=real_llm)  # type: ignore[arg-type]  # feedback reads no index
    p = {}
    for name, ev in (("supporting", supporting), ("distractors", distractors)):
        state = {"question": rec["question"], "round": 0, "evidence": ev, "triples": [], "usage": {}}
        update = feedback(state, Runtime(context=deps), env=GraphEnv(cfg))  # type: ignore[arg-type]
        p[name] = update["feedback"]["p_yes"]
    log.info("real feedback P(Yes): %s", p)
    assert p["supporting"] > p["distractors"]
