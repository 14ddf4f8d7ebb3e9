"""``AgentTrace``: everything the agent did for one question, as reloadable JSON.

Per round: the queries run, what each retrieval route returned, which chunks entered the
pool, the pool size and the feedback decision (P("Yes") or the judged gap, unresolved
triples, why the loop stopped). Around the rounds: the plan (triples, sub-questions), each
tree navigation's full :class:`~branchwise.navigation.trace.TraversalTrace` (slates, raw /
calibrated / path scores, prompts, tokens, latency), the compression (method, tokens before
and after, ratio), recorded fallbacks (malformed LLM output), usage and the answer.
Schema ``branchwise.agent_trace/1``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from branchwise.agents.state import (
    RerankRecord,
    SupportRecord,
    CallRecord,
    AnswerRecord,
    ContextRecord,
    CompressionRecord,
    NoteRecord,
    RetrievalRecord,
    RoundRecord,
    Triple,
    add_usage,
)
from branchwise.errors import IndexFormatError
from branchwise.files import atomic_write_text
from branchwise.navigation.trace import TraversalTrace
from branchwise.types import Usage

AGENT_TRACE_SCHEMA = "branchwise.agent_trace/1"


def usage_from_record(rec: Mapping[str, Any]) -> Usage:
    """A :class:`Usage` from a usage record (missing fields are zero)."""
    return Usage(**{f.name: rec.get(f.name, f.default) for f in dataclasses.fields(Usage)})


def _context_summary(ctx: ContextRecord | None) -> dict[str, Any] | None:
    """What the trace keeps of a :class:`ContextRecord` (its calls, usage and notes are merged
    into the trace's own)."""
    if ctx is None:
        return None
    return {k: ctx[k] for k in ("original", "standalone", "method", "history_turns")}  # type: ignore[literal-required]


@dataclass(slots=True)
class AgentTrace:
    """The agent's record of one question.

    Attributes:
        question: the question searched and answered: as asked, or for a follow-up the
            standalone question written from the conversation.
        original_question: the question as the user asked it ("" in traces written before
            follow-ups existed).
        contextualize: the rewrite of a follow-up (``original``, ``standalone``, ``method``
            ``"none"`` / ``"llm"`` / ``"fallback"``, ``history_turns``); its LLM call, usage
            and notes are also counted in ``calls``, ``usage`` and ``notes``.
        thread_id: the LangGraph thread (checkpoint key) of the run.
        config: the :class:`~branchwise.agents.config.AgentConfig` as a dict.
        triples / subqueries / relational: the plan.
        rounds: per round: queries, new chunk ids, pool size, feedback, decision.
        stop_reason: why the loop ended (``"sufficient"``, ``"max_rounds"``,
            ``"call_budget"``, ``"no_new_query"``, ...).
        retrievals: per retrieval call: route, query, chunk ids and scores.
        navigation: the tree navigations, in order.
        navigation_rounds: the agent round of each navigation (parallel to ``navigation``).
        compression: what the compress node did (None if the run stopped before it).
        notes: fallbacks and anomalies (malformed outputs, skipped routes, budget stops).
        usage: LLM calls and tokens of the whole query (navigation included).
        answer: the final answer record (None if the run did not finish).
        calls: the agent nodes' LLM calls (node, kind, prompt hash, tokens), in order.
        run: what produced the run: ``created_at`` (UTC), ``index``, ``llm``, ``embedder``
            and the ``settings`` (credentials redacted).
        reranks: each pass of the rerank node (reranker, items scored, the best ones).
        support: the answer-support check (method, verdict, score, cited chunks, why); an
            answer it rejected keeps the reader's text in ``answer["withheld"]``.
    """

    question: str
    thread_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    triples: list[Triple] = field(default_factory=list)
    subqueries: list[str] = field(default_factory=list)
    relational: bool = False
    rounds: list[RoundRecord] = field(default_factory=list)
    stop_reason: str = ""
    retrievals: list[RetrievalRecord] = field(default_factory=list)
    navigation: list[TraversalTrace] = field(default_factory=list)
    navigation_rounds: list[int] = field(default_factory=list)
    compression: CompressionRecord | None = None
    notes: list[NoteRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    answer: AnswerRecord | None = None
    calls: list[CallRecord] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    original_question: str = ""
    contextualize: dict[str, Any] | None = None
    reranks: list[RerankRecord] = field(default_factory=list)
    support: SupportRecord | None = None

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], *, thread_id: str = "", config: Mapping[str, Any] | None = None
    ) -> "AgentTrace":
        """Build the trace from a (final) agent state."""
        nav_dicts = list(state.get("navigation", []))
        # the rewrite runs before `plan` starts the per-question logs: merge its records back in
        ctx: ContextRecord | None = state.get("contextualize")
        before = ctx or {"calls": [], "notes": [], "usage": {}}
        return cls(
            question=state.get("question", ""),
            thread_id=thread_id,
            config=dict(config or {}),
            triples=list(state.get("triples", [])),
            subqueries=list(state.get("subqueries", [])),
            relational=bool(state.get("relational", False)),
            rounds=list(state.get("rounds", [])),
            stop_reason=state.get("stop_reason", ""),
            retrievals=list(state.get("retrievals", [])),
            navigation=[
                TraversalTrace.from_dict({k: v for k, v in d.items() if k != "agent_round"}) for d in nav_dicts
            ],
            navigation_rounds=[int(d.get("agent_round", 0)) for d in nav_dicts],
            compression=state.get("compression"),
            notes=[*before["notes"], *state.get("notes", [])],
            usage=usage_from_record(add_usage(before["usage"], state.get("usage", {}))),
            answer=state.get("answer"),
            calls=[*before["calls"], *state.get("calls", [])],
            run=dict(state.get("run", {})),
            original_question=state.get("original_question", state.get("question", "")),
            contextualize=_context_summary(ctx),
            reranks=list(state.get("reranks", [])),
            support=state.get("support"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": AGENT_TRACE_SCHEMA,
            "question": self.question,
            "thread_id": self.thread_id,
            "config": self.config,
            "triples": self.triples,
            "subqueries": self.subqueries,
            "relational": self.relational,
            "rounds": self.rounds,
            "stop_reason": self.stop_reason,
            "retrievals": self.retrievals,
            "navigation": [t.to_dict() for t in self.navigation],
            "navigation_rounds": self.navigation_rounds,
            "compression": self.compression,
            "notes": self.notes,
            "usage": dataclasses.asdict(self.usage),
            "answer": self.answer,
            "calls": self.calls,
            "run": self.run,
            "original_question": self.original_question,
            "contextualize": self.contextualize,
            "reranks": self.reranks,
            "support": self.support,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AgentTrace":
        if d.get("schema") != AGENT_TRACE_SCHEMA:
            raise IndexFormatError(
                f"agent trace schema {d.get('schema')!r} is not {AGENT_TRACE_SCHEMA!r}.",
                fix="re-run the question with this version of branchwise to write a new trace.",
            )
        return cls(
            question=d["question"],
            thread_id=d.get("thread_id", ""),
            config=dict(d.get("config", {})),
            triples=list(d.get("triples", [])),
            subqueries=list(d.get("subqueries", [])),
            relational=bool(d.get("relational", False)),
            rounds=list(d.get("rounds", [])),
            stop_reason=d.get("stop_reason", ""),
            retrievals=list(d.get("retrievals", [])),
            navigation=[TraversalTrace.from_dict(t) for t in d.get("navigation", [])],
            navigation_rounds=list(d.get("navigation_rounds", [])),
            compression=d.get("compression"),
            notes=list(d.get("notes", [])),
            usage=usage_from_record(d.get("usage", {})),
            answer=d.get("answer"),
            calls=list(d.get("calls", [])),
            run=dict(d.get("run", {})),
            original_question=d.get("original_question", ""),
            contextualize=d.get("contextualize"),
            reranks=list(d.get("reranks", [])),
            support=d.get("support"),
        )

    def save(self, path: Path) -> None:
        """Write the trace as JSON (atomically)."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path) -> "AgentTrace":
        """Read a trace written by :meth:`save`."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as e:
            raise IndexFormatError(f"no agent trace at {path}.", fix="check the path given to --trace.") from e
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise IndexFormatError(
                f"agent trace {path} is corrupt: {e}.", fix="re-run the question to write it again."
            ) from e


# -- reading a trace (shared by the CLI rendering and the chat UI) ----------------------
def node_scores(trace: Any) -> dict[str, float]:
    """Last path score recorded for every node in the agent trace's navigations."""
    scores: dict[str, float] = {}
    for nav in getattr(trace, "navigation", []) or []:
        for step in nav.steps:
            for item, p in zip(step.items, step.path_scores):
                scores[item] = p
    return scores


def expanded_nodes(trace: Any) -> list[str]:
    """Nodes the navigator expanded, in order, across all navigations."""
    out: list[str] = []
    for nav in getattr(trace, "navigation", []) or []:
        out.extend(step.expanded for step in nav.steps)
    return out


def expanded_by_round(trace: Any) -> list[tuple[int, str, list[str]]]:
    """``(agent round, query, expanded nodes in order)`` per navigation of the trace.

    Rounds count from 1. They come from ``trace.navigation_rounds`` (0-based agent rounds of
    an :class:`~branchwise.agents.trace.AgentTrace`) when the trace has them, else the
    navigations are numbered 1, 2, ...
    """
    navs = list(getattr(trace, "navigation", []) or [])
    rounds = list(getattr(trace, "navigation_rounds", []) or [])
    if len(rounds) != len(navs):
        rounds = list(range(len(navs)))
    rounds = [int(r) + 1 for r in rounds]
    return [(r, getattr(nav, "question", ""), [s.expanded for s in nav.steps]) for r, nav in zip(rounds, navs)]
