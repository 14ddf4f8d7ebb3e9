"""A fault-injecting OpenAI-compatible server on 127.0.0.1, for the endpoint-fault tests.

It is a real TCP server speaking HTTP/1.1 by hand (no framework between the socket and the
fault), so it can do what a well-behaved HTTP library would not: accept a connection and
never answer, reset it, trickle a body byte by byte, or send a body that is not JSON.

    with FaultServer(script=["http_503", "http_429", "ok"]) as srv:
        llm = make_llm(f"openai:{srv.url}#m", config=...)
        llm.chat(...)                     # 503 → retry → 429 (Retry-After) → retry → ok

``script`` is consumed one fault per request (then ``default`` for the rest); ``plan`` (a
function of the request number, path and body) can decide instead. Every request is recorded
(path, body, headers, arrival time), with the peak number of requests in flight.

Faults (:data:`FAULTS`):

==================  ==========================================================================
``ok``              a chat completion from ``responder`` (logprobs when asked for)
``hang``            read the request, never answer (until the server closes)
``delay``           answer ``ok`` after ``delay_s`` (longer than a client timeout: a timeout)
``http_500`` ...    that status with a JSON error body (any ``http_NNN``)
``http_429``        429 with ``Retry-After: retry_after_s``
``reset``           close the connection with a TCP RST right after reading the request
``close``           close the connection cleanly without an answer
``slow_stream``     headers at once, then the body one byte every ``trickle_s`` seconds
``malformed_json``  200, ``application/json``, a body that does not parse
``html``            200, ``text/html``: a web page where the API should be
``empty``           a well-formed completion whose content is ``""``
``wrong_schema``    200 JSON without ``choices``
``no_logprobs``     a well-formed completion without the ``logprobs`` block
``reject_format``   500 naming ``response_format``, as llama-cpp-python's server answers ``json_schema``
``echo_auth``       401 whose body quotes the request's ``Authorization`` header back
==================  ==========================================================================
"""

from __future__ import annotations

import json
import math
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

FAULTS = (
    "ok", "hang", "delay", "http_500", "http_502", "http_503", "http_429", "http_400", "reset", "close",
    "slow_stream", "malformed_json", "html", "empty", "wrong_schema", "no_logprobs", "reject_format",
    "echo_auth",
)

Responder = Callable[[dict[str, Any]], str]
Plan = Callable[[int, str, dict[str, Any]], str]


def schema_instance(schema: dict[str, Any]) -> Any:
    """A small valid instance of a JSON schema (strings ``"evidence"``, arrays of one item)."""
    t = schema.get("type")
    if t == "object" or "properties" in schema:
        return {k: schema_instance(v) for k, v in schema.get("properties", {}).items()}
    if t == "array":
        item = schema.get("items", {})
        return [] if item.get("type") == "object" else [schema_instance(item)]
    return {"string": "evidence", "integer": 1, "number": 0.5, "boolean": True}.get(str(t), None)


def default_responder(body: dict[str, Any]) -> str:
    """JSON matching the request's schema when one is given; else a short cited answer."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if schema is None:
        for m in body.get("messages", []):
            content = m.get("content", "")
            if "JSON schema:\n" in content:
                schema = json.loads(content.split("JSON schema:\n", 1)[1])
    if schema is not None:
        return json.dumps(schema_instance(schema))
    return "The evidence answers it [1]."


def completion(content: str, *, logprobs: bool = False) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if logprobs:
        top = [{"token": "Yes", "logprob": math.log(0.9)}, {"token": "No", "logprob": math.log(0.1)}]
        choice["logprobs"] = {"content": [{"token": "Yes", "logprob": math.log(0.9), "top_logprobs": top}]}
    return {"id": "chatcmpl-fault", "object": "chat.completion", "model": "fault", "choices": [choice],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4}}


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    fault: str


@dataclass
class FaultServer:
    """The server; use it as a context manager (it binds 127.0.0.1 on a free port)."""

    script: Iterable[str] = ()
    default: str = "ok"
    plan: Plan | None = None
    responder: Responder = default_responder
    delay_s: float = 5.0
    retry_after_s: float = 0.2
    trickle_s: float = 0.2
    requests: list[Request] = field(default_factory=list)
    peak_in_flight: int = 0

    def __post_init__(self) -> None:
        self._script = list(self.script)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._in_flight = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # -- public -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def faults_served(self) -> list[str]:
        with self._lock:
            return [r.fault for r in self.requests]

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FaultServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving ------------------------------------------------------------------------------
    def _next_fault(self, n: int, path: str, body: dict[str, Any]) -> str:
        if self.plan is not None:
            return self.plan(n, path, body)
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def _handle(self, sock: socket.socket) -> None:
        parsed = _read_request(sock)
        if parsed is None:
            return
        path, headers, body = parsed
        with self._lock:
            n = len(self.requests)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        fault = self._next_fault(n, path, body)
        with self._lock:
            self.requests.append(Request(path, body, headers, time.monotonic(), fault))
        try:
            self._serve(sock, fault, body, headers)
        except OSError:
            pass  # the client gave up and left
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, sock: socket.socket, fault: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        if fault == "hang":
            self._closing.wait()
            return
        if fault == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return
        if fault == "close":
            sock.shutdown(socket.SHUT_RDWR)
            return
        if fault == "delay" and self._closing.wait(self.delay_s):
            return
        if fault.startswith("http_"):
            status = int(fault.split("_", 1)[1])
            extra = {"Retry-After": f"{self.retry_after_s:g}"} if status == 429 else {}
            _send(sock, status, json.dumps({"error": {"message": f"injected {status}", "type": "fault"}}).encode(),
                  extra=extra)
            return
        if fault == "echo_auth":
            msg = f"invalid credentials: {headers.get('authorization', '')}"
            _send(sock, 401, json.dumps({"error": {"message": msg}}).encode())
            return
        if fault == "reject_format":
            msg = "1 validation error: ('body', 'response_format', 'type'): Input should be 'text' or 'json_object'"
            _send(sock, 500, json.dumps({"error": {"message": msg, "type": "internal_server_error"}}).encode())
            return
        if fault == "malformed_json":
            _send(sock, 200, b'{"choices": [{"message": {"content": "trunc')
            return
        if fault == "html":
            _send(sock, 200, b"<html><body>Welcome to nginx!</body></html>", content_type="text/html")
            return
        if fault == "wrong_schema":
            _send(sock, 200, json.dumps({"result": "no choices here"}).encode())
            return
        content = "" if fault == "empty" else self.responder(body)
        payload = json.dumps(completion(content, logprobs=bool(body.get("logprobs")) and fault != "no_logprobs"))
        if fault == "slow_stream":
            data = payload.encode()
            sock.sendall(_head(200, len(data), "application/json", {}))
            for i in range(len(data)):
                if self._closing.wait(self.trickle_s):
                    return
                sock.sendall(data[i : i + 1])
            return
        _send(sock, 200, payload.encode())


def _read_request(sock: socket.socket) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    try:
        body = json.loads(rest[:length] or b"{}")
    except ValueError:
        body = {}
    return path, headers, body


def _head(status: int, length: int, content_type: str, extra: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", f"Content-Length: {length}",
             "Connection: close", *(f"{k}: {v}" for k, v in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send(sock: socket.socket, status: int, data: bytes, *, content_type: str = "application/json",
          extra: dict[str, str] | None = None) -> None:
    sock.sendall(_head(status, len(data), content_type, extra or {}) + data)
