"""The one table of environment variables, and redaction of credentials in specs and URLs.

Component configs are frozen dataclasses defined beside their components (``TreeConfig``
in :mod:`branchwise.indexing.tree_build`, ``NavigatorConfig`` in :mod:`branchwise.navigation.navigator`,
``AgentConfig`` in :mod:`branchwise.agents.config`, ...) and gathered into one
:class:`branchwise.Settings` (:mod:`branchwise.assembly.settings`). Precedence: explicit
argument / CLI flag > environment variable > default.

| variable | default | meaning |
|---|---|---|
| ``BRANCHWISE_LLM`` | unset | LLM spec (unset: the index's recorded LLM, else ``default``): ``default`` (embedded Qwen2.5-Coder-1.5B GGUF), ``llamacpp:/path.gguf``, ``openai:http://host:8000/v1#model``, ``hf:/path/or/id`` |
| ``BRANCHWISE_EMBEDDER`` | ``default`` | embedder spec: ``default`` (bundled all-MiniLM-L6-v2), ``st:/path``, ``openai-embed:http://host/v1#model`` |
| ``BRANCHWISE_RERANKER`` | ``none`` | reranker spec (see :mod:`branchwise.relevance.registry`) |
| ``BRANCHWISE_STORE`` | ``chroma`` | vector store: ``chroma`` (persistent, in the index dir) or ``chroma+http://127.0.0.1:8000`` |
| ``BRANCHWISE_CACHE_DIR`` | ``~/.cache/branchwise`` | assembled GGUF model and shared caches |
| ``BRANCHWISE_THREADS`` | CPU count | threads for llama.cpp |
| ``BRANCHWISE_SHARED_DATA`` | ``../shared/data`` | where evals and tests find the public datasets |
| ``OPENAI_API_KEY`` / ``BRANCHWISE_OPENAI_API_KEY`` | unset | key for ``openai:`` specs (the latter wins) |
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("BRANCHWISE_CACHE_DIR") or Path.home() / ".cache" / "branchwise")


def env_settings() -> dict[str, object]:
    """The settings the environment sets (see the table above); unset variables are absent."""
    out: dict[str, object] = {}
    for key, var in (("llm", "BRANCHWISE_LLM"), ("embedder", "BRANCHWISE_EMBEDDER"),
                     ("store", "BRANCHWISE_STORE"), ("reranker", "BRANCHWISE_RERANKER")):
        if os.environ.get(var):
            out[key] = os.environ[var]
    out["cache_dir"] = default_cache_dir()
    return out


_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^@/#?\s]+)@", re.I)
_SECRET_PARAMS = re.compile(r"(?P<key>[?&](?:api[_-]?key|key|token|access_token|password|secret)=)[^&#\s]+", re.I)


def redact(text: str) -> str:
    """``text`` with URL credentials (``user:secret@``) and key/token query parameters masked.

    Used wherever a spec or URL is written or shown: manifests, traces, logs, error messages.
    """
    text = _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _SECRET_PARAMS.sub(lambda m: f"{m.group('key')}***", text)
