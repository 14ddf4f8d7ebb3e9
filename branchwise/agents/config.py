"""``AgentConfig``: every knob of the retrieval-feedback agent, frozen and documented.

The defaults are chosen for the embedded 1.5B model on a 2-core CPU, where each LLM call
costs seconds: feedback reads P("Yes") from one forward pass instead of generating JSON,
and budgets are tight. Larger backends can switch ``feedback="json"``, ``gap_query="llm"``
and raise the budgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from branchwise.errors import InputError

if TYPE_CHECKING:
    from branchwise.agents.state import UsageRecord

#: the tree routes of the agent; the flat ones are the names of
#: :data:`branchwise.retrieval.registry.RETRIEVERS` ("hybrid", "dense", "bm25", ...)
TREE_ROUTES: tuple[str, ...] = ("auto", "tree", "tree+hybrid")
RetrievalRoute = str


def retrieval_routes() -> tuple[str, ...]:
    """Every value ``AgentConfig.retrieval`` accepts (``--retrieval`` choices)."""
    from branchwise.retrieval.registry import RETRIEVERS

    return (*TREE_ROUTES, *RETRIEVERS.names())
GraphPolicy = Literal["auto", "always", "never"]
FeedbackMode = Literal["rerank", "logprob", "json", "none"]
DistillMode = Literal["llm", "sentences", "none"]
GapQueryMode = Literal["bridge", "llm", "template"]
SupportMode = Literal["auto", "lexical", "llm", "none"]

# Super-steps one round of the loop takes: retrieve (parallel routes share a super-step),
# rerank, distill, feedback, gap_query. The rest of the graph: contextualize, plan, compress,
# generate, verify.
_STEPS_PER_ROUND = 5
_FIXED_STEPS = 5
_RECURSION_MARGIN = 4


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """How the agent plans, retrieves, judges sufficiency and answers.

    Attributes:
        max_rounds: retrieval rounds at most (1 = a single retrieve-then-answer pass).
            The LangGraph recursion limit is derived from it (:attr:`recursion_limit`), so
            the loop always ends by this bound, never by LangGraph's recursion error.
        max_llm_calls: per-query budget of LLM calls made by agent nodes (planning,
            distillation, feedback, gap queries, the answer). When spent, the loop stops
            and the agent answers from the pool it has.
        max_prompt_tokens: per-query budget of prompt tokens for agent nodes.
        retrieval: the retrieval route: ``"tree"`` (LATTICE navigation), ``"hybrid"``
            (BM25 + dense, reciprocal rank fusion), ``"dense"``, ``"bm25"``,
            ``"tree+hybrid"`` (both, fused in the pool), or ``"auto"`` (``"tree+hybrid"``
            when the index has a tree and a tree searcher is configured, else hybrid).
        graph: when to add the GRAG graph route: ``"auto"`` (relational / multi-hop
            questions, when a graph retriever is configured), ``"always"``, ``"never"``.
        k: chunks retrieved per query and route.
        max_subqueries: queries searched per round at most: in the first round the question
            itself plus the planner's first sub-questions; later, gap queries.
        plan: extract triples and sub-questions with the LLM (RFM-RAG); False searches the
            question itself and saves one call.
        json_retries: extra attempts after a structured (JSON) output fails to parse.
        distill: ``"llm"`` distils key facts of new evidence in batched calls;
            ``"sentences"`` keeps the sentences that overlap the question most (no LLM);
            ``"none"`` keeps no facts.
        distill_batch: evidence items per distillation call.
        facts_per_item: key facts kept per evidence item.
        feedback: how the loop decides to search again. ``"rerank"`` (no LLM call): the
            pool suffices once :attr:`hop_docs` different documents score at least
            :attr:`hop_threshold` with the reranker, else a second hop runs; ``"logprob"``
            judges sufficiency by the LLM's P("Yes") from one forward pass; ``"json"``
            asks the LLM for ``{sufficient, missing}``; ``"none"`` never loops.
        sufficiency_threshold: P("Yes") at or above which the pool counts as sufficient.
        hop_threshold: reranker score a passage needs to count toward sufficiency
            (``feedback="rerank"``).
        hop_docs: documents that must reach :attr:`hop_threshold` for the pool to suffice
            (2 for two-hop questions: a bridge and an answer passage).
        gap_query: how the next round's query is written. ``"bridge"`` (no LLM call): the
            question plus the best sentence (by the reranker) of the best passage, so the
            passage about the bridge entity is searched for; ``"llm"`` writes it from the
            unresolved triples, the judged gap and the pool (RFM-RAG); ``"template"``
            composes it from the triples and the judged gap.
        candidates: chunks each route returns per query when a reranker orders the pool
            (the cheap first stage of the cascade); without a reranker, :attr:`k`.
        keep: pool items (best by rank score) handed to compression and the answer.
        summaries: internal-node summaries of the tree added per query as candidates (RAPTOR's
            collapsed tree; each cited through its best leaf). The reranker then chooses, per
            question, between passages and summaries (recorded in the trace's ``reranks``).
            0 turns the summary route off.
        abstain_threshold: with a reranker, answer "not found" without an LLM call when
            no passage scores at least this (0 turns it off).
        support: the answer-support check after generation: ``"auto"`` accepts an answer
            whose words all appear in the text it cites and asks the LLM's P(Yes) otherwise;
            ``"lexical"`` / ``"llm"`` use one of the two; ``"none"`` trusts the reader.
            An unsupported answer becomes "not found", with the reason in the trace.
        support_threshold: P(Yes) at or above which the LLM check accepts the answer.
        context_budget_tokens: token budget of the evidence given to the generator (the
            compressor's budget, or the truncation budget without one).
        answer_max_tokens: generation bound of the final answer.
        answer_style: ``"sentence"`` (one cited sentence) or ``"short"`` (only the answer
            span and its citation, for EM/F1-scored QA benchmarks); see
            :class:`~branchwise.generation.answer.AnswerConfig`.
        snippet_chars: characters of evidence text shown in feedback and gap prompts.
    """

    max_rounds: int = 2
    max_llm_calls: int = 12
    max_prompt_tokens: int = 12_000
    retrieval: RetrievalRoute = "auto"
    graph: GraphPolicy = "auto"
    k: int = 4
    max_subqueries: int = 2
    plan: bool = False
    json_retries: int = 1
    distill: DistillMode = "sentences"
    distill_batch: int = 4
    facts_per_item: int = 2
    feedback: FeedbackMode = "rerank"
    sufficiency_threshold: float = 0.5
    hop_threshold: float = 0.5
    hop_docs: int = 2
    gap_query: GapQueryMode = "bridge"
    candidates: int = 20
    keep: int = 6
    summaries: int = 0
    abstain_threshold: float = 0.0
    support: SupportMode = "auto"
    support_threshold: float = 0.5
    context_budget_tokens: int = 384
    answer_max_tokens: int = 200
    answer_style: Literal["sentence", "short"] = "sentence"
    snippet_chars: int = 400

    def __post_init__(self) -> None:
        checks = {
            "max_rounds": self.max_rounds >= 1,
            "max_llm_calls": self.max_llm_calls >= 1,
            "max_prompt_tokens": self.max_prompt_tokens >= 1,
            "k": self.k >= 1,
            "max_subqueries": self.max_subqueries >= 1,
            "json_retries": self.json_retries >= 0,
            "distill_batch": self.distill_batch >= 1,
            "facts_per_item": self.facts_per_item >= 1,
            "sufficiency_threshold": 0.0 <= self.sufficiency_threshold <= 1.0,
            "hop_threshold": 0.0 <= self.hop_threshold <= 1.0,
            "hop_docs": self.hop_docs >= 1,
            "candidates": self.candidates >= 1,
            "keep": self.keep >= 1,
            "summaries": self.summaries >= 0,
            "abstain_threshold": 0.0 <= self.abstain_threshold <= 1.0,
            "support_threshold": 0.0 <= self.support_threshold <= 1.0,
            "context_budget_tokens": self.context_budget_tokens >= 1,
            "answer_max_tokens": self.answer_max_tokens >= 1,
            "snippet_chars": self.snippet_chars >= 20,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if self.retrieval not in retrieval_routes():
            bad.append(f"retrieval (one of {', '.join(retrieval_routes())})")
        if bad:
            raise InputError(
                f"AgentConfig has out-of-range values: {', '.join(bad)}.",
                fix="use positive counts and budgets, and a sufficiency_threshold in [0, 1].",
            )

    @classmethod
    def rfm(cls, **changes: object) -> "AgentConfig":
        """The LLM-judged RFM-RAG loop (arXiv 2508.17862): the LLM plans triples and
        sub-questions, judges sufficiency by P("Yes") and the gap query comes from the
        unresolved triples; no reranker-based hop and no support check. Worth its extra
        calls with larger readers; the defaults are the cascade for small local ones.
        """
        base = {"plan": True, "feedback": "logprob", "gap_query": "template", "support": "none"}
        return cls(**{**base, **changes})  # type: ignore[arg-type]

    @property
    def recursion_limit(self) -> int:
        """LangGraph's ``recursion_limit`` for one query, derived from :attr:`max_rounds`.

        The loop is bounded by ``max_rounds`` in the routers; this limit only backs that
        bound up, with a small margin, so a routing bug fails fast instead of spinning.
        """
        return _FIXED_STEPS + _STEPS_PER_ROUND * self.max_rounds + _RECURSION_MARGIN

    def budget_spent(self, usage: "UsageRecord") -> str:
        """Why the per-query budget is spent (``"call_budget"`` / ``"token_budget"``), or ``""``."""
        if usage.get("llm_calls", 0) >= self.max_llm_calls:
            return "call_budget"
        if usage.get("prompt_tokens", 0) >= self.max_prompt_tokens:
            return "token_budget"
        return ""
