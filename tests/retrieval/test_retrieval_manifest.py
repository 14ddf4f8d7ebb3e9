"""Manifest persistence and errors; the chunk store's atomic JSONL persistence."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from branchwise.errors import IndexFormatError
from branchwise.retrieval.chunkstore import ChunkStore
from branchwise.retrieval.manifest import INDEX_SCHEMA, EmbedderInfo, Manifest, corpus_fingerprint
from branchwise.types import Chunk


def make_manifest() -> Manifest:
    return Manifest(
        embedder=EmbedderInfo("minilm", 384, "default"),
        chunking={"chunk_tokens": 256, "overlap_tokens": 32, "encoding": "cl100k_base"},
        corpus_fingerprint="ab" * 32,
        llm="default",
    )


def test_roundtrip_and_functional_updates(tmp_path: Path):
    m = make_manifest().with_stage("chunks", "done").with_counts(chunks=12, documents=3)
    m.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded == m
    assert loaded.schema == INDEX_SCHEMA and loaded.stage_done("chunks") and not loaded.stage_done("tree")
    assert loaded.counts == {"chunks": 12, "documents": 3}
    assert loaded.embedder == EmbedderInfo("minilm", 384, "default")
    # the file is plain JSON, no temp files left behind by the atomic write
    assert json.loads((tmp_path / "manifest.json").read_text())["embedder"]["dim"] == 384
    assert os.listdir(tmp_path) == ["manifest.json"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.llm = "x"  # type: ignore[misc]  # frozen


def test_missing_corrupt_and_other_schema(tmp_path: Path):
    with pytest.raises(IndexFormatError, match="no index at .*branchwise index PATH --out"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        Manifest.load(tmp_path)
    d = make_manifest().to_dict()
    (tmp_path / "manifest.json").write_text(json.dumps({**d, "schema": "branchwise.index/0"}), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="schema 'branchwise.index/0'.*--overwrite"):
        Manifest.load(tmp_path)
    del d["embedder"]
    (tmp_path / "manifest.json").write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="corrupt"):
        Manifest.load(tmp_path)


def test_corpus_fingerprint_is_order_independent_and_content_sensitive():
    a = corpus_fingerprint([("d1", "h1"), ("d2", "h2")])
    assert a == corpus_fingerprint([("d2", "h2"), ("d1", "h1")])
    assert a != corpus_fingerprint([("d1", "h1"), ("d2", "h3")])
    assert a != corpus_fingerprint([("d1", "h1")])
    # ids and digests cannot run into each other
    assert corpus_fingerprint([("ab", "c")]) != corpus_fingerprint([("a", "bc")])


def test_chunk_store_add_remove_and_reload(tmp_path: Path):
    path = tmp_path / "chunks.jsonl"
    store = ChunkStore.load(path)
    assert len(store) == 0
    c = [Chunk(id=f"d{i // 2}#{i % 2}", doc_id=f"d{i // 2}", text=f"text {i}", ordinal=i % 2) for i in range(4)]
    assert store.add(c) == [x.id for x in c]
    assert store.add(c[:1]) == []  # unchanged: nothing to do
    assert store.add([Chunk(id="d0#0", doc_id="d0", text="edited")]) == ["d0#0"]
    assert store.remove(["d1#0", "zzz"]) == ["d1#0"]
    again = ChunkStore.load(path)
    assert again.ids() == ["d0#0", "d0#1", "d1#1"]
    assert again.get("d0#0").text == "edited"
    assert [x.id for x in again.by_doc("d0")] == ["d0#0", "d0#1"]
    assert again.doc_ids() == ["d0", "d1"] and "d1#1" in again
    with pytest.raises(KeyError, match="no chunk 'nope'"):
        again.get("nope")


def test_chunk_store_corrupt_line_names_it(tmp_path: Path):
    path = tmp_path / "chunks.jsonl"
    path.write_text('{"id": "a#0", "doc_id": "a", "text": "x"}\n{"id": \n', encoding="utf-8")
    with pytest.raises(IndexFormatError, match=r"chunks\.jsonl:2"):
        ChunkStore.load(path)
