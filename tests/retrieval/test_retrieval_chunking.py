"""Chunking: token budgets, overlap, ids, determinism, and no downloads (NLTK, tiktoken, OpenAI)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from branchwise.errors import InputError
from branchwise.retrieval.chunking import Chunker, ChunkingConfig, chunk_documents, document_digest
from branchwise.text.tokens import get_tokenizer
from branchwise.types import Document


@pytest.fixture(scope="module")
def stories(shared_data: Path) -> list[Document]:
    """Three long QuALITY stories (2-5k words each)."""
    lines = (shared_data / "quality" / "quality.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    return [Document(id=f"story-{i}", text=json.loads(ln)["input"], title=f"Story {i}") for i, ln in enumerate(lines)]


@pytest.mark.parametrize("size,overlap", [(256, 32), (64, 8)])
def test_chunks_respect_the_token_budget_and_cover_the_text(stories, size, overlap):
    tok = get_tokenizer()
    chunks = chunk_documents(stories, ChunkingConfig(chunk_tokens=size, overlap_tokens=overlap))
    for doc in stories:
        mine = [c for c in chunks if c.doc_id == doc.id]
        assert len(mine) >= tok.count(doc.text) // size  # at least as many as the budget forces
        for i, c in enumerate(mine):
            assert c.id == f"{doc.id}#{i}" and c.ordinal == i
            assert c.n_tokens == tok.count(c.text) <= size
            assert c.title == doc.title
            assert c.metadata["doc_sha256"] == document_digest(doc)
        # every word of the document lands in some chunk, in order
        words = doc.text.split()
        joined = " ".join(" ".join(c.text.split()) for c in mine)
        assert all(w in joined for w in words[:50] + words[-50:])


def test_consecutive_chunks_overlap():
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))
    chunks = Chunker(ChunkingConfig(chunk_tokens=64, overlap_tokens=16)).split(text)
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:], strict=False):
        last_sentence = re.findall(r"Sentence number \d+ [^.]*\.", a)[-1]
        assert last_sentence in b  # the tail of one chunk reappears at the head of the next
        assert b.index(last_sentence) < len(b) // 2


def test_short_document_is_one_chunk_and_chunking_is_deterministic():
    docs = [Document(id="d", text="A short note about trees.", title="T", metadata={"source": "d"})]
    a = chunk_documents(docs)
    b = chunk_documents(docs)
    assert a == b and len(a) == 1
    assert a[0].text == "A short note about trees." and a[0].metadata["source"] == "d"


def test_invalid_config():
    with pytest.raises(InputError, match="overlap_tokens"):
        ChunkingConfig(chunk_tokens=32, overlap_tokens=32)
    with pytest.raises(InputError, match="too small"):
        ChunkingConfig(chunk_tokens=4, overlap_tokens=0)


def test_no_download_attempts_with_empty_nltk_and_tiktoken_dirs(no_network, monkeypatch, tmp_path, stories):
    """Chunking must not fetch punkt/stopwords (NLTK) nor BPE files, nor touch OpenAI."""
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "nltk"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chunks = chunk_documents(stories[:1], ChunkingConfig(chunk_tokens=128, overlap_tokens=16))
    assert len(chunks) > 5
    assert no_network.blocked == []
    assert not (tmp_path / "nltk").exists() and not (tmp_path / "tiktoken").exists()
