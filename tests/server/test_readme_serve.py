"""The README's `branchwise serve` example as written: its command lines parse, its `curl` requests
get the JSON shapes it shows, and its `openai` client script runs unchanged (only the port differs)
against a live server on loopback serving the bundled demo corpus as ``demo-index`` (real MiniLM
index, extractive tree; scripted LLM — the real model's answers are tested in test_server_real_llm.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from branchwise.assembly.root import build_index
from branchwise.assembly.settings import Settings
from branchwise.cli.main import build_parser
from branchwise.facade import demo_corpus_dir
from branchwise.server.config import ServedIndexSpec

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Serving: an OpenAI-compatible API"
BASE = "http://127.0.0.1:8000"


def _section() -> str:
    return README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(), re.S)


def _commands(console: str) -> list[str]:
    """``$ ...`` lines of a console block, continuation lines joined, trailing ``&`` and comments dropped."""
    out: list[str] = []
    lines = console.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("$ "):
            continue
        cmd = line[2:]
        while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
        cmd = re.sub(r"\s+#.*$", "", cmd).strip().removesuffix("&").strip()
        out.append(cmd)
    return out


@pytest.fixture(scope="module")
def readme_demo_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    """``branchwise index <demo corpus> --out demo-index --summaries extractive`` (graph off: not what is tested)."""
    s = Settings()
    tree = dataclasses.replace(s.index.tree, summary=dataclasses.replace(s.index.tree.summary, mode="extractive"))
    out = tmp_path_factory.mktemp("readme") / "demo-index"
    build_index(demo_corpus_dir(), out, s.replace(index={"tree": tree, "graph": "off"}), embedder=real_embedder,
                progress=False)
    return out


def test_the_readme_command_lines_parse() -> None:
    commands = [shlex.split(c) for c in _commands(_blocks("console")[0])]
    index = next(c for c in commands if c[:2] == ["branchwise", "index"])
    serve = next(c for c in commands if c[:2] == ["branchwise", "serve"])
    args = build_parser().parse_args(index[1:])
    assert args.out == "demo-index" and args.summaries == "extractive"
    args = build_parser().parse_args(serve[1:])
    assert args.indexes == ["demo-index"] and args.port == 8000 and args.host == "127.0.0.1"
    assert any(c[:2] == ["curl", "-s"] and c[2] == f"{BASE}/v1/models" for c in commands)


def test_the_readme_curl_requests_get_the_shapes_it_shows(serve, readme_demo_index: Path, scripted_settings) -> None:
    live = serve([ServedIndexSpec("demo-index", readme_demo_index)], scripted_settings)
    console = _blocks("console")[0]
    commands = _commands(console)
    with live.client() as http:
        # GET /v1/models: the README shows the response byte for byte
        shown = console.split("$ curl -s http://127.0.0.1:8000/v1/models\n", 1)[1].splitlines()[0]
        r = http.get("/v1/models")
        assert r.status_code == 200 and r.text == shown
        # POST /v1/chat/completions with the README's body: every key the README shows is in the answer
        chat = next(c for c in commands if "/v1/chat/completions" in c)
        parts = shlex.split(chat)
        body = json.loads(parts[parts.index("-d") + 1])
        assert parts[parts.index("-H") + 1] == "Content-Type: application/json"
        r = http.post(parts[2].removeprefix(BASE), json=body)
        assert r.status_code == 200, r.text
        reply = r.json()
        sample = console.split(chat.split(" -H ")[0].removeprefix("curl -s "), 1)[1].split("\n$ ", 1)[0]
        sample = sample.split("\n{", 1)[1]
        shown_keys = set(re.findall(r'"([a-z_]+)":', sample))
        assert {"id", "object", "model", "choices", "usage", "citations", "branchwise", "trace_id",
                "standalone_question", "chunk_id", "marker", "title", "quote", "llm_calls"} <= shown_keys

        def keys(value: Any) -> set[str]:
            if isinstance(value, dict):
                return set(value) | {k for v in value.values() for k in keys(v)}
            if isinstance(value, list):
                return {k for v in value for k in keys(v)}
            return set()

        assert shown_keys <= keys(reply), shown_keys - keys(reply)
        assert reply["object"] == "chat.completion" and reply["model"] == "demo-index"
        assert reply["id"] == f"chatcmpl-{reply['branchwise']['trace_id']}"
        assert reply["citations"] and "\n\nSources:\n[1] " in reply["choices"][0]["message"]["content"]
        # GET /v1/traces/{id}, as the README's last curl does
        trace = next(c for c in _commands(_blocks("console")[1]) if "/v1/traces/" in c)
        assert shlex.split(trace)[2].startswith(f"{BASE}/v1/traces/")
        assert http.get(f"/v1/traces/{reply['branchwise']['trace_id']}").status_code == 200


def test_the_readme_openai_client_script_runs_unchanged(serve, readme_demo_index: Path, scripted_settings) -> None:
    live = serve([ServedIndexSpec("demo-index", readme_demo_index)], scripted_settings)
    script = _blocks("python")[0]
    assert script.count(f'base_url="{BASE}/v1"') == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(script.replace(f"{BASE}/v1", f"{live.url}/v1"), "README.md (serve)", "exec"), {})
    printed = out.getvalue()
    assert "citations: ['" in printed and "Sources:\n[1] " in printed
    standalone = re.search(r"^standalone question: (.*)$", printed, re.M)
    assert standalone and standalone.group(1) == "How far does it scale? (Which clustering does the tree builder use?)"
    trace_id = re.search(r"^trace: ([0-9a-f]{32})$", printed, re.M)
    assert trace_id, printed
    with live.client() as http:
        trace = http.get(f"/v1/traces/{trace_id.group(1)}").json()
    assert trace["original_question"] == "How far does it scale?" and trace["contextualize"]["history_turns"] == 2
