"""Endpoint faults against the fault-injecting server on 127.0.0.1 (``fault_server.py``).

Each transient fault is survived with a bounded retry and recorded in the scope's fault log;
permanent ones fail at once with a clear error; a server that is down fails within the
deadline; back-pressure rejects what cannot start in time. Nothing here asserts a duration:
the bounds are the code's (and are stated in docs/reliability.md).
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from fault_server import FaultServer

from branchwise.errors import BackendError, OutputParseError
from branchwise.models.base import GenParams, Message
from branchwise.models.batch import chat_batch, continuation_logprobs_batch
from branchwise.models.cache import CachedLLM
from branchwise.models.openai_http import OpenAIConfig, OpenAILLM, OpenAITransport
from branchwise.models.retry import CallScope, DeadlineExceeded, RetryPolicy, backoff_delay

FAST = OpenAIConfig(timeout_s=0.6, connect_timeout_s=0.5, max_retries=2, backoff_s=0.01, max_backoff_s=0.5)
MSGS = [Message("user", "hello")]


def make(srv: FaultServer, config: OpenAIConfig = FAST) -> OpenAILLM:
    return OpenAILLM(OpenAITransport(srv.url, config), "m")


@pytest.fixture
def server() -> Any:
    servers: list[FaultServer] = []

    def start(**kw: Any) -> FaultServer:
        s = FaultServer(**kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


# fault served first → the fault kind the client records
TRANSIENT = {
    "delay": "timeout",            # answers after 5 s; the client's bound is 0.6 s
    "hang": "timeout",             # accepts, never answers
    "slow_stream": "timeout",      # body one byte per 0.2 s: cut off at the bound
    "http_500": "http_500",
    "http_502": "http_502",
    "http_503": "http_503",
    "http_429": "http_429",
    "reset": "reset",
    "close": "reset",
    "malformed_json": "malformed_json",
    "wrong_schema": "wrong_schema",
}


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_transient_fault_is_retried_and_recorded(server: Any, fault: str) -> None:
    srv = server(script=[fault], retry_after_s=0.05)
    with CallScope(30) as scope:
        c = make(srv).chat(MSGS)
    assert c.text == "The evidence answers it [1]."
    assert srv.faults_served() == [fault, "ok"]
    (recorded,) = scope.faults
    assert recorded.kind == TRANSIENT[fault] and recorded.attempt == 1
    assert recorded.action.startswith("retry 1/2 in ")
    assert recorded.endpoint == f"POST {srv.url}/chat/completions"


@pytest.mark.parametrize("fault", ["html", "http_400"])
def test_permanent_fault_fails_at_once(server: Any, fault: str) -> None:
    srv = server(default=fault)
    with pytest.raises(BackendError) as ei:
        make(srv).chat(MSGS)
    assert not ei.value.retryable
    assert len(srv.requests) == 1
    assert srv.url in str(ei.value) and "Fix:" in str(ei.value)


def test_endpoint_failing_every_time_gives_up_after_bounded_retries(server: Any) -> None:
    srv = server(default="http_503")
    with CallScope(None) as scope, pytest.raises(BackendError) as ei:
        make(srv).chat(MSGS)
    assert ei.value.retryable and "gave up after 3 attempts" in str(ei.value)
    assert len(srv.requests) == 3  # 1 + max_retries
    assert [f.action.split(" in ")[0] for f in scope.faults] == ["retry 1/2", "retry 2/2", "gave up"]


def test_never_answering_server_fails_within_the_deadline(server: Any) -> None:
    srv = server(default="hang")
    slow = OpenAIConfig(timeout_s=120.0, max_retries=3, backoff_s=0.05)  # the defaults that hung for 15 min
    with CallScope(1.5), pytest.raises(DeadlineExceeded) as ei:
        make(srv, slow).chat(MSGS)
    err = ei.value
    assert isinstance(err, BackendError) and not err.retryable
    assert f"POST {srv.url}/chat/completions" in str(err)
    assert "1.5 s deadline of this question" in str(err) and "--timeout" in str(err)
    assert len(srv.requests) == 1  # the one attempt used all the time left: no retry was started


def test_a_spent_deadline_sends_nothing(server: Any) -> None:
    srv = server()
    with CallScope(0.001):
        threading.Event().wait(0.01)
        with pytest.raises(DeadlineExceeded, match="no time was left"):
            make(srv).chat(MSGS)
    assert srv.requests == []


def test_retry_after_is_used_capped_and_respects_the_deadline(server: Any) -> None:
    srv = server(script=["http_429", "http_429"], retry_after_s=0.3)
    with CallScope(30) as scope:
        assert make(srv).chat(MSGS).text
    assert [f.action for f in scope.faults] == ["retry 1/2 in 0.30 s", "retry 2/2 in 0.30 s"]

    capped = server(script=["http_429"], retry_after_s=3600)
    with CallScope(30) as scope:
        make(capped, OpenAIConfig(max_backoff_s=0.2, backoff_s=0.01)).chat(MSGS)
    assert scope.faults[0].action == "retry 1/3 in 0.20 s"  # max_backoff_s caps Retry-After

    beyond = server(default="http_429", retry_after_s=20)
    with CallScope(2) as scope, pytest.raises(DeadlineExceeded, match="would pass the deadline"):
        make(beyond, OpenAIConfig(max_backoff_s=60)).chat(MSGS)
    assert len(beyond.requests) == 1 and scope.faults[-1].kind == "deadline"


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=3.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, base in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [backoff_delay(policy, attempt, None, rng) for _ in range(200)]
        assert all(base * 0.5 <= d <= base for d in delays)
        assert len({round(d, 6) for d in delays}) > 100  # jittered, not lock-step
    assert backoff_delay(RetryPolicy(jitter=0.0), 2, None, rng) == 2.0
    assert backoff_delay(policy, 0, 10.0, rng) == 3.0  # Retry-After, capped


def test_empty_completion_is_recorded_and_json_empty_is_a_parse_error(server: Any) -> None:
    srv = server(default="empty")
    llm = make(srv)
    with CallScope(30) as scope:
        assert llm.chat(MSGS).text == ""
        with pytest.raises(OutputParseError):
            llm.chat_json(MSGS, {"type": "object", "properties": {"a": {"type": "string"}}})
    kinds = [f.kind for f in scope.faults]
    assert kinds == ["empty_completion"] * 3  # chat, then chat_json's two attempts
    assert scope.faults[0].action == "returned the empty text to the caller"


def test_missing_logprobs_is_a_clear_non_retryable_error(server: Any) -> None:
    srv = server(default="no_logprobs")
    with pytest.raises(BackendError, match="does not return logprobs") as ei:
        make(srv).continuation_logprobs(MSGS, ["Yes", "No"])
    assert not ei.value.retryable and len(srv.requests) == 1


def test_back_pressure_bounds_in_flight_and_rejects_what_cannot_start(server: Any) -> None:
    srv = server(default="delay", delay_s=1.5)
    cfg = OpenAIConfig(timeout_s=10.0, max_concurrency=2, max_queue=1, queue_timeout_s=0.3, max_retries=0)
    llm = make(srv, cfg)
    results: list[Any] = [None] * 5
    started = threading.Barrier(5)

    def call(i: int) -> None:
        started.wait()
        try:
            results[i] = llm.chat([Message("user", f"q{i}")]).text
        except BackendError as e:
            results[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BackendError)]
    assert srv.peak_in_flight == 2 and len(srv.requests) == 2
    assert len(errors) == 3  # one queued and two beyond the queue: none could start within 0.3 s
    assert all(not e.retryable and "back-pressure" in str(e) and "max_concurrency" in str(e) for e in errors)
    stats = llm.transport.limiter.stats
    assert (stats.peak_in_flight, stats.peak_waiting, stats.rejected) == (2, 1, 3)


def test_batched_paths_send_max_concurrency_at_once_in_order(server: Any) -> None:
    srv = server(default="delay", delay_s=0.3, responder=lambda body: body["messages"][-1]["content"].upper())
    llm = CachedLLM(make(srv, OpenAIConfig(timeout_s=10.0, max_concurrency=4)))
    batch = [[Message("user", f"q{i}")] for i in range(8)]
    out = chat_batch(llm, batch)
    assert [c.text for c in out] == [f"Q{i}" for i in range(8)]
    assert srv.peak_in_flight == 4
    scores = continuation_logprobs_batch(llm, [[Message("user", f"s{i}")] for i in range(6)], ["Yes", "No"])
    assert len(scores) == 6 and all(s[0] > s[1] for s in scores)
    assert srv.peak_in_flight == 4 and len(srv.requests) == 14


def test_batch_calls_run_in_the_callers_scope(server: Any) -> None:
    srv = server(plan=lambda n, path, body: "http_503" if n == 0 else "ok")
    llm = make(srv, OpenAIConfig(timeout_s=10.0, max_concurrency=3, backoff_s=0.01))
    with CallScope(30) as scope:
        out = llm.chat_batch([[Message("user", f"q{i}")] for i in range(3)])
    assert len(out) == 3 and [f.kind for f in scope.faults] == ["http_503"]


def test_a_failure_in_a_batch_cancels_the_rest_and_raises(server: Any) -> None:
    srv = server(default="http_400")
    llm = make(srv, OpenAIConfig(max_concurrency=2))
    with pytest.raises(BackendError, match="HTTP 400"):
        llm.chat_batch([[Message("user", f"q{i}")] for i in range(20)])
    assert len(srv.requests) < 20  # requests not yet started were cancelled


def test_deadline_holds_inside_batches(server: Any) -> None:
    srv = server(default="hang")
    llm = make(srv, OpenAIConfig(timeout_s=120.0, max_concurrency=2))
    with CallScope(1.0), pytest.raises(DeadlineExceeded):
        llm.chat_batch([[Message("user", f"q{i}")] for i in range(6)])
    assert len(srv.requests) <= 2 + 2  # the first wave, and at most one more per slot


def test_json_schema_rejected_with_500_falls_back_without_retrying(server: Any) -> None:
    """llama-cpp-python's server answers an unknown response_format with HTTP 500, not 400."""

    def plan(n: int, path: str, body: dict[str, Any]) -> str:
        return "reject_format" if body.get("response_format", {}).get("type") == "json_schema" else "ok"

    srv = server(plan=plan, responder=lambda body: '{"answer": "Paris"}')
    llm = make(srv)
    with CallScope(30) as scope:
        sc = llm.chat_json(MSGS, {"type": "object", "properties": {"answer": {"type": "string"}}})
        llm.chat_json(MSGS, {"type": "object", "properties": {"answer": {"type": "string"}}})
    assert sc.value == {"answer": "Paris"}
    assert srv.faults_served() == ["reject_format", "ok", "ok"]  # no retry of the rejected mode; remembered
    assert [f.kind for f in scope.faults] == ["format_fallback"]
    assert scope.faults[0].action == "using json_object from now on"
    assert srv.requests[1].body["response_format"] == {"type": "json_object"}


def test_unreachable_port_fails_fast_with_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = OpenAILLM(OpenAITransport(f"http://127.0.0.1:{port}/v1", FAST), "m")
    with CallScope(30) as scope, pytest.raises(BackendError) as ei:
        llm.chat(MSGS, GenParams(max_tokens=4))
    assert ei.value.retryable and "server is running" in str(ei.value)
    assert [f.kind for f in scope.faults] == ["connect", "connect", "connect"]
