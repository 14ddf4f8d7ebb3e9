"""Endpoint faults and credentials end to end: the composition root, the agent, the CLI.

A real index (bundled MiniLM embedder, Chroma on disk, extractive tree) built by the real
CLI; the LLM is the ``openai:`` backend talking to the fault-injecting server on 127.0.0.1,
with a password in the spec and an API key in the environment. Checked: a flaky endpoint is
survived and every fault is in the trace; a dead one fails the question within its deadline
with an error naming the endpoint; no password or key is ever written to the manifest, the
trace, the log, the call cache or an error message.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest
from fault_server import FaultServer

from branchwise.assembly.root import Assembly, build_agent, open_index
from branchwise.assembly.settings import Settings
from branchwise.cli.main import main
from branchwise.errors import BackendError

SECRET = "hunter2-pw"
KEY = "sk-test-0123456789abcdef"
DOCS = {
    "calibration.md": "# Calibration\n\nThe navigator fits latent relevance scores across slates by weighted "
    "least squares, with one offset per slate, so scores from different prompts become comparable.",
    "clustering.md": "# Clustering\n\nBottom-up trees group leaf embeddings with balanced k-means so that no "
    "node has more than M children; top-down trees split the corpus recursively from the root.",
    "compression.md": "# Compression\n\nRECOMP extractive compression keeps the sentences most similar to the "
    "question until the token budget is spent; abstractive compression asks the LLM for a summary.",
}
QUESTION = "How are relevance scores calibrated across slates?"


def spec(srv: FaultServer) -> str:
    return f"openai:http://alice:{SECRET}@127.0.0.1:{srv.port}/v1#m"


def assert_clean(text: str, where: str) -> None:
    assert SECRET not in text, f"the password leaked into {where}"
    assert KEY not in text, f"the API key leaked into {where}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    assert main(["index", str(corpus), "--out", str(out), "--summaries", "extractive", "--max-children", "3",
                 "--no-progress"]) == 0
    return out


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    monkeypatch.setenv("BRANCHWISE_OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)  # every logger, every level: httpx and httpcore included
    yield
    assert_clean(caplog.text, "the log")


@pytest.fixture
def server() -> Iterator[Any]:
    servers: list[FaultServer] = []

    def start(**kw: Any) -> FaultServer:
        s = FaultServer(**kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


FLAKY = ["http_503", "reset", "http_429", "malformed_json", "wrong_schema"]


def test_flaky_endpoint_is_survived_and_the_trace_lists_every_fault(
    built: Path, server: Any, secrets_env: None, tmp_path: Path
) -> None:
    srv = server(plan=lambda n, path, body: FLAKY[n] if n < len(FLAKY) else "ok", retry_after_s=0.05)
    settings = Settings(llm=spec(srv), timeout_s=120).replace(agent={"max_rounds": 1})
    with build_agent(open_index(built), settings) as agent:
        answer = agent.ask(QUESTION)
    assert answer.text and answer.trace is not None
    faults = [n for n in answer.trace.notes if n["kind"] == "endpoint_fault"]
    assert [n["detail"].split(": ")[1].split(" on ")[0] for n in faults] == FLAKY
    assert all(n["node"] in {"plan", "feedback", "gap_query", "distill", "generate"} for n in faults), faults
    assert all(f"POST http://127.0.0.1:{srv.port}/v1/chat/completions" in n["detail"] for n in faults)
    # four faults in a row spend one call's retries (1 + 3): the node is retried (LangGraph) and succeeds
    assert [n["detail"].rsplit("; ", 1)[1].split(" in ")[0] for n in faults] == [
        "retry 1/3", "retry 2/3", "retry 3/3", "gave up", "retry 1/3"]
    assert srv.faults_served()[: len(FLAKY)] == FLAKY and len(srv.requests) > len(FLAKY)
    # the password went to the server as basic auth (the URL's user:password), nowhere else
    creds = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert all(r.headers["authorization"] == f"Basic {creds}" for r in srv.requests)
    path = tmp_path / "trace.json"
    answer.trace.save(path)
    trace_text = path.read_text(encoding="utf-8")
    assert_clean(trace_text, "the trace")
    assert f"http://***@127.0.0.1:{srv.port}/v1#m" in json.loads(trace_text)["run"]["llm"]


def test_api_key_goes_only_into_the_authorization_header(built: Path, server: Any, secrets_env: None) -> None:
    srv = server(script=["http_503"])
    settings = Settings(llm=f"openai:{srv.url}#m").replace(agent={"max_rounds": 1})
    with build_agent(open_index(built), settings) as agent:
        answer = agent.ask(QUESTION)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in srv.requests)
    assert answer.trace is not None
    assert_clean(json.dumps(answer.trace.to_dict()), "the trace")


def test_dead_endpoint_fails_the_question_within_its_deadline(built: Path, server: Any, secrets_env: None) -> None:
    srv = server(default="hang")
    settings = Settings(llm=spec(srv), timeout_s=2)
    with build_agent(open_index(built), settings) as agent, pytest.raises(BackendError) as ei:
        agent.ask(QUESTION)
    message = str(ei.value)
    assert not ei.value.retryable  # the node is not retried past the deadline
    assert f"http://127.0.0.1:{srv.port}/v1/chat/completions" in message
    assert "2 s deadline of this question" in message and "--timeout" in message
    assert_clean(message, "the error")


def test_stream_reports_faults_and_honours_the_deadline(built: Path, server: Any) -> None:
    srv = server(script=["http_503"])
    parts = Assembly(open_index(built), Settings(llm=f"openai:{srv.url}#m", timeout_s=60).replace(
        agent={"max_rounds": 1}))
    with parts.agent() as agent:
        events = list(agent.stream(QUESTION))
    final = events[-1].answer
    assert final is not None and final.trace is not None
    assert [n["kind"] for n in final.trace.notes].count("endpoint_fault") == 1

    dead = server(default="hang")
    parts = Assembly(open_index(built), Settings(llm=f"openai:{dead.url}#m", timeout_s=1.5))
    with parts.agent() as agent, pytest.raises(BackendError, match="deadline of this question"):
        list(agent.stream(QUESTION))


def test_cli_ask_against_a_dead_endpoint_fails_with_the_deadline(
    built: Path, server: Any, secrets_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    srv = server(default="hang")
    code = main(["ask", str(built), QUESTION, "--llm", spec(srv), "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "branchwise: error: POST http://127.0.0.1:" in err and "2 s deadline of this question" in err
    assert "--timeout SECONDS" in err
    assert_clean(err, "stderr")


def test_cli_rejects_a_negative_timeout(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ask", str(built), QUESTION, "--timeout", "-3"])
    assert "not a number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize("summaries", ["extractive", "llm"])
def test_manifest_and_call_cache_hold_no_credentials(
    corpus: Path, server: Any, secrets_env: None, tmp_path: Path, summaries: str
) -> None:
    srv = server(script=["http_503"])
    out = tmp_path / "index"
    code = main(["index", str(corpus), "--out", str(out), "--summaries", summaries, "--max-children", "3",
                 "--llm", spec(srv), "--no-progress"])
    assert code == 0
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    assert_clean(manifest, "manifest.json")
    if summaries == "llm":  # the LLM was used: its spec is recorded, redacted, and its calls cached
        assert f"openai:http://***@127.0.0.1:{srv.port}/v1#m" in manifest
        cache = out / "cache" / "llm.sqlite"
        with sqlite3.connect(cache) as conn:
            rows = conn.execute("SELECT key, model, kind, value FROM calls").fetchall()
        assert rows and {r[1] for r in rows} == {"m"}
        assert_clean(repr(rows), "the call cache rows")
        for f in out.glob("cache/llm.sqlite*"):
            assert SECRET.encode() not in f.read_bytes() and KEY.encode() not in f.read_bytes()
    else:  # the LLM was never used: nothing about it is recorded
        assert srv.requests == [] and "openai:" not in manifest


def test_spec_errors_redact_credentials() -> None:
    from branchwise.errors import InputError
    from branchwise.models.factory import make_llm

    with pytest.raises(InputError) as ei:
        make_llm(f"openai:http://alice:{SECRET}@127.0.0.1:9/v1")  # no '#model'
    assert "***@127.0.0.1" in str(ei.value)
    assert_clean(str(ei.value), "the spec error")


def test_credentials_echoed_by_a_server_are_masked_in_errors(server: Any, secrets_env: None) -> None:
    from branchwise.models.factory import make_llm
    from branchwise.models.base import Message

    for llm_spec in (spec(server(default="echo_auth")), f"openai:{server(default='echo_auth').url}#m"):
        with pytest.raises(BackendError) as ei:
            make_llm(llm_spec).chat([Message("user", "hi")])
        message = str(ei.value)
        assert "HTTP 401" in message and "invalid credentials: " in message and "***" in message
        assert_clean(message, "the error")
        assert base64.b64encode(f"alice:{SECRET}".encode()).decode() not in message


def test_a_recorded_llm_spec_with_masked_credentials_fails_clearly_until_given_again(
    corpus: Path, server: Any, secrets_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest keeps ``openai:http://***@…``: reused as it is, "***" would go out as the
    password (a puzzling 401, or worse). It fails at once, naming the option that gives it back."""
    srv = server()
    out = tmp_path / "index"
    assert main(["index", str(corpus), "--out", str(out), "--summaries", "llm", "--max-children", "3",
                 "--llm", spec(srv), "--no-progress"]) == 0
    sent = len(srv.requests)
    capsys.readouterr()
    code = main(["ask", str(out), QUESTION])  # the LLM is the one recorded in the manifest
    err = capsys.readouterr().err
    assert code == 2, err
    assert "credentials were masked" in err and "--llm 'openai:http://USER:PASSWORD@host/v1#model'" in err
    assert "Settings" not in err and "llm=" not in err  # worded for the command line
    assert len(srv.requests) == sent  # nothing was sent with "***" as a password
    assert_clean(err, "stderr")
    assert main(["ask", str(out), QUESTION, "--llm", spec(srv)]) == 0, capsys.readouterr().err


