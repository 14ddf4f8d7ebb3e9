"""The agent's typed LangGraph state: JSON-native records merged by reducers.

Every value in the state is plain JSON (dicts, lists, strings, numbers). That keeps
checkpoints portable and safe: the SQLite saver stores them with msgpack and never needs
to import, let alone unpickle, a branchwise class (it also works with
``LANGGRAPH_STRICT_MSGPACK=true``), and LangGraph Studio shows them as they are. The
records are ``typing_extensions.TypedDict`` so pydantic can derive the graph's JSON schemas
on Python 3.11. Nodes
convert to the typed dataclasses of :mod:`branchwise.types` at their edges
(:func:`evidence_from_record`, :func:`evidence_to_record`).

Channels written by several nodes or across rounds carry reducers in ``Annotated[...]``:

* ``evidence`` — the persistent evidence pool of RFM-RAG (arXiv 2508.17862), merged by
  chunk id (:func:`merge_evidence`): an item retrieved again keeps its first round, the
  higher score and the union of its facts, so the pool never grows by duplicates and
  parallel retrieval routes (tree, hybrid, graph) can write in the same super-step;
* ``retrievals``, ``navigation``, ``rounds``, ``notes``, ``queries_issued`` — append-only
  logs (``operator.add``);
* ``usage`` — summed (:func:`add_usage`).

A node resets these for a new question with :class:`langgraph.types.Overwrite` (see
``plan``), so a thread can be reused for several questions without mixing their pools.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from typing_extensions import NotRequired, TypedDict

from branchwise.types import Evidence


class Triple(TypedDict):
    """A relational triple of the question; unknowns are variables such as ``"?x"``."""

    subject: str
    relation: str
    object: str


class EvidenceRecord(TypedDict):
    """JSON form of :class:`branchwise.types.Evidence` (same keys), plus the reranker's score.

    ``score`` is the retrieval route's (max-normalised within its list); ``rerank``, once the
    rerank node has read the item, is the reranker's score in [0, 1], which then orders the
    pool (:func:`ranked_pool`).
    """

    chunk_id: str
    text: str
    score: float
    source: str
    round: int
    query: str
    facts: list[str]
    title: str
    rerank: NotRequired[float]


class RerankRecord(TypedDict):
    """One pass of the rerank node: how many pool items it scored, with what, the best ones, and
    which routes the items kept for the answer came from (the per-question routing decision:
    passages from the tree or hybrid search, summaries, graph descriptions)."""

    round: int
    reranker: str
    scored: int
    top: list[list[Any]]  # [chunk_id, score] pairs (lists: a trace reads back as it was written)
    kept_sources: NotRequired[dict[str, int]]


class SupportRecord(TypedDict):
    """The answer-support check: was the answer backed by the chunk(s) it cites?

    ``method`` is ``"lexical"`` (the answer's words are in the cited text), ``"llm"`` (the
    LLM's P(Yes) that the cited text supports the answer), ``"abstain"`` (no evidence scored
    high enough to answer from) or ``"unchecked"`` (the backend cannot score, e.g. an
    endpoint without logprobs: ``supported`` is None and the answer is kept); ``score`` is
    P(Yes) or the covered share of words.
    """

    method: str
    supported: bool | None
    score: float
    chunk_ids: list[str]
    detail: str


class RetrievalRecord(TypedDict):
    """One retrieval call: which route, for which query, what it returned."""

    round: int
    source: str
    query: str
    chunk_ids: list[str]
    scores: list[float]


class FeedbackRecord(TypedDict):
    """The sufficiency judgement of one round (R-Feedback in RFM-RAG)."""

    round: int
    mode: str
    sufficient: bool
    p_yes: float | None
    missing: str
    unresolved: list[Triple]


class RoundRecord(TypedDict):
    """What one round did to the pool, and what was decided after it."""

    round: int
    queries: list[str]
    new_chunk_ids: list[str]
    pool_size: int
    feedback: FeedbackRecord
    decision: Literal["continue", "answer"]
    stop_reason: str


class UsageRecord(TypedDict, total=False):
    """LLM calls and tokens spent by agent nodes (navigation usage included)."""

    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    embed_calls: int
    latency_s: float


class NoteRecord(TypedDict):
    """A recorded fallback or anomaly (malformed LLM output, an empty route, ...)."""

    node: str
    kind: str
    detail: str


class CompressionRecord(TypedDict):
    """What the compress node did to the pool before generation.

    ``removed`` lists pool chunks absent from the context; ``emptied`` is True when the
    compressor judged all evidence irrelevant on purpose (selective augmentation).
    """

    method: str
    budget_tokens: int
    tokens_before: int
    tokens_after: int
    ratio: float
    removed: list[str]
    emptied: bool


class CitationRecord(TypedDict):
    """JSON form of :class:`branchwise.types.Citation`."""

    chunk_id: str
    marker: str
    title: str
    quote: str


class AnswerRecord(TypedDict):
    """The final answer as stored in the state.

    ``inferred_citations`` is True when the reader wrote no ``[n]`` marker and the citation
    was attributed by word overlap; ``withheld`` holds the reader's text when the support
    check replaced an unsupported answer by "not found".
    """

    text: str
    found: bool
    citations: list[CitationRecord]
    context_tokens: int
    inferred_citations: bool
    withheld: NotRequired[str]


def merge_evidence(
    left: dict[str, EvidenceRecord] | None, right: dict[str, EvidenceRecord] | None
) -> dict[str, EvidenceRecord]:
    """Reducer of the evidence pool: union by chunk id, never duplicating an item.

    For a chunk already present, the merged item keeps the earlier round and its text
    and source, takes the higher score, and appends facts it did not have.
    """
    merged: dict[str, EvidenceRecord] = dict(left or {})
    for chunk_id, new in (right or {}).items():
        old = merged.get(chunk_id)
        if old is None:
            merged[chunk_id] = {**new, "facts": list(new.get("facts", []))}
            continue
        facts = list(old["facts"]) + [f for f in new.get("facts", []) if f not in old["facts"]]
        merged[chunk_id] = {
            **old,
            "score": max(old["score"], new["score"]),
            "round": min(old["round"], new["round"]),
            "facts": facts,
        }
        if "rerank" in old or "rerank" in new:
            merged[chunk_id]["rerank"] = max(old.get("rerank", 0.0), new.get("rerank", 0.0))
    return merged


def add_usage(left: UsageRecord | None, right: UsageRecord | None) -> UsageRecord:
    """Reducer of usage counters: field-wise sum."""
    a, b = left or {}, right or {}
    return {
        "llm_calls": a.get("llm_calls", 0) + b.get("llm_calls", 0),
        "prompt_tokens": a.get("prompt_tokens", 0) + b.get("prompt_tokens", 0),
        "completion_tokens": a.get("completion_tokens", 0) + b.get("completion_tokens", 0),
        "embed_calls": a.get("embed_calls", 0) + b.get("embed_calls", 0),
        "latency_s": a.get("latency_s", 0.0) + b.get("latency_s", 0.0),
    }


class CallRecord(TypedDict, total=False):
    """One LLM call of an agent node (navigation and compression record theirs in their own traces).

    ``prompt_hash`` identifies the rendered prompt (16 hex digits of its sha256), so two runs
    can be compared call by call without storing every prompt.
    """

    node: str
    kind: str  # "json" | "logprob" | "answer"
    prompt_hash: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int


class ChatTurn(TypedDict):
    """One earlier turn of the conversation a question belongs to (untrusted text)."""

    role: Literal["user", "assistant"]
    content: str


class ContextRecord(TypedDict):
    """What the ``contextualize`` node did to the question (see :mod:`~branchwise.agents.nodes_context`).

    ``method`` is ``"none"`` (no history: the question is searched as asked, no LLM call),
    ``"llm"`` (rewritten into a standalone question) or ``"fallback"`` (the rewrite failed:
    the question as asked). The node runs before ``plan``, which starts the per-question
    logs afresh, so its own call, usage and notes are kept here and merged into the trace.
    """

    original: str
    standalone: str
    method: str
    history_turns: int
    usage: UsageRecord
    calls: list[CallRecord]
    notes: list[NoteRecord]


class AgentInput(TypedDict):
    """What a run takes: the question and, for a follow-up, the conversation before it."""

    question: str
    history: NotRequired[list[ChatTurn]]


class AgentState(TypedDict, total=False):
    """The whole state of one question's run.

    Attributes:
        question: the question searched and answered (untrusted text): the user's question,
            or, for a follow-up, the standalone question ``contextualize`` wrote from it.
        history: the conversation before the question (untrusted; empty for a first question).
        original_question: the question as the user asked it.
        contextualize: what the ``contextualize`` node did (:class:`ContextRecord`).
        triples: relational triples extracted by the planner.
        subqueries: sub-questions from the planner (the question itself on fallback).
        relational: the planner judged the question relational / multi-hop (graph route).
        round: the current round, 0-based.
        pending_queries: the queries the retrieval nodes run this round.
        queries_issued: every query run so far (gap queries are never repeated).
        retrievals: one record per retrieval call.
        evidence: the evidence pool (reducer :func:`merge_evidence`).
        navigation: ``TraversalTrace.to_dict()`` of each tree navigation.
        feedback: the latest sufficiency judgement.
        rounds: one record per finished round.
        stop_reason: why the loop ended: ``"sufficient"``, ``"max_rounds"``,
            ``"call_budget"``, ``"token_budget"``, ``"feedback_off"`` or ``"no_new_query"``
            (every gap query had been searched); ``""`` while it runs.
        usage: LLM calls and tokens (reducer :func:`add_usage`).
        notes: recorded fallbacks (malformed outputs, empty routes, budget stops).
        context: the (compressed) evidence given to the generator, in prompt order.
        compression: what the compress node did.
        answer: the final answer.
        calls: the agent nodes' LLM calls, in order (prompt hashes and tokens).
        reranks: one record per pass of the rerank node.
        support: the answer-support check of the final answer.
        run: what produced this run: when, over which index, with which models and settings
            (credentials redacted); set by the first node from the assembly's provenance.
    """

    question: str
    history: list[ChatTurn]
    original_question: str
    contextualize: ContextRecord
    triples: list[Triple]
    subqueries: list[str]
    relational: bool
    round: int
    pending_queries: list[str]
    queries_issued: Annotated[list[str], operator.add]
    retrievals: Annotated[list[RetrievalRecord], operator.add]
    evidence: Annotated[dict[str, EvidenceRecord], merge_evidence]
    navigation: Annotated[list[dict[str, Any]], operator.add]
    feedback: FeedbackRecord
    rounds: Annotated[list[RoundRecord], operator.add]
    stop_reason: str
    usage: Annotated[UsageRecord, add_usage]
    notes: Annotated[list[NoteRecord], operator.add]
    context: list[EvidenceRecord]
    compression: CompressionRecord
    answer: AnswerRecord
    calls: Annotated[list[CallRecord], operator.add]
    reranks: Annotated[list[RerankRecord], operator.add]
    support: SupportRecord
    run: dict[str, Any]


def evidence_to_record(ev: Evidence) -> EvidenceRecord:
    """The JSON record of an :class:`Evidence`."""
    return {
        "chunk_id": ev.chunk_id,
        "text": ev.text,
        "score": float(ev.score),
        "source": ev.source,
        "round": int(ev.round),
        "query": ev.query,
        "facts": list(ev.facts),
        "title": ev.title,
    }


def evidence_from_record(rec: EvidenceRecord) -> Evidence:
    """The :class:`Evidence` of a JSON record (its score: the rank score, see :func:`rank_score`)."""
    return Evidence.from_dict({**rec, "score": rank_score(rec)})


def rank_score(e: EvidenceRecord) -> float:
    """What orders the pool: the reranker's score when the item has one, else the route's."""
    return e.get("rerank", e["score"])


def ranked_pool(pool: dict[str, EvidenceRecord]) -> list[EvidenceRecord]:
    """Pool items best first (rank score, then earlier round, then chunk id): a stable order."""
    return sorted(pool.values(), key=lambda e: (-rank_score(e), e["round"], e["chunk_id"]))
