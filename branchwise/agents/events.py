"""Typed events of a streamed agent run (what ``Agent.stream`` yields, what a UI consumes).

Four kinds, in the order a UI meets them:

* ``"step"`` — a node finished (LangGraph ``stream_mode="updates"``); ``data`` summarises its
  update (pool size, queries, the feedback decision) without the bulky texts;
* ``"progress"`` — a node reported progress while running (``stream_mode="custom"``):
  "navigating level 2", "evidence pool: 4 items", "compressing";
* ``"token"`` — a piece of the answer text as the generator produces it;
* ``"answer"`` — the final :class:`~branchwise.types.Answer` (always the last event).

Nodes write progress and tokens with :func:`emit` through LangGraph's stream writer
(``runtime.stream_writer``), which is a no-op when nobody streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.runtime import Runtime

from branchwise.types import Answer

EventKind = Literal["step", "progress", "token", "answer"]


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One event of a streamed run.

    Attributes:
        kind: see the module docstring.
        node: the graph node it came from ("" for the final answer event).
        message: a short human-readable line (for ``"token"``: the text piece).
        data: small JSON-able details.
        answer: the final answer, set only on the ``"answer"`` event.
    """

    kind: EventKind
    node: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    answer: Answer | None = None


def emit(runtime: Runtime[Any], kind: Literal["progress", "token"], node: str, message: str, **data: Any) -> None:
    """Write a progress or token event to LangGraph's custom stream."""
    runtime.stream_writer({"kind": kind, "node": node, "message": message, "data": data})


def event_from_custom(payload: Any) -> AgentEvent | None:
    """The :class:`AgentEvent` of a custom-stream payload written by :func:`emit`."""
    if not isinstance(payload, dict) or payload.get("kind") not in ("progress", "token"):
        return None
    return AgentEvent(
        kind=payload["kind"],
        node=str(payload.get("node", "")),
        message=str(payload.get("message", "")),
        data=dict(payload.get("data") or {}),
    )


def step_summary(node: str, update: dict[str, Any] | None) -> AgentEvent:
    """A ``"step"`` event summarising a node's state update (texts left out)."""
    update = update or {}
    data: dict[str, Any] = {}
    parts: list[str] = []
    if "contextualize" in update:
        ctx = update["contextualize"]
        data["standalone_question"], data["rewritten"] = ctx["standalone"], ctx["method"] == "llm"
        parts.append(f"standalone question: {ctx['standalone']}" if data["rewritten"]
                     else "no history: the question as asked" if ctx["method"] == "none"
                     else "rewrite failed: the question as asked")
    if "pending_queries" in update:
        data["queries"] = list(_plain(update["pending_queries"]))
        parts.append(f"queries: {data['queries']}")
    if "evidence" in update:
        ev = _plain(update["evidence"])
        data["evidence_ids"] = list(ev)
        parts.append(f"{len(ev)} evidence item(s)")
    if "rounds" in update:
        rounds = _plain(update["rounds"])
        if rounds:
            last = rounds[-1]
            data["decision"] = last["decision"]
            data["pool_size"] = last["pool_size"]
            data["sufficient"] = last["feedback"]["sufficient"]
            parts.append(f"pool {last['pool_size']}, decision: {last['decision']}")
    if "compression" in update:
        comp = update["compression"]
        data["compression"] = {k: comp[k] for k in ("method", "tokens_before", "tokens_after", "ratio")}
        parts.append(f"context {comp['tokens_before']} → {comp['tokens_after']} tokens")
    if "answer" in update:
        data["found"] = update["answer"]["found"]
        parts.append("answer written" if data["found"] else "not found in the corpus")
    return AgentEvent(kind="step", node=node, message=f"{node}: " + ("; ".join(parts) or "done"), data=data)


def _plain(value: Any) -> Any:
    """Unwrap a LangGraph ``Overwrite`` (used when a node resets a channel)."""
    return getattr(value, "value", value)