def test_a_recorded_embedder_spec_with_masked_credentials_is_given_again_with_embedder(
    built: Path, server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from branchwise.models.factory import make_embedder

    srv = server()
    masked = f"openai-embed:http://***@127.0.0.1:{srv.port}/v1#e"
    with pytest.raises(BackendError) as ei:
        make_embedder(masked)
    assert not ei.value.retryable and "credentials were masked" in str(ei.value) and srv.requests == []
    # an index as an openai-embed: build with a password leaves it: ask --embedder gives the embedder again
    idx = tmp_path / "index"
    shutil.copytree(built, idx)
    manifest = json.loads((idx / "manifest.json").read_text())
    manifest["embedder"]["spec"] = masked.replace("#e", "#" + manifest["embedder"]["name"])
    (idx / "manifest.json").write_text(json.dumps(manifest))
    llm = f"openai:{srv.url}#m"
    capsys.readouterr()
    assert main(["ask", str(idx), QUESTION, "--llm", llm]) == 2
    err = capsys.readouterr().err
    assert "credentials were masked" in err and "--embedder 'openai-embed:" in err, err
    assert main(["ask", str(idx), QUESTION, "--llm", llm, "--embedder", "default"]) == 0, capsys.readouterr().err
    assert srv.requests and all(r.path.endswith("/chat/completions") for r in srv.requests)


def _masked_copy(built: Path, dest: Path, port: int) -> str:
    """A copy of ``built`` whose manifest records a credential-masked openai-embed spec (what an
    index built with a password keeps); returns that spec."""
    import shutil

    shutil.copytree(built, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    masked = f"openai-embed:http://***@127.0.0.1:{port}/v1#{manifest['embedder']['name']}"
    manifest["embedder"]["spec"] = masked
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return masked


def test_serve_and_chat_take_the_embedder_of_a_masked_index_given_again(built: Path, server: Any,
                                                                        tmp_path: Path) -> None:
    import httpx

    from branchwise.cli.main import build_parser
    from branchwise.cli.serve_cmd import build_server
    from branchwise.server.app import serve_in_thread
    from branchwise.ui.sessions import ChatService, ModelPool, Workspace

    srv = server()
    idx = tmp_path / "index"
    masked = _masked_copy(built, idx, srv.port)
    argv = ["serve", f"docs={idx}", "--llm", f"openai:{srv.url}#m", "--workdir", str(tmp_path / "work"), "--port", "0"]
    with pytest.raises(BackendError, match="credentials were masked"):
        build_server(build_parser().parse_args(argv))
    assert srv.requests == []  # nothing went out with "***" as a password
    live, config = build_server(build_parser().parse_args([*argv, "--embedder", "default"]))
    with serve_in_thread(live.app, config.host, config.port) as url:
        r = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                       json={"model": "docs", "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"].strip()
    # the chat app: DIR's embedder given again stands in for the masked recorded one
    with pytest.raises(BackendError, match="credentials were masked"):
        ChatService(ModelPool(), Workspace(tmp_path / "chat1", {"docs": idx})).open_index("docs")
    pool = ModelPool()
    pool.stand_in(masked, "default")
    opened = ChatService(pool, Workspace(tmp_path / "chat2", {"docs": idx})).open_index("docs")
    assert len(opened.chunks) and opened.embedder is pool.embedder("default")
    assert srv.requests and all(r.path.endswith("/chat/completions") for r in srv.requests)


def test_info_describes_a_masked_index_without_its_credentials(built: Path, server: Any, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    srv = server()
    idx = tmp_path / "index"
    _masked_copy(built, idx, srv.port)
    capsys.readouterr()
    assert main(["info", str(idx)]) == 0, capsys.readouterr().err  # info loads no model
    out = capsys.readouterr().out
    assert "embedder: sentence-transformers/all-MiniLM-L6-v2 (dim 384)" in out and "tree:" in out
    assert srv.requests == []
