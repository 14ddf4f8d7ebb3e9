"""Credentials never leave in specs: redaction of URLs and key parameters."""

from __future__ import annotations

import pytest

from branchwise.config import env_settings, redact


@pytest.mark.parametrize(("text", "expected"), [
    ("openai:http://user:secret@host:8000/v1#m", "openai:http://***@host:8000/v1#m"),
    ("chroma+http://admin:pw@127.0.0.1:8000", "chroma+http://***@127.0.0.1:8000"),
    ("openai:https://host/v1?api_key=sk-123&x=1#m", "openai:https://host/v1?api_key=***&x=1#m"),
    ("retry 2/4 for https://tok@host/v1/chat: 503", "retry 2/4 for https://***@host/v1/chat: 503"),
    ("default", "default"),
    ("llamacpp:/models/a@b.gguf", "llamacpp:/models/a@b.gguf"),  # no URL: left alone
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_env_settings_reads_only_what_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("BRANCHWISE_LLM", "BRANCHWISE_EMBEDDER", "BRANCHWISE_STORE", "BRANCHWISE_RERANKER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BRANCHWISE_LLM", "openai:http://h/v1#m")
    got = env_settings()
    assert got["llm"] == "openai:http://h/v1#m" and "embedder" not in got and "cache_dir" in got
