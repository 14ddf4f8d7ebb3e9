"""The bundled all-MiniLM-L6-v2 embedder (real model, offline) and its factory specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.models.base import Embedder
from branchwise.models.cache import CachedEmbedder
from branchwise.models.embedders import DEFAULT_EMBEDDER_NAME, bundled_minilm_path, normalize_rows


def test_default_embedder_identity(real_embedder: Embedder) -> None:
    assert isinstance(real_embedder, Embedder)
    assert real_embedder.name == DEFAULT_EMBEDDER_NAME
    assert real_embedder.dim == 384


def test_vectors_are_normalised_float32(real_embedder: Embedder) -> None:
    v = real_embedder.embed(["Paris is the capital of France.", "x", "Ünïcödé — ok"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    q = real_embedder.embed_query("Paris is the capital of France.")
    assert q.shape == (384,)
    np.testing.assert_allclose(q, v[0], atol=1e-5)
    assert real_embedder.embed([]).shape == (0, 384)


def test_similar_sentences_are_closer(real_embedder: Embedder) -> None:
    a, b, c = real_embedder.embed(
        [
            "The cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "The central bank raised interest rates by half a point.",
        ]
    )
    assert float(a @ b) > 0.5
    assert float(a @ b) > float(a @ c) + 0.4
    assert float(b @ c) < 0.2


def test_batched_equals_single(real_embedder: Embedder) -> None:
    texts = [f"sentence number {i} about topic {i % 3}" for i in range(40)]
    batched = real_embedder.embed(texts)
    single = np.stack([real_embedder.embed_query(t) for t in texts[:5]])
    np.testing.assert_allclose(batched[:5], single, atol=1e-5)


def test_st_spec_loads_a_folder(real_embedder: Embedder) -> None:
    from branchwise.models.factory import make_embedder

    emb = make_embedder(f"st:{bundled_minilm_path()}", memory_cache=False)
    assert emb.name == "model" and emb.dim == 384  # the folder name: user-chosen dirs name the model
    text = "Offline embeddings from a local folder."
    np.testing.assert_allclose(emb.embed_query(text), real_embedder.embed_query(text), atol=1e-5)


def test_bad_specs_are_clear(tmp_path: Path) -> None:
    from branchwise.models.factory import make_embedder

    with pytest.raises(InputError, match="st:/path"):
        make_embedder(f"st:{tmp_path / 'nope'}")
    with pytest.raises(InputError) as ei:
        make_embedder("minilm")
    assert "default" in str(ei.value) and "openai-embed:" in str(ei.value)
    with pytest.raises(InputError, match="#model-name"):
        make_embedder("openai-embed:http://127.0.0.1:9/v1")


def test_real_embedder_cache_roundtrip(real_embedder: Embedder, tmp_path: Path) -> None:
    inner = real_embedder.inner if isinstance(real_embedder, CachedEmbedder) else real_embedder
    cached = CachedEmbedder(inner, tmp_path / "emb.sqlite")
    texts = ["alpha beta", "gamma delta", "alpha beta"]
    first = cached.embed(texts)
    assert (cached.hits, cached.misses) == (1, 2)  # the duplicate is embedded once
    reopened = CachedEmbedder(inner, tmp_path / "emb.sqlite")
    again = reopened.embed(texts)
    assert (reopened.hits, reopened.misses) == (3, 0)
    np.testing.assert_array_equal(first, again)


def test_normalize_rows_handles_zero() -> None:
    out = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32
