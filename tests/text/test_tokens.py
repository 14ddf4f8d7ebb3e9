"""Offline tiktoken: encodings built from llama-index-core's bundled files, no network."""

from __future__ import annotations

import pytest

from branchwise.errors import InputError
from branchwise.text.tokens import Tokenizer, bundled_tiktoken_dir, get_tokenizer

SAMPLE = "Branchwise navigates a semantic tree. Ünïcödé, 日本語, emoji 🚀, numbers 12345, <|endoftext|> as text."


def test_tokenizer_builds_and_counts_with_network_absent(no_network, monkeypatch, tmp_path):
    empty_cache = tmp_path / "tiktoken-cache"
    empty_cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty_cache))
    for name in ("cl100k_base", "o200k_base"):
        tok = Tokenizer(name)  # a fresh instance: really loads under the block
        # "hello world" is [15339, 1917] in cl100k_base and [24912, 2375] in o200k_base.
        expected = {"cl100k_base": [15339, 1917], "o200k_base": [24912, 2375]}[name]
        assert tok.encode("hello world") == expected
        assert tok.count(SAMPLE) > 10
    assert no_network.blocked == []
    assert list(empty_cache.iterdir()) == [], "nothing may be written to tiktoken's download cache"


def test_matches_tiktoken_reference_encoding(monkeypatch):
    """Same ids as tiktoken's own constructor fed from the same bundled files."""
    import tiktoken

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(bundled_tiktoken_dir()))
    for name in ("cl100k_base", "o200k_base"):
        ref = tiktoken.get_encoding(name)
        assert get_tokenizer(name).encode(SAMPLE) == ref.encode_ordinary(SAMPLE)


def test_special_token_text_is_ordinary_text():
    tok = get_tokenizer()
    ids = tok.encode("<|endoftext|>")
    assert 100257 not in ids and len(ids) > 1
    assert tok.decode(ids) == "<|endoftext|>"


def test_truncate_and_roundtrip():
    tok = get_tokenizer()
    assert tok.decode(tok.encode(SAMPLE)) == SAMPLE
    assert tok.truncate(SAMPLE, 10_000) == SAMPLE
    cut = tok.truncate(SAMPLE, 7)
    assert SAMPLE.startswith(cut) and tok.count(cut) <= 7 and len(cut) < len(SAMPLE)
    assert tok.truncate(SAMPLE, 0) == ""
    # a cut inside a multi-byte character leaves no replacement character behind
    cjk = "日本語の文章です"
    for n in range(1, tok.count(cjk)):
        assert "\ufffd" not in tok.truncate(cjk, n)
    with pytest.raises(InputError):
        tok.truncate(SAMPLE, -1)


def test_unknown_encoding_is_a_clear_error():
    with pytest.raises(InputError, match="not bundled"):
        Tokenizer("p50k_base")


def test_get_tokenizer_is_cached_per_name():
    assert get_tokenizer("cl100k_base") is get_tokenizer("cl100k_base")
    assert get_tokenizer("o200k_base") is not get_tokenizer("cl100k_base")
