"""Run-wide settings and the one table of environment variables.

Component configs are frozen dataclasses defined beside their components (``TreeConfig``
in :mod:`branchwise.indexing.tree_build`, ``NavigatorConfig`` in :mod:`branchwise.navigation.navigator`,
``AgentConfig`` in :mod:`branchwise.agents.config`, ...). This module holds only what spans
components: which models to use and where caches live. Precedence: explicit argument /
CLI flag > environment variable > default.

| variable | default | meaning |
|---|---|---|
| ``BRANCHWISE_LLM`` | ``default`` | LLM spec: ``default`` (embedded Qwen2.5-Coder-1.5B GGUF), ``llamacpp:/path.gguf``, ``openai:http://host:8000/v1#model``, ``hf:/path/or/id`` |
| ``BRANCHWISE_EMBEDDER`` | ``default`` | embedder spec: ``default`` (bundled all-MiniLM-L6-v2), ``st:/path``, ``openai-embed:http://host/v1#model`` |
| ``BRANCHWISE_STORE`` | ``chroma`` | vector store: ``chroma`` (persistent, in the index dir) or ``chroma+http://127.0.0.1:8000`` |
| ``BRANCHWISE_CACHE_DIR`` | ``~/.cache/branchwise`` | assembled GGUF model and shared caches |
| ``BRANCHWISE_THREADS`` | CPU count | threads for llama.cpp |
| ``BRANCHWISE_SHARED_DATA`` | ``../shared/data`` | where evals and tests find the public datasets |
| ``OPENAI_API_KEY`` / ``BRANCHWISE_OPENAI_API_KEY`` | unset | key for ``openai:`` specs (the latter wins) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("BRANCHWISE_CACHE_DIR") or Path.home() / ".cache" / "branchwise")


@dataclass(frozen=True, slots=True)
class Settings:
    """Which backends to use and where caches live.

    Attributes:
        llm: LLM spec string (see the module table).
        embedder: embedder spec string.
        store: vector store spec.
        cache_dir: directory for the assembled embedded model and shared caches.
        threads: CPU threads for local backends (None: all cores).
    """

    llm: str = "default"
    embedder: str = "default"
    store: str = "chroma"
    cache_dir: Path = Path.home() / ".cache" / "branchwise"
    threads: int | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Settings from the environment, then ``overrides`` (None values are ignored)."""
        threads = os.environ.get("BRANCHWISE_THREADS")
        base = cls(
            llm=os.environ.get("BRANCHWISE_LLM", "default"),
            embedder=os.environ.get("BRANCHWISE_EMBEDDER", "default"),
            store=os.environ.get("BRANCHWISE_STORE", "chroma"),
            cache_dir=default_cache_dir(),
            threads=int(threads) if threads else None,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})
