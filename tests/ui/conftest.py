"""Fixtures of the UI tests: a real index of the demo corpus, a streaming scripted LLM, a live app.

The index is the bundled demo corpus (branchwise's own docs) built with the real embedder
and extractive summaries (seconds, no LLM). The app is served on 127.0.0.1 on a free port in
this process (``prevent_thread_lock``), exactly as ``branchwise chat`` serves it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest


from ui_doubles import DEMO_CORPUS, DEMO_QUESTION, StreamingScriptedLLM, grounded_reply  # noqa: F401


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    """The demo corpus indexed with the real embedder and an extractive-summary tree."""
    from branchwise.indexing.pipeline import IndexConfig, build_index
    from branchwise.indexing.chunk_stage import IndexBuildConfig
    from branchwise.indexing.tree_build import TreeConfig
    from branchwise.indexing.summarize import SummaryConfig

    out = tmp_path_factory.mktemp("ui") / "demo-index"
    config = IndexConfig(chunk=IndexBuildConfig(embedder_spec="default"), graph="off",
                         tree=TreeConfig(max_children=4, summary=SummaryConfig(mode="extractive", summary_tokens=64)))
    build_index(DEMO_CORPUS, out, embedder=real_embedder, config=config, progress=False)
    return out


@dataclass
class LiveApp:
    url: str
    workdir: Path
    llm: Any
    app: Any

    def client(self, **kwargs: Any) -> Any:
        from gradio_client import Client

        return Client(self.url, verbose=False, analytics_enabled=False, download_files=False, **kwargs)


def start_app(index: Path, workdir: Path, llms: dict[str, Any], embedder: Any, *, llm: str,
              auth: tuple[str, str] | None = None, concurrency: int = 4) -> tuple[Any, str]:
    """Launch the chat app on 127.0.0.1 (free port) without blocking; returns (app, url)."""
    from branchwise.ui.app import launch_app, make_app
    from branchwise.ui.sessions import ModelPool
    from branchwise.ui.settings import ChatSettings, ServerConfig

    config = ServerConfig(workdir=workdir, port=free_port(), auth=auth, chat_concurrency=concurrency)
    pool = ModelPool(llms=llms, embedders={"default": embedder}, allow_custom=False)
    app = make_app(index, workdir=workdir, pool=pool, config=config,
                   defaults=ChatSettings(llm=llm, rounds=1, iterations=6))
    return app, launch_app(app, config)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Any]:
    """A factory ``launch(index, llms, embedder, llm=..., auth=..., concurrency=...) -> LiveApp``."""
    started: list[Any] = []

    def _launch(index: Path, llms: dict[str, Any], embedder: Any, *, llm: str, **kwargs: Any) -> LiveApp:
        workdir = tmp_path / f"work{len(started)}"
        app, url = start_app(index, workdir, llms, embedder, llm=llm, **kwargs)
        started.append(app)
        return LiveApp(url=url, workdir=workdir, llm=llms[llm], app=app)

    yield _launch
    for app in started:
        app.close()


@pytest.fixture(scope="module")
def live_app(demo_index: Path, real_embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The chat app over the demo index with a streaming scripted LLM."""
    llm = StreamingScriptedLLM(replies=grounded_reply)
    workdir = tmp_path_factory.mktemp("chat-work")
    app, url = start_app(demo_index, workdir, {"scripted": llm}, real_embedder, llm="scripted")
    try:
        yield LiveApp(url=url, workdir=workdir, llm=llm, app=app)
    finally:
        app.close()
