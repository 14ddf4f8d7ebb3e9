"""Reasoning nodes: plan (triples, sub-questions), feedback (sufficient?), gap query.

Together they are the control loop of RFM-RAG (Li et al. 2025, arXiv 2508.17862): plan once,
then after each retrieval round judge whether the evidence pool is complete (R-Feedback),
and if not, search for what is missing — the relational triples no evidence covers yet —
rather than repeating the question. Each node is a function ``(state, runtime, env)``
returning a partial state update; ``env`` (config and default deps) is bound by
:func:`branchwise.agents.graph.build_graph`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from branchwise.agents import prompts
from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.events import emit
from branchwise.agents.lexical import describe_triple, is_relational, unresolved_triples
from branchwise.agents.state import (
    CallRecord,
    AgentState,
    FeedbackRecord,
    NoteRecord,
    RoundRecord,
    Triple,
    UsageRecord,
    ranked_pool,
)
from branchwise.agents.nodes_rank import bridge_query, sufficient_by_rerank
from branchwise.agents.structured import call_json, call_record, prompt_usage
from branchwise.navigation.scorers import p_yes

log = logging.getLogger(__name__)


def parse_plan(value: Any) -> tuple[list[Triple], list[str]]:
    """Validate the planner's JSON: ``{"triples": [...], "sub_questions": [...]}``.

    Triples missing a field are skipped; a value of the wrong type raises ``TypeError``.
    """
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    raw_triples, raw_subs = value.get("triples", []), value.get("sub_questions", [])
    if not isinstance(raw_triples, list) or not isinstance(raw_subs, list):
        raise TypeError("'triples' and 'sub_questions' must be lists")
    triples: list[Triple] = []
    for t in raw_triples:
        if isinstance(t, dict) and all(
            isinstance(t.get(k), str) and t[k].strip() for k in ("subject", "relation", "object")
        ):
            triples.append(
                {"subject": t["subject"].strip(), "relation": t["relation"].strip(), "object": t["object"].strip()}
            )
    subs = [s.strip() for s in raw_subs if isinstance(s, str) and s.strip()]
    if not triples and not subs:
        raise ValueError("the plan has neither triples nor sub-questions")
    return triples, subs


def _dedupe(queries: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for q in queries:
        key = " ".join(q.lower().split())
        if key and key not in seen:
            seen.add(key)
            out.append(q)
    return out


def plan(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Extract triples and sub-questions; start a fresh question (resets the per-question logs).

    Falls back to searching the question alone when the planner's output is unusable, and
    records that in ``notes``.
    """
    deps, cfg = env.deps(runtime.context), env.config
    question = state["question"].strip()
    triples: list[Triple] = []
    subs: list[str] = []
    usage: UsageRecord = {}
    notes: list[NoteRecord] = []
    calls: list[CallRecord] = []
    if cfg.plan:
        emit(runtime, "progress", "plan", "planning: extracting triples and sub-questions")
        outcome = call_json(
            deps.llm,
            prompts.plan_messages(question),
            prompts.PLAN_SCHEMA,
            parse_plan,
            retries=cfg.json_retries,
            max_tokens=256,
        )
        usage = outcome.usage
        calls.append(outcome.call("plan"))
        if outcome.value is not None:
            triples, subs = outcome.value
        if (note := outcome.note("plan", "searching the question itself")) is not None:
            notes.append(note)
    queries = _dedupe([question, *subs])[: cfg.max_subqueries]
    return {
        "question": question,
        "triples": triples,
        "subqueries": subs or [question],
        "relational": is_relational(triples, subs),
        "round": 0,
        "stop_reason": "",
        "pending_queries": queries,
        "queries_issued": Overwrite(queries),
        "evidence": Overwrite({}),
        "retrievals": Overwrite([]),
        "navigation": Overwrite([]),
        "rounds": Overwrite([]),
        "usage": Overwrite(usage),
        "notes": Overwrite(notes),
        "calls": Overwrite(calls),
        "reranks": Overwrite([]),
        "run": {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **deps.provenance},
    }


def parse_feedback(value: Any) -> tuple[bool, str]:
    """Validate ``{"sufficient": bool, "missing": str}`` (string booleans are accepted)."""
    if not isinstance(value, dict) or "sufficient" not in value:
        raise KeyError("sufficient")
    raw = value["sufficient"]
    if isinstance(raw, str) and raw.strip().lower() in ("true", "yes", "false", "no"):
        raw = raw.strip().lower() in ("true", "yes")
    if not isinstance(raw, bool):
        raise TypeError(f"'sufficient' must be a boolean, got {raw!r}")
    missing = value.get("missing", "")
    return raw, missing.strip() if isinstance(missing, str) else ""


