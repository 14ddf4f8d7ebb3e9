"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1.

A minimal threaded ``http.server`` speaks ``/v1/chat/completions`` and ``/v1/embeddings``.
Scripted servers exercise the failure paths (5xx then success, timeouts, 4xx, refused
connections, Retry-After, concurrency); one server is backed by the real embedded model and
the real MiniLM embedder.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from branchwise.errors import BackendError, InputError, OutputParseError
from branchwise.models.base import GenParams, Message
from branchwise.models.embedders import OpenAIEmbedder, OpenAIEmbedderConfig
from branchwise.models.factory import make_embedder, make_llm
from branchwise.models.openai_http import OpenAIConfig, OpenAILLM, OpenAITransport
from branchwise.models.openai_logprobs import score_from_top_logprobs


@dataclass
class Reply:
    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Behaviour = Callable[[str, dict[str, Any], dict[str, str]], Reply]


class StubServer:
    """A real threaded HTTP server whose replies come from ``behaviour``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer._lock:
                    outer.requests.append((self.path, body, headers))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    reply = outer.behaviour(self.path, body, headers)
                    time.sleep(reply.delay_s)
                    payload = json.dumps(reply.body if reply.body is not None else {}).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left
                finally:
                    with outer._lock:
                        outer.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], StubServer]]:
    servers: list[StubServer] = []

    def start(behaviour: Behaviour) -> StubServer:
        s = StubServer(behaviour)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def chat_reply(text: str, logprobs: dict[str, Any] | None = None) -> Reply:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return Reply({"choices": [choice], "usage": {"prompt_tokens": 11, "completion_tokens": 3}})


FAST = OpenAIConfig(timeout_s=2.0, max_retries=2, backoff_s=0.01, max_backoff_s=0.5)
MSGS = [Message("system", "be brief"), Message("user", "hello")]


def test_chat_request_and_response(serve: Callable[[Behaviour], StubServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("BRANCHWISE_OPENAI_API_KEY", "branchwise-key")
    srv = serve(lambda path, body, h: chat_reply("hi there"))
    llm = make_llm(f"openai:{srv.url}#tiny-model", config=FAST)
    c = llm.chat(MSGS, GenParams(max_tokens=9, stop=("\n",)))
    assert (c.text, c.prompt_tokens, c.completion_tokens, c.cached) == ("hi there", 11, 3, False)
    path, body, headers = srv.requests[0]
    assert path == "/v1/chat/completions"
    assert body["model"] == "tiny-model" and body["max_tokens"] == 9 and body["stop"] == ["\n"]
    assert body["temperature"] == 0.0
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert headers["authorization"] == "Bearer branchwise-key"  # the branchwise variable wins
    assert llm.name == "tiny-model"


def test_503_twice_then_success(serve: Callable[[Behaviour], StubServer]) -> None:
    calls = []

    def behaviour(path: str, body: dict[str, Any], h: dict[str, str]) -> Reply:
        calls.append(1)
        return Reply({"error": "warming up"}, status=503) if len(calls) <= 2 else chat_reply("ready")

    srv = serve(behaviour)
    llm = OpenAILLM(OpenAITransport(srv.url, FAST), "m")
    assert llm.chat(MSGS).text == "ready"
    assert len(srv.requests) == 3


def test_retry_after_is_honoured(serve: Callable[[Behaviour], StubServer]) -> None:
    calls = []

    def behaviour(path: str, body: dict[str, Any], h: dict[str, str]) -> Reply:
        calls.append(time.monotonic())
        return Reply({"error": "slow down"}, status=429, headers={"Retry-After": "0.3"}) if len(calls) == 1 else chat_reply("ok")

    srv = serve(behaviour)
    assert OpenAILLM(OpenAITransport(srv.url, FAST), "m").chat(MSGS).text == "ok"
    assert calls[1] - calls[0] >= 0.29


def test_timeout_is_retryable_and_gives_up(serve: Callable[[Behaviour], StubServer]) -> None:
    srv = serve(lambda path, body, h: Reply(chat_reply("late").body, delay_s=1.0))
    cfg = OpenAIConfig(timeout_s=0.2, max_retries=1, backoff_s=0.01)
    with pytest.raises(BackendError) as ei:
        OpenAILLM(OpenAITransport(srv.url, cfg), "m").chat(MSGS)
    assert ei.value.retryable
    assert "timed out" in str(ei.value) and "gave up after 2 attempts" in str(ei.value)
    assert "timeout_s" in str(ei.value)  # the fix names the knob
    assert len(srv.requests) == 2


def test_400_is_not_retried(serve: Callable[[Behaviour], StubServer]) -> None:
    srv = serve(lambda path, body, h: Reply({"error": {"message": "context length exceeded"}}, status=400))
    with pytest.raises(BackendError) as ei:
        OpenAILLM(OpenAITransport(srv.url, FAST), "m").chat(MSGS)
    assert not ei.value.retryable
    assert "HTTP 400" in str(ei.value) and "context length exceeded" in str(ei.value)
    assert len(srv.requests) == 1


def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    llm = OpenAILLM(OpenAITransport(f"http://127.0.0.1:{port}/v1", FAST), "m")
    with pytest.raises(BackendError) as ei:
        llm.chat(MSGS)
    assert ei.value.retryable and "server is running" in str(ei.value)


def test_concurrency_is_capped_and_order_kept(serve: Callable[[Behaviour], StubServer]) -> None:
    def behaviour(path: str, body: dict[str, Any], h: dict[str, str]) -> Reply:
        return Reply(chat_reply("echo " + body["messages"][-1]["content"]).body, delay_s=0.15)

    srv = serve(behaviour)
    cfg = OpenAIConfig(max_concurrency=2, timeout_s=5.0)
    llm = OpenAILLM(OpenAITransport(srv.url, cfg), "m")
    batch = [[Message("user", f"q{i}")] for i in range(6)]
    t0 = time.monotonic()
    out = llm.chat_batch(batch)
    elapsed = time.monotonic() - t0
    assert [c.text for c in out] == [f"echo q{i}" for i in range(6)]
    assert srv.max_in_flight == 2
    assert elapsed >= 3 * 0.15 - 0.02  # 6 requests, 2 at a time


def test_json_schema_falls_back_to_json_object(serve: Callable[[Behaviour], StubServer]) -> None:
    def behaviour(path: str, body: dict[str, Any], h: dict[str, str]) -> Reply:
        fmt = body.get("response_format", {}).get("type")
        if fmt == "json_schema":
            return Reply({"error": "response_format json_schema unsupported"}, status=400)
        return chat_reply('Sure: {"answer": "Paris", "confidence": 0.9,}')  # needs repair

    srv = serve(behaviour)
    llm = OpenAILLM(OpenAITransport(srv.url, FAST), "m")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}}}
    sc = llm.chat_json(MSGS, schema)
    assert sc.value == {"answer": "Paris", "confidence": 0.9} and sc.repaired
    assert [r[1].get("response_format", {}).get("type") for r in srv.requests] == ["json_schema", "json_object"]
    assert "JSON schema" in srv.requests[1][1]["messages"][0]["content"]  # schema moved into the prompt
    llm.chat_json(MSGS, schema)
    assert srv.requests[2][1]["response_format"]["type"] == "json_object"  # remembered


def test_chat_json_asks_once_more_then_raises(serve: Callable[[Behaviour], StubServer]) -> None:
    answers = iter(["I cannot do JSON.", '{"answer": "Paris"}', "still no", "nope"])
    srv = serve(lambda path, body, h: chat_reply(next(answers)))
    llm = OpenAILLM(OpenAITransport(srv.url, FAST), "m")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    sc = llm.chat_json(MSGS, schema, GenParams(max_tokens=20))
    assert sc.value == {"answer": "Paris"} and not sc.repaired and sc.completion.prompt_tokens == 11
    assert len(srv.requests) == 2 and srv.requests[0][1] == srv.requests[1][1]  # the same request again
    with pytest.raises(OutputParseError, match="m did not produce parsable JSON after 2 attempts") as ei:
        llm.chat_json(MSGS, schema, GenParams(max_tokens=20))
    assert ei.value.raw == "nope" and len(srv.requests) == 4


def test_logprobs_scoring(serve: Callable[[Behaviour], StubServer]) -> None:
    block = {
        "content": [
            {
                "token": "Yes",
                "logprob": math.log(0.7),
                "top_logprobs": [
                    {"token": "Yes", "logprob": math.log(0.7)},
                    {"token": " Yes", "logprob": math.log(0.1)},
                    {"token": "No", "logprob": math.log(0.15)},
                ],
            }
        ]
    }
    srv = serve(lambda path, body, h: chat_reply("Yes", logprobs=block))
    llm = OpenAILLM(OpenAITransport(srv.url, FAST), "m")
    yes, no, maybe = llm.continuation_logprobs(MSGS, ["Yes", "No", "Maybe"])
    assert math.isclose(math.exp(yes), 0.8) and math.isclose(math.exp(no), 0.15)
    assert math.isclose(math.exp(maybe), 0.05)  # unlisted: bounded by the remaining mass
    req = srv.requests[0][1]
    assert req["max_tokens"] == 1 and req["logprobs"] is True and req["top_logprobs"] == 20


def test_missing_logprobs_is_a_clear_error(serve: Callable[[Behaviour], StubServer]) -> None:
    srv = serve(lambda path, body, h: chat_reply("Yes"))
    with pytest.raises(BackendError, match="does not return logprobs") as ei:
        OpenAILLM(OpenAITransport(srv.url, FAST), "m").continuation_logprobs(MSGS, ["Yes", "No"])
    assert not ei.value.retryable


def test_top_logprobs_prefix_rule() -> None:
    choice = {"logprobs": {"content": [{"token": "Rel", "logprob": -0.5, "top_logprobs": []}]}}
    (lp,) = score_from_top_logprobs(choice, ["Relevant"], server="s")
    assert lp == -0.5
    with pytest.raises(InputError):
        score_from_top_logprobs(choice, ["  "], server="s")


def test_embeddings_endpoint(serve: Callable[[Behaviour], StubServer]) -> None:
    def behaviour(path: str, body: dict[str, Any], h: dict[str, str]) -> Reply:
        assert path == "/v1/embeddings"
        vecs = [[float(len(t)), 1.0, 0.0] for t in body["input"]]
        data = [{"index": i, "embedding": v} for i, v in reversed(list(enumerate(vecs)))]  # out of order
        return Reply({"data": data, "model": body["model"]})

    srv = serve(behaviour)
    emb = OpenAIEmbedder(OpenAITransport(srv.url, FAST), "e-model", OpenAIEmbedderConfig(batch_size=2))
    assert emb.dim == 3 and emb.name == "e-model"
    out = emb.embed(["a", "bbb", "cc", "d", "eeeee"])
    expected = np.array([[len(t), 1.0, 0.0] for t in ["a", "bbb", "cc", "d", "eeeee"]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert len(srv.requests) == 1 + 3  # the dimension probe, then batches of 2, 2, 1


@pytest.mark.real_llm
def test_real_model_behind_http(serve: Callable[[Behaviour], StubServer], real_llm: Any, real_embedder: Any) -> None:
    """A server backed by the real embedded LLM and MiniLM: the full protocol round trip."""

    def behaviour(path: str, body: dict[str, Any], h: dict[str, str]) -> Reply:
        if path.endswith("/embeddings"):
            vecs = real_embedder.embed(body["input"])
            return Reply({"data": [{"index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]})
        msgs = [Message(m["role"], m["content"]) for m in body["messages"]]
        if body.get("logprobs"):
            yes, no = real_llm.continuation_logprobs(msgs, ["Yes", "No"])
            top = [{"token": "Yes", "logprob": yes}, {"token": "No", "logprob": no}]
            return chat_reply("", logprobs={"content": [{"token": "Yes", "logprob": yes, "top_logprobs": top}]})
        c = real_llm.chat(msgs, GenParams(max_tokens=body["max_tokens"]))
        return chat_reply(c.text)

    srv = serve(behaviour)
    llm = make_llm(f"openai:{srv.url}#qwen", config=OpenAIConfig(timeout_s=120.0))
    passage = "The Gotthard Base Tunnel opened in 2016 and is 57 kilometres long."
    ask = [Message("user", f"Passage: {passage}\nQuestion: In which year did the tunnel open? Answer briefly.")]
    assert "2016" in llm.chat(ask, GenParams(max_tokens=24)).text
    judge = [
        Message("system", "Answer Yes or No."),
        Message("user", f"Question: How long is the Gotthard Base Tunnel?\nPassage: {passage}\nIs the passage relevant?"),
    ]
    via_http = llm.continuation_logprobs(judge, ["Yes", "No"])
    direct = real_llm.continuation_logprobs(judge, ["Yes", "No"])
    # same model, different KV-cache state: llama.cpp differs in the last digits, not in substance
    np.testing.assert_allclose(np.exp(via_http), np.exp(direct), atol=0.02)
    emb = make_embedder(f"openai-embed:{srv.url}#minilm", memory_cache=False)
    a, b, c = emb.embed(["a tunnel through the Alps", "a railway tunnel under mountains", "chocolate cake recipe"])
    assert emb.dim == 384 and float(a @ b) > float(a @ c) + 0.2
