"""Shared fixtures: paths to ../shared/data, the real embedded models (session-scoped).

Real-model fixtures load once per session. Tests that use the 1.5B GGUF model are marked
``real_llm``; they are few and small (2-core CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("BRANCHWISE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    p = _shared_data()
    if not p.is_dir():
        pytest.fail(f"shared datasets not found at {p}; set BRANCHWISE_SHARED_DATA to ../shared/data")
    return p


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2 sentence-transformers embedder (real model, offline)."""
    from branchwise.models.factory import make_embedder

    return make_embedder("default")


@pytest.fixture(scope="session")
def real_llm():
    """The embedded Qwen2.5-Coder-1.5B-Instruct GGUF through llama-cpp-python (real model)."""
    from branchwise.models.factory import make_llm

    return make_llm("default")
