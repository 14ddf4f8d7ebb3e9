"""Shared fixtures (a plugin of the root conftest): a network guard, small real corpora, test embedders, a Chroma server."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from branchwise.testing import HashingEmbedder

_LOOPBACK = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}


class NetworkAttempts:
    """Records every non-loopback connection or DNS lookup that was blocked."""

    def __init__(self) -> None:
        self.blocked: list[str] = []


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkAttempts]:
    """Fail any connection / DNS lookup to a non-loopback address, and record it."""
    attempts = NetworkAttempts()
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family == socket.AF_UNIX or host in _LOOPBACK:
            return real_connect(self, address)
        attempts.blocked.append(f"connect {address}")
        raise OSError(f"network disabled in tests: connect to {address}")

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is None or str(host) in _LOOPBACK:
            return real_getaddrinfo(host, *args, **kwargs)
        attempts.blocked.append(f"getaddrinfo {host}")
        raise socket.gaierror(f"network disabled in tests: lookup of {host}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


def read_vaswani(shared_data: Path, n: int) -> list[tuple[str, str]]:
    """The first ``n`` Vaswani abstracts as (docno, text)."""
    raw = (shared_data / "vaswani" / "doc-text.trec").read_text(encoding="utf-8")
    docs = re.findall(r"<DOCNO>\s*(\d+)\s*</DOCNO>(.*?)</DOC>", raw, re.S)[:n]
    return [(d, " ".join(t.split())) for d, t in docs]


@pytest.fixture(scope="session")
def vaswani_jsonl(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 Vaswani physics abstracts as a JSONL corpus in a temp dir (never in the repo)."""
    path = tmp_path_factory.mktemp("vaswani") / "vaswani200.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for docno, text in read_vaswani(shared_data, 200):
            f.write(json.dumps({"id": f"vaswani-{docno}", "text": text}) + "\n")
    return path


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder(dim=64)


class CountingEmbedder:
    """Wraps an embedder, counting calls; optionally fails after ``fail_after`` calls."""

    def __init__(self, inner: object, fail_after: int | None = None):
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.dim = inner.dim  # type: ignore[attr-defined]
        self.fail_after = fail_after
        self.calls = 0
        self.texts = 0

    def embed(self, texts):  # type: ignore[no-untyped-def]
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts)  # type: ignore[attr-defined]

    def embed_query(self, text):  # type: ignore[no-untyped-def]
        return self.inner.embed_query(text)  # type: ignore[attr-defined]


@pytest.fixture
def counting_embedder() -> type[CountingEmbedder]:
    """The :class:`CountingEmbedder` class (fixtures cannot be imported from conftest)."""
    return CountingEmbedder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real `chroma run` server on a free loopback port; SIGTERM'd afterwards."""
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists() and shutil.which("chroma") is None:
        pytest.skip("the `chroma` CLI is not installed in this environment (pip install chromadb)")
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "ORT_DISABLE_TELEMETRY": "1"}
    proc = subprocess.Popen(
        [str(exe if exe.exists() else "chroma"), "run", "--path", str(tmp_path / "server"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                pytest.fail(f"chroma server exited with code {proc.returncode}")
            time.sleep(0.2)
        else:
            pytest.fail("chroma server did not start within 60 s")
        yield f"chroma+http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
