"""The ``branchwise`` command line end to end: index, info, dry run, ask, and bad input.

Real pieces throughout: the bundled all-MiniLM-L6-v2 embedder, Chroma on disk, the tree
builder (extractive summaries, no LLM) and, for ``ask``, the OpenAI-compatible HTTP backend
talking to a minimal loopback server that plays the model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from branchwise.cli.main import main

DOCS = {
    "calibration.md": "# Calibration\n\nThe navigator fits latent relevance scores across slates by weighted "
    "least squares, with one offset per slate, so scores from different prompts become comparable.",
    "clustering.md": "# Clustering\n\nBottom-up trees group leaf embeddings with balanced k-means so that no "
    "node has more than M children; top-down trees split the corpus recursively from the root.",
    "compression.md": "# Compression\n\nRECOMP extractive compression keeps the sentences most similar to the "
    "question until the token budget is spent; abstractive compression asks the LLM for a summary.",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    code = main(["index", str(corpus), "--out", str(out), "--summaries", "extractive", "--max-children", "3",
                 "--no-progress"])
    assert code == 0
    return out


def test_index_writes_a_complete_index_and_info_reports_it(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 3
    assert manifest["counts"]["chunks"] == 3
    assert main(["info", str(built)]) == 0
    out = capsys.readouterr().out
    assert "3 leaves" in out and "all-MiniLM-L6-v2" in out
    assert "branching histogram" in out


def test_rerunning_index_on_a_finished_build_is_a_quick_no_op(corpus: Path, built: Path) -> None:
    before = (built / "manifest.json").read_text()
    assert main(["index", str(corpus), "--out", str(built), "--summaries", "extractive", "--max-children", "3",
                 "--no-progress"]) == 0
    assert json.loads((built / "manifest.json").read_text())["counts"] == json.loads(before)["counts"]


def test_dry_run_prints_the_plan_and_writes_nothing(corpus: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["index", str(corpus), "--out", str(out), "--dry-run", "--max-children", "3",
                 "--summaries", "extractive", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "LLM calls" in text and "3 leaves" in text
    assert not out.exists()


class _FakeModelServer:
    """A loopback server speaking the OpenAI chat API; every reply cites passage [1]."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                text = "Scores are calibrated by a weighted least-squares fit with one offset per slate [1]."
                reply = {"id": "x", "object": "chat.completion", "model": body.get("model", "m"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def model_server() -> Iterator[_FakeModelServer]:
    server = _FakeModelServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_ask_over_http_prints_answer_citations_and_tree_path(
    built: Path, model_server: _FakeModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.json"
    code = main(["ask", str(built), "How are relevance scores calibrated across slates?",
                 "--llm", f"openai:{model_server.url}#stub", "--rounds", "1", "--trace", str(trace)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "weighted least-squares" in out
    assert "[1]" in out and "calibration.md" in out  # the citation resolves to the calibration chunk
    assert "Path through the tree" in out
    assert model_server.requests, "the answer must come from the HTTP backend"
    saved = json.loads(trace.read_text())
    assert saved  # the full agent trace is written as JSON


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (lambda tmp: ["index", str(tmp / "missing"), "--out", str(tmp / "o")], "missing"),
        (lambda tmp: ["info", str(tmp / "nowhere")], "nowhere"),
        (lambda tmp: ["ask", str(tmp / "nowhere"), "q?"], "nowhere"),
    ],
    ids=["missing-path", "info-missing-index", "ask-missing-index"],
)
def test_bad_input_exits_non_zero_with_one_line_error(make_args: Any, needle: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(make_args(tmp_path))
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("branchwise: error:")
    assert needle in err
    assert len(err.splitlines()) == 1, err


def test_malformed_jsonl_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "docs.jsonl"
    data.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n', encoding="utf-8")
    assert main(["index", str(data), "--out", str(tmp_path / "o"), "--summaries", "extractive"]) != 0
    err = capsys.readouterr().err
    assert "docs.jsonl:2:" in err and "malformed JSON" in err
