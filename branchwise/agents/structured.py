"""LLM calls of agent nodes: structured output with repair → retry → recorded fallback.

Small local models break JSON often. Every structured step goes through
:func:`call_json`: the backend's ``chat_json`` (grammar-constrained where the backend can,
lenient parsing with repair otherwise), then a shape check by the caller's ``parse``; a
failure of either is retried up to ``retries`` times, after which the caller falls back to
a safe default and records a note — a malformed output never crashes the agent and never
passes silently. Transient backend errors (``retryable=True``) propagate, so the node's
LangGraph ``RetryPolicy`` retries the whole node.

Endpoint faults below the nodes (timeouts, resets, 5xx / 429 retries, JSON-mode fallbacks,
empty completions) are collected per question by :func:`question_scope` — which also holds
the question's deadline — and become trace notes with :func:`fault_notes`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Sequence, TypeVar

from branchwise.agents.state import CallRecord, NoteRecord, UsageRecord, add_usage
from branchwise.errors import OutputParseError
from branchwise.models.base import LLM, Completion, GenParams, Message, prompt_hash
from branchwise.models.retry import CallScope, Fault
from branchwise.types import Usage

log = logging.getLogger(__name__)

T = TypeVar("T")


def usage_of(completion: Completion) -> UsageRecord:
    """Usage of one completion (a cached completion costs tokens, not a fresh call)."""
    return {
        "llm_calls": 0 if completion.cached else 1,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "latency_s": completion.latency_s,
    }


def usage_record(u: Usage) -> UsageRecord:
    """The state record of a :class:`~branchwise.types.Usage` (navigation, compression)."""
    return {
        "llm_calls": u.llm_calls,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "embed_calls": u.embed_calls,
        "latency_s": u.latency_s,
    }


def prompt_usage(llm: LLM, messages: Sequence[Message]) -> UsageRecord:
    """Usage of a call that returned no completion (logprobs, or a parse failure)."""
    return {"llm_calls": 1, "prompt_tokens": sum(llm.count_tokens(m.content) for m in messages)}


def call_record(node: str, kind: str, messages: Sequence[Message], usage: UsageRecord, attempts: int = 1) -> CallRecord:
    """The trace record of one node's LLM call(s) on ``messages``."""
    return {"node": node, "kind": kind, "prompt_hash": prompt_hash(messages), "attempts": attempts,
            "prompt_tokens": int(usage.get("prompt_tokens", 0)), "completion_tokens": int(usage.get("completion_tokens", 0))}


def sum_usage(*records: UsageRecord) -> UsageRecord:
    """Field-wise sum of usage records."""
    total: UsageRecord = {}
    for r in records:
        total = add_usage(total, r)
    return total


@dataclass(slots=True)
class JsonOutcome(Generic[T]):
    """Result of :func:`call_json`.

    Attributes:
        value: the parsed value, or None when every attempt failed.
        usage: what all attempts cost.
        attempts: how many calls were made.
        repaired: the accepted output needed lenient repair.
        errors: why each failed attempt failed.
        messages: the prompt (for the trace's call record).
    """

    value: T | None
    usage: UsageRecord
    attempts: int
    repaired: bool
    errors: list[str]
    messages: Sequence[Message] = ()

    def call(self, node: str) -> CallRecord:
        """The trace record of this call."""
        return call_record(node, "json", self.messages, self.usage, self.attempts)

    def note(self, node: str, fallback: str) -> NoteRecord | None:
        """A note for the trace when the call failed or needed repair (None otherwise)."""
        if self.value is None:
            return {"node": node, "kind": "fallback", "detail": f"{fallback}; errors: {' | '.join(self.errors)}"}
        if self.repaired or self.errors:
            detail = f"accepted after {self.attempts} attempt(s), repaired={self.repaired}"
            return {"node": node, "kind": "repaired", "detail": detail}
        return None


def call_json(
    llm: LLM,
    messages: Sequence[Message],
    schema: dict[str, Any],
    parse: Callable[[Any], T],
    *,
    retries: int,
    max_tokens: int,
) -> JsonOutcome[T]:
    """Call ``llm.chat_json`` and validate with ``parse``, retrying malformed outputs.

    ``parse`` turns the decoded JSON into the caller's value and raises ``ValueError``,
    ``TypeError`` or ``KeyError`` when its shape is wrong.
    """
    usage: UsageRecord = {}
    errors: list[str] = []
    params = GenParams(max_tokens=max_tokens)
    for attempt in range(1, retries + 2):
        try:
            out = llm.chat_json(messages, schema, params)
        except OutputParseError as e:
            usage = sum_usage(usage, prompt_usage(llm, messages))
            errors.append(f"unparseable: {e.raw[:80]!r}")
            log.debug("attempt %d: unparseable JSON from %s", attempt, llm.name)
            continue
        usage = sum_usage(usage, usage_of(out.completion))
        try:
            value = parse(out.value)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            errors.append(f"wrong shape: {e}")
            log.debug("attempt %d: JSON of the wrong shape from %s: %s", attempt, llm.name, e)
            continue
        return JsonOutcome(value, usage, attempt, out.repaired, errors, messages)
    log.info("structured output failed after %d attempts: %s", retries + 1, "; ".join(errors))
    return JsonOutcome(None, usage, retries + 1, False, errors, messages)


# -- endpoint faults and the question's deadline --------------------------------------------
def current_node() -> str:
    """The LangGraph node running in this context (``""`` outside a graph run)."""
    try:
        from langgraph.config import get_config

        return str(get_config().get("metadata", {}).get("langgraph_node", ""))
    except Exception:  # outside a runnable context  # noqa: BLE001
        return ""


def question_scope(deadline_s: float | None) -> CallScope:
    """The scope of one question's backend calls: the deadline (None: none) and the fault
    log, each fault labelled with the node it happened in. Run the graph in it
    (``scope.run(graph.invoke, ...)`` / ``scope.iterate(graph.stream(...))``)."""
    return CallScope(deadline_s, what="question", label=current_node)


def fault_notes(faults: Iterable[Fault]) -> list[NoteRecord]:
    """Trace notes of endpoint faults: kind ``fallback`` for a degraded mode or an empty
    completion passed on, ``endpoint_fault`` for a failed attempt (its detail says what followed)."""
    notes: list[NoteRecord] = []
    for f in faults:
        kind = "fallback" if f.kind in ("format_fallback", "empty_completion") else "endpoint_fault"
        notes.append({"node": f.where or "llm", "kind": kind, "detail": f.describe()})
    return notes
