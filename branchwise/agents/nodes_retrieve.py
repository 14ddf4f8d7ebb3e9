"""Retrieval nodes (tree, flat index, graph) and fact distillation into the evidence pool.

Each retrieval route is its own node, so the router can run one or several in the same
super-step (their evidence merges by chunk id in the pool's reducer) and users can add
routes. Every node runs the round's ``pending_queries`` and returns evidence records tagged
with their round, query and route; :func:`distill` then attaches key facts to the items
that entered the pool this round (RFM-RAG's knowledge distillation, arXiv 2508.17862).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from langgraph.runtime import Runtime

from branchwise.agents import prompts
from branchwise.agents.config import AgentConfig
from branchwise.agents.deps import AgentDeps, GraphEnv, chunk_texts
from branchwise.agents.events import emit
from branchwise.agents.lexical import top_sentences
from branchwise.agents.state import (
    CallRecord,
    AgentState,
    EvidenceRecord,
    NoteRecord,
    RetrievalRecord,
    UsageRecord,
    evidence_to_record,
)
from branchwise.agents.structured import call_json, sum_usage, usage_record
from branchwise.retrieval.registry import RETRIEVERS
from branchwise.types import ScoredChunk

log = logging.getLogger(__name__)


def _k(deps: AgentDeps, cfg: AgentConfig) -> int:
    """Hits per route and query: the cascade's wide first stage when a reranker orders the pool."""
    return cfg.candidates if deps.reranker is not None else cfg.k


def _records_from_hits(
    deps: AgentDeps, hits: Sequence[ScoredChunk], *, source: str, rnd: int, query: str
) -> dict[str, EvidenceRecord]:
    """Evidence records of retrieval hits; scores max-normalised to [0, 1] within the list.

    Normalising keeps routes comparable in one pool (RRF scores are ~0.016, path
    relevance is already in [0, 1]); the order within a route is unchanged.
    """
    chunks = chunk_texts(deps.index, [h.chunk_id for h in hits])
    top = max((h.score for h in hits), default=0.0)
    out: dict[str, EvidenceRecord] = {}
    for h in hits:
        chunk = chunks.get(h.chunk_id)
        if chunk is None or h.chunk_id in out:
            continue
        score = h.score / top if top > 0 else 0.0
        out[h.chunk_id] = {
            "chunk_id": h.chunk_id,
            "text": chunk.text,
            "score": float(score),
            "source": source,
            "round": rnd,
            "query": query,
            "facts": [],
            "title": chunk.title,
        }
    return out


def _retrieval(rnd: int, source: str, query: str, recs: dict[str, EvidenceRecord]) -> RetrievalRecord:
    return {
        "round": rnd,
        "source": source,
        "query": query,
        "chunk_ids": list(recs),
        "scores": [r["score"] for r in recs.values()],
    }


def _route(state: AgentState, source: str,
           records_for: Callable[[str], dict[str, EvidenceRecord]]) -> dict[str, Any]:
    """Run one route's ``records_for(query)`` on every pending query: the pool's new evidence
    (first record per key wins) and one retrieval record per query."""
    rnd = state.get("round", 0)
    evidence: dict[str, EvidenceRecord] = {}
    retrievals: list[RetrievalRecord] = []
    for query in state.get("pending_queries", []):
        recs = records_for(query)
        retrievals.append(_retrieval(rnd, source, query, recs))
        for key, rec in recs.items():
            evidence.setdefault(key, rec)
    return {"evidence": evidence, "retrievals": retrievals}


