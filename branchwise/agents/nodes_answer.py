"""Answer nodes: compress the pool to the generator's token budget, then write a cited answer.

``compress`` is the hook of the compression stage (RECOMP / CoLoR-style compressors of
:mod:`branchwise.compression.base`): with a compressor it records what it kept and the
token ratio; without one (or with mode ``"none"``) it passes the ranked pool through,
truncated to ``context_budget_tokens`` (whole items while they fit, then the next item cut
at a token edge, so a single long chunk is shortened rather than dropped).
``generate`` writes the grounded answer with :class:`~branchwise.generation.answer.AnswerWriter`
and streams its text as ``"token"`` events.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from langgraph.runtime import Runtime

from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.events import emit
from branchwise.agents.state import (
    AgentState,
    AnswerRecord,
    CompressionRecord,
    EvidenceRecord,
    UsageRecord,
    evidence_from_record,
    evidence_to_record,
    rank_score,
    ranked_pool,
)
from branchwise.agents.structured import call_record, usage_of, usage_record
from branchwise.generation.answer import AnswerConfig, AnswerWriter
from branchwise.compression.base import count_tokens, truncate_tokens

log = logging.getLogger(__name__)

#: Below this many tokens of budget left, a truncated tail item is not worth including.
MIN_TAIL_TOKENS = 24


def truncate_pool(pool: Sequence[EvidenceRecord], budget: int) -> tuple[list[EvidenceRecord], int, int]:
    """Ranked items within ``budget`` tokens; returns ``(kept, tokens_before, tokens_after)``."""
    kept: list[EvidenceRecord] = []
    before = used = 0
    for rec in pool:
        n = count_tokens(rec["text"])
        before += n
        left = budget - used
        if n <= left:
            kept.append(rec)
            used += n
        elif left >= MIN_TAIL_TOKENS and (cut := truncate_tokens(rec["text"], left)):
            kept.append({**rec, "text": cut})
            used += count_tokens(cut)
    return kept, before, used


def compress(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Fit the best ``keep`` pool items into the generator's budget.

    Selective, as RECOMP: evidence that already fits the budget is passed whole; otherwise
    the configured compressor (or truncation) cuts it. With a reranker and
    ``abstain_threshold``, a pool whose best item scores below it is dropped (the answer is
    then "not found", without an LLM call).
    """
    deps, cfg = env.deps(runtime.context), env.config
    full = ranked_pool(state.get("evidence", {}))
    pool = full[: cfg.keep]
    budget = cfg.context_budget_tokens
    usage: UsageRecord = {}
    compressor = deps.compressor
    before = sum(count_tokens(r["text"]) for r in pool)
    best = rank_score(pool[0]) if pool else 0.0
    if deps.reranker is not None and cfg.abstain_threshold > 0 and best < cfg.abstain_threshold:
        emit(runtime, "progress", "compress", f"no passage is relevant enough (best {best:.2f}): not answering")
        context, after, method, emptied = [], 0, "abstain", True
    elif before <= budget:
        emit(runtime, "progress", "compress", f"{len(pool)} items fit in {budget} tokens: no compression")
        context, after, method, emptied = list(pool), before, "none", False
    elif compressor is not None and compressor.mode != "none":
        emit(runtime, "progress", "compress", f"compressing {len(pool)} items ({compressor.mode})")
        cc = compressor.compress(state["question"], [evidence_from_record(r) for r in pool], budget)
        context = [evidence_to_record(e) for e in cc.items]
        before, after, method, emptied = cc.tokens_before, cc.tokens_after, cc.mode, cc.dropped
        usage = usage_record(cc.usage)
    else:
        emit(runtime, "progress", "compress", f"fitting {len(pool)} items into {budget} tokens")
        context, before, after = truncate_pool(pool, budget)
        method, emptied = "truncate", False
    kept = {e["chunk_id"] for e in context}
    record: CompressionRecord = {
        "method": method,
        "budget_tokens": budget,
        "tokens_before": before,
        "tokens_after": after,
        "ratio": round(after / before, 4) if before else 0.0,
        "removed": [e["chunk_id"] for e in full if e["chunk_id"] not in kept],
        "emptied": emptied,
    }
    log.info("context: %d -> %d tokens (%s)", before, after, method)
    return {"context": context, "compression": record, "usage": usage}


def generate(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Write the cited answer from the (compressed) context; NOT_FOUND when unsupported.

    The final answer is always written, even with the loop's budget spent: budgets bound
    the search, and the answer is the one call the query exists for.
    """
    deps, cfg = env.deps(runtime.context), env.config
    context = [evidence_from_record(r) for r in state.get("context", [])]
    emit(runtime, "progress", "generate", f"writing the answer from {len(context)} sources")
    writer = AnswerWriter(deps.llm, AnswerConfig(max_tokens=cfg.answer_max_tokens, style=cfg.answer_style))
    written = writer.write(state["question"], context, on_token=lambda piece: emit(runtime, "token", "generate", piece))
    answer: AnswerRecord = {
        "text": written.text,
        "found": written.found,
        "citations": [
            {"chunk_id": c.chunk_id, "marker": c.marker, "title": c.title, "quote": c.quote} for c in written.citations
        ],
        "context_tokens": state.get("compression", {}).get("tokens_after", 0),
        "inferred_citations": written.inferred_citations,
    }
    usage = usage_of(written.completion) if written.completion is not None else {}
    calls = [call_record("generate", "answer", written.messages, usage)] if written.completion is not None else []
    return {"answer": answer, "usage": usage, "calls": calls}
