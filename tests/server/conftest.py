"""Fixtures of the server tests: small real indexes, a scripted LLM backend, a live server on loopback.

The indexes are real (all-MiniLM-L6-v2 in Chroma, BM25, an extractive-summary tree: seconds,
no LLM). The LLM is a stateless scripted double registered as the ``scripted`` LLM backend,
so the server loads it by spec exactly as it loads a real model; the real 1.5B model is used
in ``test_server_real_llm.py`` only. Servers run uvicorn in a thread on a free 127.0.0.1 port.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import httpx
import pytest
from server_doubles import BAKING, VOLCANOES, StreamingScriptedLLM, build_small, scripted_reply

from branchwise.assembly.settings import Settings
from branchwise.models.registry import LLM_BACKENDS
from branchwise.server.app import Server, create_server, serve_in_thread
from branchwise.server.config import ServeConfig, ServedIndexSpec


@pytest.fixture(scope="session")
def volcano_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    return build_small(tmp_path_factory.mktemp("served") / "volcanoes", VOLCANOES, real_embedder)


@pytest.fixture(scope="session")
def baking_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    return build_small(tmp_path_factory.mktemp("served") / "baking", BAKING, real_embedder)


@pytest.fixture
def scripted_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose LLM spec ``scripted:`` makes a streaming scripted LLM (one round per question)."""
    made: list[StreamingScriptedLLM] = []

    def factory(arg: str, config: Any) -> StreamingScriptedLLM:
        made.append(StreamingScriptedLLM(scripted_reply))
        return made[-1]

    LLM_BACKENDS.register("scripted", factory, "test double", replace=True)
    yield Settings(llm="scripted:").replace(agent={"max_rounds": 1})
    LLM_BACKENDS.unregister("scripted")


@dataclass
class Live:
    """A server running on loopback."""

    url: str
    server: Server

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def openai(self, key: str = "no-key") -> Any:
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """``serve(specs, settings, **config) -> Live``: a server in a thread; stopped after the test."""
    stack: list[Any] = []

    def _serve(specs: Sequence[ServedIndexSpec], settings: Settings, *, llm: Any = None, **config: Any) -> Live:
        cfg = ServeConfig(**{"workdir": tmp_path / f"work{len(stack)}", "port": 0, **config})
        server = create_server(specs, settings, cfg, llm=llm)
        ctx = serve_in_thread(server.app, cfg.host, cfg.port)
        url = ctx.__enter__()
        stack.append(ctx)
        return Live(url, server)

    yield _serve
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)
