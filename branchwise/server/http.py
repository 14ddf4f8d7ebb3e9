"""HTTP plumbing: the request-size limit, JSON access logs, and error responses.

* :class:`BodyLimit` — a pure ASGI middleware: a ``Content-Length`` over the limit is refused
  at once (413), and a body streamed without one is counted as it arrives and cut off at the
  limit, so no request can make the server buffer more than ``max_body_bytes``.
* :class:`AccessLog` — one JSON object per request on the ``branchwise.server.access``
  logger: time, request id, method, path, status, duration, index, client. Never the key,
  the question or the body.
* :func:`install_error_handlers` — branchwise errors (and request validation errors) become
  OpenAI-shaped error bodies with the status of :data:`~branchwise.server.errors.STATUS`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, MutableMapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from branchwise.errors import BranchwiseError
from branchwise.server.errors import branchwise_error_body, error_body, scrub

access_log = logging.getLogger("branchwise.server.access")
log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = error_body(413, f"the request body is over the server's limit of {self.max_bytes} bytes.",
                          "send less at once (split the documents over several requests).")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_json(send, 413, body)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, body)


class AccessLog:
    """One structured (JSON) access-log record per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            client = scope.get("client")
            record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "request_id": request_id,
                      "method": scope.get("method"), "path": scope.get("path"), "status": status,
                      "duration_ms": round((time.perf_counter() - t0) * 1000, 1),
                      "index": scope["state"].get("index"), "client": client[0] if client else None}
            access_log.info(json.dumps(record))


def install_error_handlers(app: FastAPI, paths: Callable[[], dict[str, str]]) -> None:
    """Map branchwise errors and request validation errors to OpenAI-shaped JSON errors.

    ``paths`` gives the server paths to scrub from messages (index directories → names).
    """

    async def on_branchwise(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BranchwiseError)
        status, body = branchwise_error_body(exc, paths())
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        headers = {"Retry-After": "10"} if status in (429, 503) else None
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse(body, status_code=status, headers=headers)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5])
        return JSONResponse(error_body(400, scrub(f"invalid request: {problems}.", paths()),
                                       "see the API reference in docs/server.md."), status_code=400)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal error.", "the server log has the details."), status_code=500)

    app.add_exception_handler(BranchwiseError, on_branchwise)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(Exception, on_unexpected)
