"""The OpenAI-compatible surface: ``GET /v1/models`` and ``POST /v1/chat/completions``.

The ``model`` is the index name. The last user message is the question and the earlier
user / assistant messages its history, so a follow-up ("and who founded it?") is rewritten
into a standalone question by the agent. The answer text carries ``[n]`` markers and a
sources list; ``citations`` and ``branchwise`` (trace id, standalone question, usage) carry
them structured. With ``stream: true`` the answer streams as server-sent events in OpenAI's
chunk format; the agent's progress travels as SSE comments (``: navigating level 2``),
which keep the connection alive and which OpenAI clients skip.

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="KEY")
    reply = client.chat.completions.create(model="docs", messages=[{"role": "user", "content": "..."}])
    reply.choices[0].message.content, reply.citations, reply.branchwise["trace_id"]
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from branchwise.errors import BranchwiseError
from branchwise.generation.answer import NOT_FOUND_TOKEN
from branchwise.server import answers
from branchwise.server.errors import branchwise_error_body, error_body
from branchwise.server.options import TUNABLE, apply_options
from branchwise.server.schemas import ChatCompletionRequest
from branchwise.server.state import (
    ServerState,
    authorized,
    new_trace_id,
    readable,
    server_state,
)
from branchwise.types import Answer

log = logging.getLogger(__name__)

router = APIRouter()
_DONE = object()


@router.get("/v1/models")
def list_models(request: Request) -> dict[str, Any]:
    """The indexes this request's key may use, as OpenAI models."""
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "branchwise"}
                                       for n in readable(request)]}


def _options(body: ChatCompletionRequest) -> dict[str, Any]:
    options = body.branchwise.as_dict() if body.branchwise else {}
    options.pop("sources_in_text", None)
    limit = body.max_completion_tokens or body.max_tokens
    if limit is not None:  # clients send large defaults: clamp to the server's ceiling
        cap = int(TUNABLE["agent"]["answer_max_tokens"] or limit)
        options["agent"] = {**options.get("agent", {}), "answer_max_tokens": min(limit, cap)}
    return options


def _usage(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> JSONResponse | StreamingResponse:
    served = authorized(request, body.model)
    state = server_state(request)
    question, history = answers.question_and_history(body.messages, state.config.max_question_chars)
    state.check_question(question, history)
    options = _options(body)
    apply_options(served.settings, options)  # a bad option fails now, before queueing
    sources = body.branchwise.sources_in_text if body.branchwise else True
    if body.stream:
        include_usage = bool((body.model_extra or {}).get("stream_options", {}).get("include_usage"))
        return await _stream(state, body.model, question, history, options, sources, include_usage)
    trace_id = new_trace_id()
    answer = await state.runner.run(body.model, lambda: state.ask(body.model, question, history, options, trace_id))
    text = answer.text + (answers.sources_text(answer) if sources else "")
    extras = answers.extras(answer, body.model)
    payload = {
        "id": f"chatcmpl-{trace_id}", "object": "chat.completion", "created": int(time.time()),
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": _usage(answer), "citations": answers.citations(answer), "branchwise": extras,
    }
    return JSONResponse(payload, headers={"X-Branchwise-Trace-Id": trace_id})


async def _stream(state: ServerState, name: str, question: str, history: list[dict[str, str]],
                  options: dict[str, Any], sources: bool, include_usage: bool) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    trace_id = new_trace_id()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the server stopped
            pass

    def work() -> None:
        try:
            for event in state.stream(name, question, history, options, trace_id):
                put(event)
        except BaseException as e:  # delivered to the client as an error event
            put(e)
        finally:
            put(_DONE)

    await state.runner.start(name, work)  # queued here: a full queue is a 429 before any byte is sent
    return StreamingResponse(_events(state, queue, name, f"chatcmpl-{trace_id}", sources, include_usage),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Branchwise-Trace-Id": trace_id})


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


class _AnswerText:
    """Streams answer tokens, holding back a reply that may still turn out to be ``NOT_FOUND``
    (the final text then replaces it); returns what is left to send once the answer is final."""

    def __init__(self) -> None:
        self.sent = ""
        self._held = ""

    def feed(self, piece: str) -> str:
        if self.sent:
            self.sent += piece
            return piece
        self._held += piece
        head = self._held.lstrip()
        if NOT_FOUND_TOKEN.startswith(head) or head.startswith(NOT_FOUND_TOKEN):
            return ""
        self.sent, self._held = head, ""
        return head

    def finish(self, final: str) -> str:
        base = self.sent.rstrip()
        if final.startswith(base):
            return final[len(base):]
        log.debug("the final answer differs from the streamed text; the `branchwise.answer` field has it")
        return ""


async def _events(state: ServerState, queue: asyncio.Queue[Any], name: str, chunk_id: str, sources: bool,
                  include_usage: bool) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return _sse({"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": name,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    text = _AnswerText()
    answer: Answer | None = None
    while (item := await queue.get()) is not _DONE:
        if isinstance(item, BaseException):
            if isinstance(item, BranchwiseError):
                _, body = branchwise_error_body(item, state.catalog.public_paths())
            else:
                log.error("the agent failed while streaming", exc_info=item)
                body = error_body(500, "internal error while answering.", "the server log has the details.")
            yield _sse(body)
            yield "data: [DONE]\n\n"
            return
        if item.kind == "token":
            if piece := text.feed(item.message):
                yield chunk({"content": piece})
        elif item.kind in ("progress", "step"):
            yield f": {item.message.splitlines()[0][:200] if item.message else item.node}\n\n"
        elif item.kind == "answer":
            answer = item.answer
    if answer is None:
        yield _sse(error_body(500, "the agent ended without an answer."))
        yield "data: [DONE]\n\n"
        return
    extras = answers.extras(answer, name)
    rest = text.finish(answer.text) + (answers.sources_text(answer) if sources else "")
    if rest:
        yield chunk({"content": rest})
    yield chunk({}, "stop", citations=answers.citations(answer), branchwise=extras)
    if include_usage:
        yield _sse({"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": name,
                    "choices": [], "usage": _usage(answer)})
    yield "data: [DONE]\n\n"
