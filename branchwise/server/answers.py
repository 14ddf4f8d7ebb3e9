"""Answers as the API returns them, and chat messages as the agent takes them.

An answer's text keeps its ``[n]`` markers and, for chat clients, gains a sources list::

    Sony was founded by Masaru Ibuka and Akio Morita [1].

    Sources:
    [1] Sony (sony#0)

The same citations travel structured in the response (``citations``), with the trace id,
the standalone question and the usage (``branchwise``). When a client sends that text back
as an assistant turn, the sources list is cut off before it becomes history.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from branchwise.errors import InputError
from branchwise.server.schemas import ChatMessage
from branchwise.types import Answer

SOURCES_HEADER = "\n\nSources:\n"


def sources_text(answer: Answer) -> str:
    """The sources list appended to a chat answer ("" when it cites nothing)."""
    if not answer.citations:
        return ""
    lines = [f"{c.marker} {c.title or c.chunk_id} ({c.chunk_id})" for c in answer.citations]
    return SOURCES_HEADER + "\n".join(lines)


def citations(answer: Answer) -> list[dict[str, Any]]:
    return [dataclasses.asdict(c) for c in answer.citations]


def extras(answer: Answer, index: str) -> dict[str, Any]:
    """The ``branchwise`` field of a response: trace id, questions, found, usage."""
    trace = answer.trace
    ctx = getattr(trace, "contextualize", None) or {}
    return {
        "index": index,
        "trace_id": getattr(trace, "thread_id", ""),
        "answer": answer.text,
        "found": answer.found,
        "question": getattr(trace, "original_question", "") or getattr(trace, "question", ""),
        "standalone_question": getattr(trace, "question", ""),
        "rewritten": ctx.get("method") == "llm",
        "context_tokens": answer.context_tokens,
        "usage": dataclasses.asdict(answer.usage),
    }


def ask_response(answer: Answer, index: str) -> dict[str, Any]:
    """The body of ``POST /v1/indexes/{name}/ask``."""
    return {**extras(answer, index), "citations": citations(answer)}


def question_and_history(messages: Sequence[ChatMessage], max_chars: int) -> tuple[str, list[dict[str, str]]]:
    """The last user message as the question; earlier user / assistant messages as history.

    System and tool messages are left out (documents and chat clients are untrusted; the
    agent's own prompts say what it does). Assistant turns lose the sources list.

    Raises:
        InputError: no user message last, or a message longer than ``max_chars``.
    """
    turns = [(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise InputError("the last message must be the user's question.",
                         fix='end "messages" with {"role": "user", "content": "..."}.')
    too_long = [i for i, (_, text) in enumerate(turns) if len(text) > max_chars]
    if too_long:
        raise InputError(f"a message is longer than {max_chars} characters.", fix="send a shorter question.")
    history = [{"role": role, "content": text.split(SOURCES_HEADER, 1)[0] if role == "assistant" else text}
               for role, text in turns[:-1]]
    return turns[-1][1], history
