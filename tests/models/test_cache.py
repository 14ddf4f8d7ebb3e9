"""CachedEmbedder and CachedLLM: content-hash keys, persistence, usage metering, threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from branchwise.models.base import GenParams, Message
from branchwise.models.cache import CachedEmbedder, CachedLLM, text_hash
from branchwise.testing import HashingEmbedder, ScriptedLLM, json_reply


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=32, name="counting")
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().embed(texts)


def test_embedder_cache_memory_and_disk(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    c = CachedEmbedder(inner, tmp_path / "e.sqlite", max_memory_items=2)
    out = c.embed(["a b", "c d", "a b", "e f"])
    assert inner.seen == ["a b", "c d", "e f"]
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out, inner.embed(["a b", "c d", "a b", "e f"]))
    inner.seen.clear()
    # "a b" fell out of the 2-item LRU but is on disk.
    assert len(c._lru) == 2
    c.embed(["a b"])
    assert inner.seen == []
    # Keys are (model name, sha256(text)): another model name never reuses vectors.
    rows = sqlite3.connect(tmp_path / "e.sqlite").execute("SELECT model, hash FROM embeddings").fetchall()
    assert ("counting", text_hash("a b")) in rows and len(rows) == 3
    other = CountingEmbedder()
    other.name = "other-model"
    CachedEmbedder(other, tmp_path / "e.sqlite").embed(["a b"])
    assert other.seen == ["a b"]


def test_embedder_cache_threads(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    c = CachedEmbedder(inner, tmp_path / "e.sqlite")
    texts = [f"text {i}" for i in range(50)]
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(c.embed(texts))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, results[0])
    assert c.embed(texts).shape == (50, 32)


def _msgs(q: str) -> list[Message]:
    return [Message("system", "be brief"), Message("user", q)]


def test_llm_cache_hits_are_free_and_marked(tmp_path: Path) -> None:
    inner = ScriptedLLM(replies=lambda m: "echo: " + m[-1].content)
    llm = CachedLLM(inner, tmp_path / "llm.sqlite")
    a = llm.chat(_msgs("q1"))
    b = llm.chat(_msgs("q1"))
    assert a.text == b.text == "echo: q1"
    assert (a.cached, b.cached) == (False, True) and b.latency_s == 0.0
    assert len(inner.calls) == 1
    llm.chat(_msgs("q1"), GenParams(max_tokens=7))  # other params: another key
    assert len(inner.calls) == 2
    assert (llm.meter.calls, llm.meter.cached_calls) == (2, 1)
    assert llm.meter.completion_tokens == 3 * 2  # "echo: q1" is 2 words per ScriptedLLM
    # A fresh process (new wrapper) reuses the file.
    again = CachedLLM(ScriptedLLM(replies=["never called"]), tmp_path / "llm.sqlite")
    assert again.chat(_msgs("q1")).text == "echo: q1"


def test_llm_cache_json_and_logprobs(tmp_path: Path) -> None:
    inner = ScriptedLLM(
        replies=[json_reply({"ok": True})],
        logprob_fn=lambda m, c: -0.5 if c == "Yes" else -2.0,
    )
    llm = CachedLLM(inner, tmp_path / "llm.sqlite")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    s1, s2 = llm.chat_json(_msgs("j"), schema), llm.chat_json(_msgs("j"), schema)
    assert s1.value == s2.value == {"ok": True} and s2.completion.cached
    lp1 = llm.continuation_logprobs(_msgs("rel?"), ["Yes", "No"])
    lp2 = llm.continuation_logprobs(_msgs("rel?"), ["Yes", "No"])
    assert lp1 == lp2 == [-0.5, -2.0]
    assert llm.continuation_logprobs(_msgs("rel?"), ["No", "Yes"]) == [-2.0, -0.5]
    n_scoring_calls = sum(1 for c in inner.calls if c[-1].content == "rel?")
    assert n_scoring_calls == 2  # ["Yes","No"] once, ["No","Yes"] once
    assert llm.meter.cached_calls == 2  # one json hit, one logprob hit


def test_llm_cache_batch_only_sends_misses(tmp_path: Path) -> None:
    inner = ScriptedLLM(logprob_fn=lambda m, c: -float(len(m[-1].content)))
    llm = CachedLLM(inner, tmp_path / "llm.sqlite")
    llm.continuation_logprobs(_msgs("aa"), ["Yes"])
    n = len(inner.calls)
    out = llm.continuation_logprobs_batch([_msgs("aa"), _msgs("bbb"), _msgs("c")], ["Yes"])
    assert out == [[-2.0], [-3.0], [-1.0]]
    assert len(inner.calls) - n == 2
    assert (llm.meter.calls, llm.meter.cached_calls) == (3, 1)
    assert llm.meter.prompt_tokens == 4 * 3  # 4 recorded calls x ('be', 'brief', one word)


def test_llm_cache_without_file_only_meters() -> None:
    inner = ScriptedLLM(replies=["x y z"])
    llm = CachedLLM(inner, None)
    llm.chat(_msgs("a"))
    llm.chat(_msgs("a"))
    assert len(inner.calls) == 2 and llm.meter.calls == 2 and llm.meter.cached_calls == 0


def test_llm_cache_threads(tmp_path: Path) -> None:
    inner = ScriptedLLM(replies=lambda m: m[-1].content.upper())
    llm = CachedLLM(inner, tmp_path / "llm.sqlite")
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(20):
                assert llm.chat(_msgs(f"q{i % 5}")).text == f"Q{i % 5}"
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert llm.meter.calls + llm.meter.cached_calls == 80
