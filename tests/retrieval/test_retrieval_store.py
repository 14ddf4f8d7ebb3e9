"""The Chroma vector store against real Chroma: persistence, batching, server mode."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from branchwise.errors import BackendError, IndexFormatError, InputError
from branchwise.retrieval.store import ChromaConfig, ChromaStore, VectorStore, make_store


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_upsert_query_get_delete(tmp_path: Path, no_network):
    store = make_store("chroma", tmp_path)
    assert isinstance(store, VectorStore)
    vecs = unit_rows(40, 16)
    ids = [f"c{i}" for i in range(40)]
    store.upsert("chunks", ids, vecs, [f"text {i}" for i in ids], [{"doc_id": f"d{i % 4}"} for i in range(40)])
    assert store.count("chunks") == 40 and sorted(store.ids("chunks")) == sorted(ids)

    hits = store.query("chunks", vecs[7], k=5)
    assert hits[0][0] == "c7" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    sims = [s for _, s in hits]
    assert sims == sorted(sims, reverse=True)
    # the similarity is the cosine: check the 2nd hit against numpy
    second = int(hits[1][0][1:])
    assert hits[1][1] == pytest.approx(float(vecs[7] @ vecs[second]), abs=1e-4)

    filtered = store.query("chunks", vecs[7], k=50, where={"doc_id": "d1"})
    assert {i for i, _ in filtered} == {f"c{i}" for i in range(1, 40, 4)}

    got = store.get_embeddings("chunks", ["c9", "c2"])  # order of the request, not of storage
    np.testing.assert_allclose(got, vecs[[9, 2]], atol=1e-6)
    with pytest.raises(IndexFormatError, match="1 ids have no vector"):
        store.get_embeddings("chunks", ["c1", "missing"])

    store.delete("chunks", ["c7", "c8"])
    assert store.count("chunks") == 38 and "c7" not in {i for i, _ in store.query("chunks", vecs[7], k=3)}
    assert store.query("empty", vecs[0], k=3) == []
    assert no_network.blocked == []


def test_batches_larger_than_the_request_size(tmp_path: Path):
    store = ChromaStore.persistent(tmp_path / "db", ChromaConfig(batch_size=7))
    vecs = unit_rows(30, 8, seed=1)
    ids = [f"x{i:02d}" for i in range(30)]
    store.upsert("vecs", ids, vecs)
    assert sorted(store.ids("vecs")) == ids  # ids() pages through 7 at a time
    np.testing.assert_allclose(store.get_embeddings("vecs", ids[::-1]), vecs[::-1], atol=1e-6)
    store.delete("vecs", ids[:20])
    assert store.count("vecs") == 10


def test_wrong_dimension_and_bad_shapes_are_clear_errors(tmp_path: Path):
    store = make_store("chroma", tmp_path)
    store.upsert("vecs", ["a"], unit_rows(1, 8))
    with pytest.raises(IndexFormatError, match="dimension"):
        store.upsert("vecs", ["b"], unit_rows(1, 4))
    with pytest.raises(InputError, match="shape"):
        store.upsert("vecs", ["b", "c"], unit_rows(1, 8))


def test_bad_specs(tmp_path: Path):
    with pytest.raises(InputError, match="unknown store spec"):
        make_store("faiss", tmp_path)
    with pytest.raises(BackendError, match="chroma run --path DIR --host 127.0.0.1 --port 9") as e:
        make_store("chroma+http://127.0.0.1:9", tmp_path)  # nothing listens on port 9
    assert e.value.retryable


def test_persistence_survives_reopen_in_a_new_process(tmp_path: Path):
    vecs = unit_rows(12, 8, seed=3)
    store = make_store("chroma", tmp_path)
    store.upsert("nodes", [f"n{i}" for i in range(12)], vecs, [f"summary {i}" for i in range(12)])
    code = textwrap.dedent(
        f"""
        import json, sys
        from branchwise.retrieval.store import make_store
        s = make_store("chroma", {str(tmp_path)!r})
        v = s.get_embeddings("nodes", ["n3", "n0"])
        print(json.dumps({{"count": s.count("nodes"), "v": v.tolist(), "top": s.query("nodes", v[0], 1)[0][0]}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    import json

    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["count"] == 12 and res["top"] == "n3"
    np.testing.assert_allclose(np.array(res["v"]), vecs[[3, 0]], atol=1e-6)


# -- server mode --------------------------------------------------------------------------------


def test_server_mode_with_namespaces(chroma_server: str, tmp_path: Path, no_network):
    a = make_store(chroma_server, tmp_path / "a", namespace="bw-aaaa")
    b = make_store(chroma_server, tmp_path / "b", namespace="bw-bbbb")
    vecs = unit_rows(10, 8, seed=5)
    a.upsert("chunks", [f"a{i}" for i in range(10)], vecs, [f"doc {i}" for i in range(10)])
    b.upsert("chunks", ["b0"], vecs[:1])
    assert a.count("chunks") == 10 and b.count("chunks") == 1  # namespaces keep indexes apart
    assert a.query("chunks", vecs[4], 1)[0][0] == "a4"
    np.testing.assert_allclose(a.get_embeddings("chunks", ["a2"]), vecs[2:3], atol=1e-6)
    # a fresh client sees the same server-side data
    again = make_store(chroma_server, tmp_path / "a", namespace="bw-aaaa")
    assert sorted(again.ids("chunks")) == sorted(f"a{i}" for i in range(10))
    a.drop("chunks")
    assert again.count("chunks") == 0
    assert no_network.blocked == []
