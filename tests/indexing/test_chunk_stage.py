"""build_chunk_index: resumable after an interruption, refuses foreign corpora, fully offline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from branchwise.errors import IndexFormatError, InputError
from branchwise.indexing.chunk_stage import IndexBuildConfig, build_chunk_index
from branchwise.retrieval.chunking import ChunkingConfig
from branchwise.retrieval.index import Index

CONFIG = IndexBuildConfig(embed_batch_size=16, embedder_spec="test:hashing")


def snapshot(idx: Index) -> dict:
    ids = idx.chunks.ids()
    return {
        "chunks": [c.to_dict() for c in idx.chunks],
        "stored": sorted(idx.store.ids("chunks")),
        "vectors": idx.chunk_embeddings(ids),
        "bm25": idx.search_bm25("magnetic field measurements", 10),
        "dense": idx.search_dense("magnetic field measurements", 10),
        "manifest": {k: v for k, v in idx.manifest.to_dict().items() if k != "created_at"},
    }


def test_resume_after_interruption_embeds_only_the_rest(tmp_path, vaswani_jsonl, hashing_embedder, counting_embedder):
    reference = snapshot(build_chunk_index(vaswani_jsonl, tmp_path / "ref", hashing_embedder, CONFIG, progress=False))
    n_chunks = len(reference["chunks"])
    n_batches = math.ceil(n_chunks / 16)

    out = tmp_path / "resumed"
    first = counting_embedder(hashing_embedder, fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        build_chunk_index(vaswani_jsonl, out, first, CONFIG, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"] == {"chunks": "done", "embeddings": "in_progress"}
    assert first.calls == 5

    second = counting_embedder(hashing_embedder)
    idx = build_chunk_index(vaswani_jsonl, out, second, CONFIG, progress=False)
    assert second.calls == n_batches - 5 and second.texts == n_chunks - 5 * 16
    resumed = snapshot(idx)
    np.testing.assert_allclose(resumed.pop("vectors"), reference.pop("vectors"), atol=1e-6)
    assert resumed == reference
    assert idx.manifest.stages == {"chunks": "done", "embeddings": "done", "bm25": "done"}

    third = counting_embedder(hashing_embedder)  # a finished index: nothing to embed
    build_chunk_index(vaswani_jsonl, out, third, CONFIG, progress=False)
    assert third.calls == 0


def test_other_corpus_chunking_or_embedder_is_refused_unless_overwrite(tmp_path, hashing_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("First version of the text.", encoding="utf-8")
    out = tmp_path / "idx"
    build_chunk_index(corpus, out, hashing_embedder, CONFIG, progress=False)

    (corpus / "a.txt").write_text("Second, edited version of the text.", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="different corpus.*overwrite"):
        build_chunk_index(corpus, out, hashing_embedder, CONFIG, progress=False)
    other_chunking = IndexBuildConfig(chunking=ChunkingConfig(chunk_tokens=128, overlap_tokens=16))
    with pytest.raises(IndexFormatError, match="different corpus"):
        build_chunk_index(corpus, out, hashing_embedder, other_chunking, progress=False)

    idx = build_chunk_index(corpus, out, hashing_embedder, IndexBuildConfig(overwrite=True), progress=False)
    assert [c.text for c in idx.chunks] == ["Second, edited version of the text."]
    assert idx.store.count("chunks") == 1

    with pytest.raises(IndexFormatError, match="other chunking parameters"):
        build_chunk_index(corpus, out, hashing_embedder, other_chunking, progress=False)
    from branchwise.testing import HashingEmbedder

    with pytest.raises(IndexFormatError, match="another embedder"):
        build_chunk_index(corpus, out, HashingEmbedder(dim=32), progress=False)


def test_out_must_be_new_empty_or_an_index(tmp_path, hashing_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n\ntext", encoding="utf-8")
    with pytest.raises(InputError, match="not a branchwise index"):
        build_chunk_index(corpus, corpus, hashing_embedder, CONFIG, progress=False)  # out = the corpus itself


def test_real_build_and_search_use_no_network(no_network, tmp_path, vaswani_jsonl, real_embedder):
    """The whole chunk build (ingest, tiktoken, llama-index splitter, MiniLM, Chroma, bm25s) and
    every search route, then reopening with the embedder resolved from the manifest spec."""
    out = tmp_path / "idx"
    config = IndexBuildConfig(embedder_spec="default")
    idx = build_chunk_index(vaswani_jsonl, out, real_embedder, config, progress=False)
    assert idx.manifest.counts == {"documents": 200, "chunks": 200}
    assert idx.manifest.embedder.dim == 384
    query = "an electronic calculating unit converting polar coordinates of a vector"
    assert idx.search_hybrid(query, 3)[0].chunk_id == "vaswani-3#0"

    reopened = Index.open(out)  # embedder from the manifest: make_embedder("default")
    assert reopened.embedder.name == real_embedder.name
    assert reopened.search_dense(query, 5)[0].chunk_id == idx.search_dense(query, 5)[0].chunk_id
    assert no_network.blocked == [], no_network.blocked


def test_build_and_reopen_with_a_chroma_server(chroma_server, tmp_path, hashing_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nMagnetic fields bend electron beams.", encoding="utf-8")
    (corpus / "b.md").write_text("# Beta\n\nCrystal lattices scatter x-rays.", encoding="utf-8")
    config = IndexBuildConfig(store=chroma_server, embedder_spec="test:hashing")
    idx = build_chunk_index(corpus, tmp_path / "idx", hashing_embedder, config, progress=False)
    assert not (tmp_path / "idx" / "chroma").exists()  # vectors live on the server
    namespace = idx.manifest.store_namespace
    assert namespace.startswith("bw-")

    reopened = Index.open(tmp_path / "idx", hashing_embedder)
    assert reopened.search_dense("electron beams in magnetic fields", 1)[0].chunk_id == "a.md#0"
    assert sorted(reopened.store.ids("chunks")) == ["a.md#0", "b.md#0"]

    # a second index on the same server does not see the first one's vectors
    other = build_chunk_index(corpus / "b.md", tmp_path / "other", hashing_embedder, config, progress=False)
    assert other.manifest.store_namespace != namespace
    assert other.store.ids("chunks") == ["b.md#0"]

    # overwrite drops the old namespace's collections on the server
    build_chunk_index(corpus / "a.md", tmp_path / "idx", hashing_embedder,
                      IndexBuildConfig(store=chroma_server, overwrite=True), progress=False)
    from branchwise.retrieval.store import make_store

    assert make_store(chroma_server, tmp_path, namespace=namespace).count("chunks") == 0
