"""Fixtures of the reliability tests: the CLI in-process with the real embedder loaded once,
a small corpus and a built index of it, and helpers to run the CLI like a user would.

The embedder is the real bundled all-MiniLM-L6-v2 (one instance for the session, handed to
every ``make_embedder("default")``: loading it per command would cost seconds each); Chroma,
BM25, the tree builder and the CLI are the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rel_support import Run, fast_settings, write_docs

from branchwise.cli.main import main


@pytest.fixture
def shared_embedder(real_embedder: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every ``make_embedder("default")`` of this test returns the session's real embedder."""
    from branchwise.models import factory

    real = factory.make_embedder

    def make_embedder(spec: str = "default", config: Any = None, cache_dir: Any = None, memory_cache: bool = True):
        if (spec or "default") == "default" and config is None:
            return real_embedder
        return real(spec, config, cache_dir, memory_cache)

    monkeypatch.setattr(factory, "make_embedder", make_embedder)
    return real_embedder


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], shared_embedder: Any):
    """Run ``branchwise ARGS`` in-process; returns exit code, stdout and stderr."""

    def run(*args: Any) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


@pytest.fixture(scope="module")
def built_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> tuple[Path, Path]:
    """(corpus, index): the corpus of :data:`DOCS` built once per module as ``FAST`` builds it."""
    from branchwise.assembly.root import build_index

    base = tmp_path_factory.mktemp("built")
    corpus = write_docs(base / "corpus")
    build_index(corpus, base / "index", fast_settings(), embedder=real_embedder, progress=False)
    return corpus, base / "index"
