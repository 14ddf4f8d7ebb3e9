"""The REST API on a live loopback server: index info, adding and deleting documents through the
incremental update path, asking with options, confined uploads, size limits, the queue's 429,
/health and the JSON access log (real indexes and agent, scripted LLM)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import httpx
import pytest
from server_doubles import STROMBOLI, VOLCANOES, build_small, scripted_reply

from branchwise.models.base import Message
from branchwise.server.config import ServedIndexSpec
from branchwise.testing import ScriptedLLM

LIGHTHOUSE_Q = "Which volcano do sailors call the lighthouse of the Mediterranean?"
ETNA_Q = "Which city did the lava of Etna reach in 1669?"


@pytest.fixture
def fresh_index(tmp_path: Path, real_embedder: Any) -> Path:
    """A volcano index of this test's own (updates change it)."""
    return build_small(tmp_path / "fresh" / "volcanoes", VOLCANOES, real_embedder)


def ask(http: httpx.Client, question: str, **body: Any) -> dict[str, Any]:
    r = http.post("/v1/indexes/volcanoes/ask", json={"question": question, **body})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_adding_and_deleting_documents_changes_what_is_answered(serve, fresh_index: Path, scripted_settings) -> None:
    live = serve([ServedIndexSpec("volcanoes", fresh_index)], scripted_settings)
    with live.client() as http:
        before = ask(http, LIGHTHOUSE_Q)
        assert "stromboli#0" not in [c["chunk_id"] for c in before["citations"]]
        assert "lighthouse" not in before["answer"]

        r = http.post("/v1/indexes/volcanoes/documents", json={"documents": [STROMBOLI]})
        assert r.status_code == 200, r.text
        assert r.json()["added"] == ["stromboli"] and r.json()["counts"]["chunks"] == 5
        assert {"id": "stromboli", "chunks": 1} in http.get("/v1/indexes/volcanoes/documents").json()["data"]
        after = ask(http, LIGHTHOUSE_Q)
        assert "lighthouse of the Mediterranean" in after["answer"]
        assert [c["chunk_id"] for c in after["citations"]] == ["stromboli#0"]

        # the same document again is skipped; a changed one is replaced
        again = http.post("/v1/indexes/volcanoes/documents", json={"documents": [STROMBOLI]}).json()
        assert again["unchanged"] == ["stromboli"]

        r = http.delete("/v1/indexes/volcanoes/documents/stromboli")
        assert r.status_code == 200 and r.json()["deleted"] == ["stromboli"]
        gone = ask(http, LIGHTHOUSE_Q)
        assert "stromboli#0" not in [c["chunk_id"] for c in gone["citations"]] and "lighthouse" not in gone["answer"]
        assert http.get("/v1/indexes/volcanoes").json()["documents"] == 4
        assert http.delete("/v1/indexes/volcanoes/documents/stromboli").status_code == 404


