"""``branchwise serve`` as a user runs it: a subprocess on a free loopback port, with API keys and
JSON access logs (no question is asked here, so no LLM loads; the answers are tested in tests/server)."""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from branchwise.assembly.root import build_index
from branchwise.assembly.settings import Settings
from branchwise.cli.main import main

DOCS = [{"id": "etna", "title": "Etna", "text": "Mount Etna is an active volcano on the east coast of Sicily."},
        {"id": "fuji", "title": "Fuji", "text": "Mount Fuji is the highest mountain of Japan."},
        {"id": "hekla", "title": "Hekla", "text": "Hekla is a volcano in the south of Iceland."}]
KEY = "cli-test-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def index_dir(tmp_path: Path, real_embedder: Any) -> Path:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    settings = Settings()
    tree = dataclasses.replace(settings.index.tree, max_children=3,
                               summary=dataclasses.replace(settings.index.tree.summary, mode="extractive"))
    build_index(corpus, tmp_path / "volcano-index", settings.replace(index={"tree": tree}), embedder=real_embedder,
                progress=False)
    return tmp_path / "volcano-index"


def test_serve_starts_on_loopback_with_keys_and_json_access_logs(index_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"volcanoes": [KEY]}))
    cmd = [str(Path(sys.executable).parent / "branchwise"), "serve", f"volcanoes={index_dir}", "--port", str(port),
           "--keys-file", str(keys), "--workdir", str(tmp_path / "work")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)
        assert httpx.get(f"{base}/v1/models").json()["data"] == []  # no key: nothing listed
        models = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert [m["id"] for m in models["data"]] == ["volcanoes"]
        assert httpx.get(f"{base}/v1/indexes/volcanoes").status_code == 401
        info = httpx.get(f"{base}/v1/indexes/volcanoes", headers={"X-API-Key": KEY}).json()
        assert info["documents"] == 3 and str(index_dir) not in json.dumps(info)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert f"branchwise serve: http://127.0.0.1:{port}" in out and "indexes: volcanoes" in out
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {(r["path"], r["status"]) for r in records} >= {("/v1/models", 200), ("/v1/indexes/volcanoes", 401)}
    assert KEY not in err


def test_serve_refuses_bad_input_with_a_fix(index_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "nothing-here")]) == 2
    assert "not an index directory" in capsys.readouterr().err
    assert main(["serve", f"a={index_dir}", "--key", "b=some-long-key-0123456789"]) == 2
    assert "not served" in capsys.readouterr().err
    assert main(["serve", f"a={index_dir}", "--key", "a=short"]) == 2
    assert "shorter than 16" in capsys.readouterr().err


def test_serve_without_the_server_extra_names_it(index_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert main(["serve", str(index_dir)]) == 2
    assert "pip install 'branchwise[server]'" in capsys.readouterr().err