def retrieve_index(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Flat retrieval from the index: hybrid (BM25 + dense, RRF), dense or BM25 per config."""
    deps, cfg = env.deps(runtime.context), env.config
    mode = cfg.retrieval if cfg.retrieval in RETRIEVERS else "hybrid"  # a tree route falls back to hybrid
    search = RETRIEVERS.create(mode, deps.index)
    rnd = state.get("round", 0)

    def records(query: str) -> dict[str, EvidenceRecord]:
        emit(runtime, "progress", "retrieve_index", f"{mode} search: {query}")
        return _records_from_hits(deps, search(query, _k(deps, cfg)), source=mode, rnd=rnd, query=query)

    return _route(state, mode, records)


def retrieve_tree(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """LATTICE navigation of the semantic tree for each pending query (traces kept)."""
    deps, cfg = env.deps(runtime.context), env.config
    tree_search = deps.tree_search
    if tree_search is None:
        return {"notes": [{"node": "retrieve_tree", "kind": "skipped", "detail": "no tree search configured"}]}
    rnd = state.get("round", 0)
    traces: list[dict[str, Any]] = []
    usage: list[UsageRecord] = [{}]

    def records(query: str) -> dict[str, EvidenceRecord]:
        emit(runtime, "progress", "retrieve_tree", f"navigating the tree: {query}")
        result = tree_search.search(
            query, _k(deps, cfg), on_progress=lambda m: emit(runtime, "progress", "retrieve_tree", m)
        )
        traces.append({**result.trace, "agent_round": rnd})
        usage[0] = sum_usage(usage[0], usage_record(result.usage))
        return _records_from_hits(deps, result.hits, source="tree", rnd=rnd, query=query)

    return {**_route(state, "tree", records), "navigation": traces, "usage": usage[0]}


def retrieve_summaries(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """The tree's internal summaries most similar to each pending query, as evidence candidates
    (for long documents and questions about a whole story or topic; RAPTOR's collapsed tree).

    Each is cited through its best-matching leaf and keyed apart from that leaf in the pool
    (``<chunk id>#summary``); the rerank node then decides whether a summary or a passage
    serves the question better.
    """
    deps, cfg = env.deps(runtime.context), env.config
    summary_search = deps.summary_search
    if summary_search is None:
        return {"notes": [{"node": "retrieve_summaries", "kind": "skipped", "detail": "no tree summaries"}]}
    rnd = state.get("round", 0)

    def records(query: str) -> dict[str, EvidenceRecord]:
        recs: dict[str, EvidenceRecord] = {}
        for ev in summary_search.summaries(query, cfg.summaries):
            recs.setdefault(f"{ev.chunk_id}#summary", {**evidence_to_record(ev), "round": rnd, "query": query})
        return recs

    return _route(state, "summary", records)


def graph_retrieve(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """GRAG graph retrieval (k-hop ego-graphs, soft pruning) for relational questions."""
    deps, cfg = env.deps(runtime.context), env.config
    graph_search = deps.graph_search
    if graph_search is None:
        return {"notes": [{"node": "graph_retrieve", "kind": "skipped", "detail": "no graph configured"}]}
    rnd = state.get("round", 0)

    def records(query: str) -> dict[str, EvidenceRecord]:
        emit(runtime, "progress", "graph_retrieve", f"graph search: {query}")
        recs: dict[str, EvidenceRecord] = {}
        for ev in graph_search.retrieve(query, _k(deps, cfg)):
            recs.setdefault(ev.chunk_id, {**evidence_to_record(ev), "source": "graph", "round": rnd, "query": query})
        return recs

    return _route(state, "graph", records)


def parse_distilled(value: Any) -> dict[int, list[str]]:
    """Validate ``{"items": [{"id": int, "facts": [str]}]}`` into ``{id: facts}``."""
    if not isinstance(value, dict) or not isinstance(value.get("items"), list):
        raise TypeError("expected {'items': [...]}")
    out: dict[int, list[str]] = {}
    for item in value["items"]:
        if isinstance(item, dict) and isinstance(item.get("facts"), list):
            out[int(item["id"])] = [f.strip() for f in item["facts"] if isinstance(f, str) and f.strip()]
    if not out:
        raise ValueError("no item carries facts")
    return out


def distill(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Attach key facts to this round's new pool items (LLM in batches, or top sentences).

    Items the LLM skipped or whose batch failed get their top sentences instead, and the
    failure is noted: every item ends with facts, however they were made.
    """
    deps, cfg = env.deps(runtime.context), env.config
    rnd = state.get("round", 0)
    pool = state.get("evidence", {})
    new = [(key, rec) for key, rec in pool.items() if rec["round"] == rnd and not rec["facts"]]
    emit(runtime, "progress", "distill", f"evidence pool: {len(pool)} items ({len(new)} new)", pool_size=len(pool))
    if not new or cfg.distill == "none":
        return {}
    question = state["question"]
    facts: dict[str, list[str]] = {}
    usage: UsageRecord = {}
    notes: list[NoteRecord] = []
    calls: list[CallRecord] = []
    if cfg.distill == "llm":
        for start in range(0, len(new), cfg.distill_batch):
            if cfg.budget_spent(sum_usage(state.get("usage", {}), usage)):
                notes.append({"node": "distill", "kind": "budget", "detail": "budget spent: top sentences used"})
                break
            batch = [rec for _, rec in new[start : start + cfg.distill_batch]]
            keys = [key for key, _ in new[start : start + cfg.distill_batch]]
            messages = prompts.distill_messages(question, batch, cfg.snippet_chars, cfg.facts_per_item)
            outcome = call_json(
                deps.llm,
                messages,
                prompts.DISTILL_SCHEMA,
                parse_distilled,
                retries=cfg.json_retries,
                max_tokens=64 * len(batch),
            )
            usage = sum_usage(usage, outcome.usage)
            calls.append(outcome.call("distill"))
            for i, key in enumerate(keys, 1):
                got = (outcome.value or {}).get(i)
                if got:
                    facts[key] = got[: cfg.facts_per_item]
            if (note := outcome.note("distill", "top sentences")) is not None:
                notes.append(note)
    for key, rec in new:
        if key not in facts:
            facts[key] = top_sentences(question, rec["text"], cfg.facts_per_item)
    update = {cid: {**pool[cid], "facts": fs} for cid, fs in facts.items()}
    return {"evidence": update, "usage": usage, "notes": notes, "calls": calls}
