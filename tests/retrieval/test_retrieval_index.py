"""The Index: create/open, embedder checks, tree persistence, incremental updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from branchwise.errors import IndexFormatError, InputError
from branchwise.retrieval.index import Index
from branchwise.testing import HashingEmbedder
from branchwise.retrieval.tree import Node, Tree
from branchwise.types import Chunk


def chunk(doc: str, i: int, text: str) -> Chunk:
    return Chunk(id=f"{doc}#{i}", doc_id=doc, text=text, ordinal=i, title=doc.upper())


CHUNKS = [
    chunk("a", 0, "Lattice trees group chunks by topic."),
    chunk("a", 1, "Each internal node has a summary."),
    chunk("b", 0, "Chroma stores the chunk vectors persistently."),
    chunk("c", 0, "BM25 ranks chunks by rare shared terms."),
]


@pytest.fixture
def index(tmp_path: Path, hashing_embedder) -> Index:
    idx = Index.create(tmp_path / "idx", hashing_embedder, embedder_spec="test:hashing")
    assert idx.add_chunks(CHUNKS) == [c.id for c in CHUNKS]
    return idx


def flat_tree(chunk_ids: list[str], summary: str = "all chunks") -> Tree:
    nodes = {"n0": Node("n0", 1, None, [f"l{i}" for i in range(len(chunk_ids))], summary)}
    for i, cid in enumerate(chunk_ids):
        nodes[f"l{i}"] = Node(f"l{i}", 0, "n0", chunk_id=cid)
    return Tree(nodes=nodes, root="n0")


def two_level_tree(chunk_ids: list[str]) -> Tree:
    half = len(chunk_ids) // 2
    nodes = {"r": Node("r", 2, None, ["n1", "n2"], "root summary"),
             "n1": Node("n1", 1, "r", [], "first half"), "n2": Node("n2", 1, "r", [], "second half")}
    for i, cid in enumerate(chunk_ids):
        parent = "n1" if i < half else "n2"
        nodes[f"l{i}"] = Node(f"l{i}", 0, parent, chunk_id=cid)
        nodes[parent].children.append(f"l{i}")
    return Tree(nodes=nodes, root="r")


def test_create_then_open_roundtrip(index: Index, hashing_embedder):
    again = Index.open(index.path, hashing_embedder)
    assert again.chunks.ids() == [c.id for c in CHUNKS]
    assert again.chunks.get("b#0").text == CHUNKS[2].text
    assert again.manifest.embedder.name == hashing_embedder.name
    assert again.manifest.embedder.spec == "test:hashing"
    assert again.manifest.counts == {"documents": 3, "chunks": 4}
    np.testing.assert_allclose(
        again.chunk_embeddings(["b#0", "a#0"]),
        hashing_embedder.embed(["B\n" + CHUNKS[2].text, "A\n" + CHUNKS[0].text]),  # title line + text
        atol=1e-6,
    )
    assert again.tree is None
    assert again.chunk_embeddings([]).shape == (0, 64) and again.node_embeddings([]).shape == (0, 64)
    assert again.cache_dir == index.path / "cache" and again.graph_dir == index.path / "graph"


def test_open_missing_index_dir(tmp_path: Path):
    with pytest.raises(IndexFormatError, match=r"no index at .*nowhere.*branchwise index PATH --out"):
        Index.open(tmp_path / "nowhere", HashingEmbedder())
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexFormatError, match="no index at"):
        Index.open(tmp_path / "empty", HashingEmbedder())


def test_open_with_another_embedder_says_which_one_built_it(index: Index):
    with pytest.raises(IndexFormatError) as e:
        Index.open(index.path, HashingEmbedder(dim=64, name="other-model"))
    msg = str(e.value)
    assert "built with embedder 'hashing-test-embedder' (dim 64)" in msg
    assert "not 'other-model'" in msg and "--embedder test:hashing" in msg and "--overwrite" in msg
    with pytest.raises(IndexFormatError, match="dim 64"):
        Index.open(index.path, HashingEmbedder(dim=32))  # same name, other size


def test_create_refuses_existing_index_and_foreign_folders(index: Index, tmp_path: Path, hashing_embedder):
    with pytest.raises(IndexFormatError, match="already exists.*overwrite"):
        Index.create(index.path, hashing_embedder)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(InputError, match="not a branchwise index"):
        Index.create(foreign, hashing_embedder, overwrite=True)
    assert (foreign / "cat.jpg").exists()


def test_overwrite_clears_chunks_vectors_and_tree_but_keeps_cache(index: Index, hashing_embedder):
    index.save_tree(flat_tree(index.chunks.ids()), {"n0": hashing_embedder.embed(["all"])[0]})
    (index.cache_dir).mkdir()
    (index.cache_dir / "llm.sqlite").write_bytes(b"cached")
    fresh = Index.create(index.path, hashing_embedder, overwrite=True)
    assert len(fresh.chunks) == 0 and fresh.tree is None
    assert fresh.store.count("chunks") == 0 and fresh.store.count("nodes") == 0
    assert (fresh.cache_dir / "llm.sqlite").read_bytes() == b"cached"


def test_save_tree_stores_summaries_and_drops_stale_nodes(index: Index, hashing_embedder):
    ids = index.chunks.ids()
    tree = two_level_tree(ids)
    vecs = {n: hashing_embedder.embed([tree.nodes[n].summary])[0] for n in ("r", "n1", "n2")}
    index.save_tree(tree, vecs)
    reopened = Index.open(index.path, hashing_embedder)
    assert reopened.tree is not None and reopened.tree.to_dict() == tree.to_dict()
    np.testing.assert_allclose(reopened.node_embeddings(["n2", "r"]), np.stack([vecs["n2"], vecs["r"]]), atol=1e-6)
    assert reopened.manifest.counts["nodes"] == 3

    # a new tree without n1/n2: their vectors go; only the changed root vector is passed
    flat = flat_tree(ids, "root summary")
    reopened.save_tree(flat, {})
    assert reopened.store.ids("nodes") == []  # "r" is gone too: the new root is "n0"
    reopened.save_tree(flat, {"n0": vecs["r"]})
    assert reopened.store.ids("nodes") == ["n0"]


def test_save_tree_validates(index: Index, hashing_embedder):
    ids = index.chunks.ids()
    with pytest.raises(IndexFormatError, match="do not match the chunks"):
        index.save_tree(flat_tree(ids[:-1]), {})
    with pytest.raises(InputError, match="non-internal"):
        index.save_tree(flat_tree(ids), {"l0": hashing_embedder.embed(["x"])[0]})
    with pytest.raises(IndexFormatError, match="shape"):
        index.save_tree(flat_tree(ids), {"n0": np.ones(7, dtype=np.float32)})
    assert not index.tree_path.exists()


def test_incremental_add_and_remove(index: Index, hashing_embedder, counting_embedder):
    counting = counting_embedder(hashing_embedder)
    idx = Index.open(index.path, counting)
    before = idx.manifest.corpus_fingerprint
    assert idx.add_chunks(CHUNKS) == []  # nothing new: nothing embedded
    assert counting.texts == 0
    changed = idx.add_chunks([chunk("b", 0, "Chroma keeps vectors on disk."), chunk("d", 0, "Graphs link entities.")])
    assert changed == ["b#0", "d#0"] and counting.texts == 2
    assert idx.search_bm25("entities graphs", 1)[0].chunk_id == "d#0"  # BM25 was rebuilt
    assert idx.manifest.counts == {"documents": 4, "chunks": 5}
    assert idx.manifest.corpus_fingerprint != before

    assert idx.remove_docs(["a", "zzz"]) == ["a#0", "a#1"]
    assert idx.chunks.ids() == ["b#0", "c#0", "d#0"]
    assert sorted(idx.store.ids("chunks")) == ["b#0", "c#0", "d#0"]
    assert all(h.chunk_id != "a#0" for h in idx.search_bm25("lattice trees topic", 5))
    assert idx.manifest.counts == {"documents": 3, "chunks": 3}
    assert Index.open(idx.path, hashing_embedder).chunks.ids() == ["b#0", "c#0", "d#0"]


def test_retriever_kinds(index: Index):
    q = "which store keeps chunk vectors"
    assert index.search_bm25(q, 1)[0].chunk_id == "b#0"
    assert {h.source for h in index.search_dense(q, 2)} == {"dense"}
    assert index.search_hybrid(q, 1)[0].chunk_id == "b#0"
    with pytest.raises(InputError, match="unknown retriever"):
        index.retriever("tree")  # type: ignore[arg-type]


def test_open_without_embedder_needs_a_recorded_spec(tmp_path: Path, hashing_embedder):
    Index.create(tmp_path / "nospec", hashing_embedder)
    with pytest.raises(IndexFormatError, match="spec was not recorded.*embedder="):
        Index.open(tmp_path / "nospec")
