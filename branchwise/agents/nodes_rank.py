"""Reranking: order the pool with the reranker, decide the second hop, and write its query.

The cascade the agent runs on small local models, with no LLM call before the answer:

1. the retrieval routes (tree navigation and hybrid search, fused in the pool) return a wide
   candidate list (``AgentConfig.candidates`` per route);
2. :func:`rerank` reads each new pool item with the reranker (the trained cross-encoder by
   default) and records its score, which then orders the pool;
3. :func:`sufficient_by_rerank` (feedback ``"rerank"``): the pool suffices when enough
   *different* documents score high; otherwise
4. :func:`bridge_query` (gap query ``"bridge"``) searches again with the question plus the
   best sentence of the best passage — the passage about the bridge entity of a two-hop
   question shares words with that sentence, not with the question.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from langgraph.runtime import Runtime

from branchwise.agents.config import AgentConfig
from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.events import emit
from branchwise.agents.lexical import top_sentences
from branchwise.agents.state import AgentState, EvidenceRecord, RerankRecord, rank_score
from branchwise.relevance.base import Reranker, passage_text
from branchwise.text.sentences import split_sentences

log = logging.getLogger(__name__)


def rerank(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Score the pool items the reranker has not read yet (a no-op without a reranker).

    First-round items are read against the question; items a later round found, against the
    query that found them (the question plus its bridge sentence), which is what tells the
    second hop's passage apart.
    """
    deps = env.deps(runtime.context)
    pool = state.get("evidence", {})
    new = {key: rec for key, rec in pool.items() if "rerank" not in rec}
    if deps.reranker is None or not new:
        return {}
    emit(runtime, "progress", "rerank", f"reranking {len(new)} passages ({deps.reranker.name})")
    t0 = time.perf_counter()
    question = state["question"]
    by_query: dict[str, list[str]] = {}
    for key, rec in new.items():
        by_query.setdefault(question if rec["round"] == 0 else rec["query"], []).append(key)
    scored: dict[str, float] = {}
    for query, keys in by_query.items():
        scores = deps.reranker.score(query, [passage_text(new[k]["title"], new[k]["text"]) for k in keys])
        scored.update(zip(keys, (float(s) for s in scores)))
    best = sorted(scored.items(), key=lambda ks: -ks[1])[:5]
    ranked = sorted({**pool, **{k: {**new[k], "rerank": s} for k, s in scored.items()}}.values(),
                    key=lambda r: -rank_score(r))
    sources: dict[str, int] = {}
    for rec in ranked[: env.config.keep]:
        sources[rec["source"]] = sources.get(rec["source"], 0) + 1
    record: RerankRecord = {"round": state.get("round", 0), "reranker": deps.reranker.name, "scored": len(scored),
                            "top": [[new[k]["chunk_id"], round(s, 4)] for k, s in best], "kept_sources": sources}
    log.info("reranked %d passages in %.2f s", len(scored), time.perf_counter() - t0)
    return {"evidence": {k: {**new[k], "rerank": s} for k, s in scored.items()}, "reranks": [record],
            "usage": {"latency_s": time.perf_counter() - t0}}


def document_of(rec: EvidenceRecord) -> str:
    """The document an item comes from (its title, else the chunk id's document part)."""
    return rec.get("title") or rec["chunk_id"].rsplit("#", 1)[0]


def sufficient_by_rerank(pool: Sequence[EvidenceRecord], cfg: AgentConfig) -> tuple[bool, str]:
    """``(sufficient, why)``: do :attr:`~AgentConfig.hop_docs` different documents score at
    least :attr:`~AgentConfig.hop_threshold`? ``pool`` is ranked best first."""
    docs: list[str] = []
    for rec in pool:
        if rank_score(rec) < cfg.hop_threshold:
            break
        if (doc := document_of(rec)) not in docs:
            docs.append(doc)
    ok = len(docs) >= cfg.hop_docs
    why = f"{len(docs)} document(s) score >= {cfg.hop_threshold}" + (f": {', '.join(docs[:3])}" if docs else "")
    return ok, why


def best_sentence(question: str, rec: EvidenceRecord, reranker: Reranker | None) -> str:
    """The sentence of ``rec`` that best answers ``question`` (reranker, else word overlap)."""
    sentences = [s.text for s in split_sentences(rec["text"])] or [rec["text"]]
    if reranker is None:
        return (top_sentences(question, rec["text"], 1) or sentences)[0]
    scores = reranker.score(question, [passage_text(rec["title"], s) for s in sentences])
    return sentences[max(range(len(sentences)), key=lambda i: scores[i])]


def bridge_query(question: str, pool: Sequence[EvidenceRecord], reranker: Reranker | None,
                 issued: Sequence[str], tries: int = 3) -> str | None:
    """The second hop's query: the question with the best sentence of the best passage not
    yet used for a hop; None when every candidate was searched already."""
    seen = {" ".join(q.lower().split()) for q in issued}
    for rec in pool[:tries]:
        query = f"{question} {passage_text(rec['title'], best_sentence(question, rec, reranker))}"
        if " ".join(query.lower().split()) not in seen:
            return query
    return None
