"""Follow-up questions: the ``contextualize`` node turns one into a standalone question.

A chat client sends the conversation; "and who founded it?" cannot be searched on its own.
The first node of the graph reads the run's ``history`` (earlier ``{role, content}`` turns)
and asks the LLM for the question rewritten with the names it refers to ("who founded
Sony?"). Everything after it (plan, retrieval, feedback, the answer) works on that
standalone question; the state and the trace keep both (``original_question``,
``contextualize``).

* no history (a first question): the question is kept as asked, **no LLM call**;
* with history: one short JSON call (:func:`~branchwise.agents.prompts.contextualize_messages`);
  the conversation is untrusted text, quoted as data (assistant turns included: they quote
  documents). Only the last :data:`MAX_TURNS` turns are shown, each cut to
  :data:`TURN_CHARS` characters;
* an unusable rewrite (malformed, empty, far longer than a question) falls back to the
  question as asked and records a note.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from langgraph.runtime import Runtime

from branchwise.agents import prompts
from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.events import emit
from branchwise.agents.state import AgentState, CallRecord, ChatTurn, ContextRecord, NoteRecord, UsageRecord
from branchwise.agents.structured import call_json
from branchwise.errors import InputError

log = logging.getLogger(__name__)

#: turns of history shown to the rewrite (the most recent ones)
MAX_TURNS = 6
#: characters kept of each turn
TURN_CHARS = 600
#: a rewrite longer than this is not a question (the model answered, or copied the history)
MAX_QUESTION_CHARS = 400
#: generation bound of the rewrite
MAX_TOKENS = 64

_ROLES = ("user", "assistant")


def normalize_history(history: Iterable[Mapping[str, Any]] | None) -> list[ChatTurn]:
    """Plain ``{role, content}`` turns (``user`` / ``assistant``; ``system`` turns and empty
    ones are dropped), the last :data:`MAX_TURNS`, each cut to :data:`TURN_CHARS`.

    Raises:
        InputError: a turn that is not a mapping with a string ``role`` and ``content``.
    """
    turns: list[ChatTurn] = []
    for i, turn in enumerate(history or []):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("role"), str) \
                or not isinstance(turn.get("content"), str):
            raise InputError(f"history turn {i} is not a {{'role': str, 'content': str}} mapping.",
                             fix="pass history as a list of {'role': 'user'|'assistant', 'content': '...'}.")
        role, content = turn["role"].strip().lower(), " ".join(turn["content"].split())
        if role == "system" or not content:
            continue
        if role not in _ROLES:
            raise InputError(f"history turn {i} has role {turn['role']!r}.", fix="use 'user' or 'assistant'.")
        turns.append({"role": role, "content": content[:TURN_CHARS]})  # type: ignore[typeddict-item]
    return turns[-MAX_TURNS:]


def parse_standalone(value: Any) -> str:
    """Validate ``{"question": str}``: non-empty, at most :data:`MAX_QUESTION_CHARS` characters."""
    if not isinstance(value, dict) or not isinstance(value.get("question"), str):
        raise TypeError("expected an object with a 'question' string")
    question = " ".join(value["question"].split())
    if not question:
        raise ValueError("the rewritten question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"the rewritten question has {len(question)} characters")
    return question


def contextualize(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Rewrite a follow-up into a standalone question from the history (no call without history)."""
    original = state["question"].strip()
    history = normalize_history(state.get("history"))
    record: ContextRecord = {"original": original, "standalone": original, "method": "none",
                             "history_turns": len(history), "usage": {}, "calls": [], "notes": []}
    if history:
        deps, cfg = env.deps(runtime.context), env.config
        emit(runtime, "progress", "contextualize", "rewriting the follow-up question from the conversation")
        messages = prompts.contextualize_messages(original, history)
        outcome = call_json(deps.llm, messages, prompts.CONTEXT_SCHEMA, parse_standalone,
                            retries=cfg.json_retries, max_tokens=MAX_TOKENS)
        usage: UsageRecord = outcome.usage
        calls: list[CallRecord] = [outcome.call("contextualize")]
        notes: list[NoteRecord] = []
        if (note := outcome.note("contextualize", "searching the question as asked")) is not None:
            notes.append(note)
        standalone = outcome.value or original
        record.update(standalone=standalone, method="llm" if outcome.value else "fallback",
                      usage=usage, calls=calls, notes=notes)
        emit(runtime, "progress", "contextualize", f"standalone question: {standalone}")
        log.info("follow-up %r rewritten as %r", original[:80], standalone[:80])
    return {"question": record["standalone"], "original_question": original, "history": history,
            "contextualize": record}