def test_uploaded_files_stay_inside_the_work_directory(serve, fresh_index: Path, scripted_settings,
                                                       tmp_path: Path) -> None:
    live = serve([ServedIndexSpec("volcanoes", fresh_index)], scripted_settings)
    text = f"# Stromboli\n\n{STROMBOLI['text']}\n".encode()
    with live.client() as http:
        r = http.post("/v1/indexes/volcanoes/documents", files=[("files", ("../../../evil.md", text))])
        assert r.status_code == 200, r.text
        assert r.json()["added"] == ["evil.md"]
        refused = http.post("/v1/indexes/volcanoes/documents", files=[("files", ("run.sh", b"rm -rf /"))])
        assert refused.status_code == 400 and "not a supported document type" in refused.json()["error"]["message"]
        bad = http.post("/v1/indexes/volcanoes/documents", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert "lighthouse" in ask(http, LIGHTHOUSE_Q)["answer"]
    workdir = live.server.state.config.workdir.resolve()
    saved = list(workdir.rglob("evil.md"))
    assert len(saved) == 1 and saved[0].is_relative_to(workdir / "uploads" / "volcanoes")
    assert not list(tmp_path.rglob("evil.md")) or all(p.is_relative_to(workdir) for p in tmp_path.rglob("evil.md"))
    assert not list(workdir.rglob("run.sh"))


def test_ask_with_options_is_validated_against_the_registries(serve, volcano_index: Path, scripted_settings) -> None:
    live = serve([ServedIndexSpec("volcanoes", volcano_index)], scripted_settings)
    with live.client() as http:
        out = ask(http, ETNA_Q, options={"scorer": "yesno", "agent": {"plan": False, "context_budget_tokens": 128},
                                        "navigator": {"beam": 1}, "compression": {"mode": "none"}})
        assert "Catania" in out["answer"] and out["citations"][0]["chunk_id"] == "etna#0"
        trace = http.get(f"/v1/traces/{out['trace_id']}").json()
        settings = trace["run"]["settings"]
        assert settings["scorer"] == "yesno" and settings["navigator"]["beam"] == 1
        assert settings["compression"]["mode"] == "none" and trace["compression"]["method"] != "extractive"
        assert trace["config"]["context_budget_tokens"] == 128 and trace["config"]["plan"] is False
        # the server's own settings are untouched by a request's options
        assert http.get(f"/v1/traces/{ask(http, ETNA_Q)['trace_id']}").json()["run"]["settings"]["scorer"] == "embedding"

        for options, message in [({"scorer": "psychic"}, "unknown navigator scorer 'psychic'"),
                                 ({"compression": {"mode": "zip"}}, "unknown compressor 'zip'"),
                                 ({"agent": {"max_rounds": 50}}, "over this server's limit of 4"),
                                 ({"agent": {"plan": "yes"}}, "agent.plan='yes' is not valid"),
                                 ({"compression": {"encoder": "st:/etc"}}, "compression.encoder cannot be set"),
                                 ({"llm": "openai:http://evil/v1#x"}, "Extra inputs are not permitted")]:
            r = http.post("/v1/indexes/volcanoes/ask", json={"question": ETNA_Q, "options": options})
            assert r.status_code == 400 and message in r.json()["error"]["message"], (options, r.text)
        info = http.get("/v1/indexes/volcanoes").json()
        assert info["documents"] == 4 and info["tree"]["depth"] >= 1 and info["summaries"] == "extractive"
        assert http.get("/v1/indexes/nope").status_code == 404
        assert http.get("/health").json()["status"] == "ok"


def test_request_size_limits(serve, volcano_index: Path, scripted_settings) -> None:
    live = serve([ServedIndexSpec("volcanoes", volcano_index)], scripted_settings, max_body_bytes=4000,
                 max_question_chars=200)
    big = {"documents": [{"id": "big", "text": "lava " * 2000}]}
    with live.client() as http:
        r = http.post("/v1/indexes/volcanoes/documents", json=big)
        assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"

        def chunks() -> Any:  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b"x" * 1000

        assert http.post("/v1/indexes/volcanoes/documents", content=chunks(),
                         headers={"content-type": "application/json"}).status_code == 413
        long_q = http.post("/v1/indexes/volcanoes/ask", json={"question": "why " * 100})
        assert long_q.status_code == 413
    assert not list((live.server.state.config.workdir / "uploads").rglob("*.jsonl"))


class GatedLLM(ScriptedLLM):
    """Scripted replies that wait for ``gate`` (so a question can be held inside the model)."""

    def __init__(self) -> None:
        super().__init__(self._gated)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def _gated(self, messages: Sequence[Message]) -> str:
        self.entered.set()
        assert self.gate.wait(60)
        return scripted_reply(messages)


def test_a_full_queue_answers_429_at_once_and_the_queued_questions_still_finish(
        serve, volcano_index: Path, scripted_settings) -> None:
    llm = GatedLLM()
    live = serve([ServedIndexSpec("volcanoes", volcano_index)], scripted_settings, llm=llm,
                 queue_size=1, queue_per_index=1)
    results: list[int] = []

    def post() -> None:
        with live.client() as http:
            results.append(http.post("/v1/indexes/volcanoes/ask", json={"question": ETNA_Q}).status_code)

    first = threading.Thread(target=post)
    first.start()
    assert llm.entered.wait(30)  # the first question holds the model
    second = threading.Thread(target=post)
    second.start()
    with live.client() as http:
        deadline = time.monotonic() + 30
        while http.get("/health").json()["queue"]["waiting"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = http.post("/v1/indexes/volcanoes/ask", json={"question": ETNA_Q})
        assert r.status_code == 429 and r.headers["retry-after"]
        assert r.json()["error"]["type"] == "rate_limit_error"
        llm.gate.set()
        first.join(60)
        second.join(60)
        assert results == [200, 200]
        assert http.get("/health").json()["queue"] == {"running": 0, "waiting": 0, "concurrency": 1, "max_waiting": 1}


def test_access_log_is_one_json_line_per_request_without_secrets(serve, volcano_index: Path, scripted_settings,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    key = "access-log-key-0123456789"
    live = serve([ServedIndexSpec("volcanoes", volcano_index, keys=(key,))], scripted_settings)
    with caplog.at_level(logging.INFO, logger="branchwise.server.access"), live.client(key) as http:
        request_id = http.get("/v1/indexes/volcanoes").headers["x-request-id"]
        http.get("/v1/indexes/volcanoes", headers={"Authorization": "Bearer wrong-key-0123456789"})
        deadline = time.monotonic() + 10  # a record is written once its response is sent
        while sum(r.name == "branchwise.server.access" for r in caplog.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "branchwise.server.access"]
    assert [(r["path"], r["status"], r["index"]) for r in records] == [
        ("/v1/indexes/volcanoes", 200, "volcanoes"), ("/v1/indexes/volcanoes", 401, None)]
    assert records[0]["request_id"] == request_id and records[0]["client"] == "127.0.0.1"
    assert all(key not in r.getMessage() and "wrong-key" not in r.getMessage() for r in caplog.records)