def feedback(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Judge whether the pool suffices; decide to answer or to search the gap.

    No LLM call is made when the decision cannot change: on the last round, with the
    budget spent, with an empty pool (certainly insufficient), or with ``feedback="none"``.
    """
    deps, cfg = env.deps(runtime.context), env.config
    rnd = state.get("round", 0)
    pool = ranked_pool(state.get("evidence", {}))
    unresolved = unresolved_triples(state.get("triples", []), pool)
    usage: UsageRecord = {}
    notes: list[NoteRecord] = []
    calls: list[CallRecord] = []
    record: FeedbackRecord = {
        "round": rnd,
        "mode": cfg.feedback,
        "sufficient": False,
        "p_yes": None,
        "missing": "",
        "unresolved": unresolved,
    }
    stop = ""
    if cfg.feedback == "none":
        record["sufficient"], stop = True, "feedback_off"
    elif rnd + 1 >= cfg.max_rounds:
        record["mode"], stop = "skipped", "max_rounds"
    elif spent := cfg.budget_spent(state.get("usage", {})):
        record["mode"], stop = "skipped", spent
    elif not pool:
        record["mode"], record["missing"] = "skipped", state["question"]
    elif cfg.feedback == "rerank":
        record["sufficient"], record["missing"] = sufficient_by_rerank(pool, cfg)
        stop = "sufficient" if record["sufficient"] else ""
    else:
        emit(runtime, "progress", "feedback", f"judging the evidence pool ({len(pool)} items)")
        shown = pool[: max(cfg.k, 2 * cfg.max_subqueries)]
        if cfg.feedback == "logprob":
            messages = prompts.feedback_yes_no_messages(state["question"], shown, cfg.snippet_chars)
            prob = p_yes(*deps.llm.continuation_logprobs(messages, ["Yes", "No"]))
            usage = prompt_usage(deps.llm, messages)
            calls.append(call_record("feedback", "logprob", messages, usage))
            record["p_yes"], record["sufficient"] = prob, prob >= cfg.sufficiency_threshold
        else:
            messages = prompts.feedback_json_messages(state["question"], shown, cfg.snippet_chars)
            outcome = call_json(
                deps.llm, messages, prompts.FEEDBACK_SCHEMA, parse_feedback, retries=cfg.json_retries, max_tokens=64
            )
            usage = outcome.usage
            calls.append(outcome.call("feedback"))
            if outcome.value is not None:
                record["sufficient"], record["missing"] = outcome.value
            else:
                record["sufficient"] = not unresolved
            if (note := outcome.note("feedback", "judged by triple coverage")) is not None:
                notes.append(note)
        stop = "sufficient" if record["sufficient"] else ""
    decision: Literal["continue", "answer"] = "answer" if stop else "continue"
    round_record: RoundRecord = {
        "round": rnd,
        "queries": list(state.get("pending_queries", [])),
        "new_chunk_ids": [e["chunk_id"] for e in pool if e["round"] == rnd],
        "pool_size": len(pool),
        "feedback": record,
        "decision": decision,
        "stop_reason": stop,
    }
    log.info("round %d: pool %d, decision %s (%s)", rnd, len(pool), decision, stop or "gap")
    return {"feedback": record, "rounds": [round_record], "stop_reason": stop, "usage": usage, "notes": notes,
            "calls": calls}


def parse_gap(value: Any) -> str:
    """Validate ``{"query": str}``."""
    if not isinstance(value, dict) or not isinstance(value.get("query"), str) or not value["query"].strip():
        raise ValueError("expected a non-empty 'query' string")
    return value["query"].strip()


def gap_query(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Write the next round's queries from the knowledge gap; never repeat an issued query.

    Candidates in order: the LLM's gap query (``gap_query="llm"``), the judged ``missing``
    text, each unresolved triple described by the others (:func:`describe_triple`), the
    question with the missing text. When every candidate
    was searched already, ``pending_queries`` is empty and the router goes to the answer.
    """
    deps, cfg = env.deps(runtime.context), env.config
    fb = state["feedback"]
    unresolved, missing = fb["unresolved"], fb["missing"]
    usage: UsageRecord = {}
    notes: list[NoteRecord] = []
    calls: list[CallRecord] = []
    candidates: list[str] = []
    if cfg.gap_query == "bridge":
        pool = ranked_pool(state.get("evidence", {}))
        emit(runtime, "progress", "gap_query", "second hop: searching from the best passage's best sentence")
        hop = bridge_query(state["question"], pool, deps.reranker, state.get("queries_issued", []))
        candidates += [hop] if hop else []
        missing = ""  # the hop query stands for the gap; no template fallbacks
        unresolved = []
    elif cfg.gap_query == "llm" and not cfg.budget_spent(state.get("usage", {})):
        emit(runtime, "progress", "gap_query", "writing a query for the missing evidence")
        pool = ranked_pool(state.get("evidence", {}))[: cfg.k]
        messages = prompts.gap_messages(
            state["question"], unresolved, missing, pool, state.get("queries_issued", []), cfg.snippet_chars
        )
        outcome = call_json(deps.llm, messages, prompts.GAP_SCHEMA, parse_gap, retries=cfg.json_retries, max_tokens=48)
        usage = outcome.usage
        calls.append(outcome.call("gap_query"))
        if outcome.value is not None:
            candidates.append(outcome.value)
        if (note := outcome.note("gap_query", "template gap query")) is not None:
            notes.append(note)
    if cfg.gap_query != "bridge":
        if missing:
            candidates.append(missing)
        candidates += [describe_triple(t, state.get("triples", [])) for t in unresolved]
        candidates.append(f"{state['question']} {missing}".strip())
    issued = {" ".join(q.lower().split()) for q in state.get("queries_issued", [])}
    fresh = [q for q in _dedupe(candidates) if " ".join(q.lower().split()) not in issued][: cfg.max_subqueries]
    if not fresh:
        notes.append({"node": "gap_query", "kind": "stop", "detail": "every gap query was searched already"})
    else:
        emit(runtime, "progress", "gap_query", f"round {state.get('round', 0) + 2}: searching {fresh}")
    return {
        "round": state.get("round", 0) + 1,
        "stop_reason": "" if fresh else "no_new_query",
        "pending_queries": fresh,
        "queries_issued": fresh,
        "usage": usage,
        "notes": notes,
        "calls": calls,
    }
