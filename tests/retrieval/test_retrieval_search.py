"""Dense, BM25 and hybrid (RRF) retrieval: fusion by hand, and ranking on a real corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwise.errors import InputError
from branchwise.indexing.chunk_stage import IndexBuildConfig, build_chunk_index
from branchwise.retrieval.search import HybridConfig, HybridRetriever, Retriever, reciprocal_rank_fusion
from branchwise.types import ScoredChunk


def ranked(*ids: str) -> list[ScoredChunk]:
    return [ScoredChunk(i, 1.0 / (n + 1), "x") for n, i in enumerate(ids)]


def test_rrf_matches_hand_computed_scores():
    # x: rank 1 in A -> 1/61; y: rank 2 in A and 1 in B -> 1/62 + 1/61
    # z: rank 3 in A -> 1/63; w: rank 2 in B -> 1/62
    fused = reciprocal_rank_fusion([ranked("x", "y", "z"), ranked("y", "w")], rrf_k=60)
    assert [f.chunk_id for f in fused] == ["y", "x", "w", "z"]
    assert [f.score for f in fused] == pytest.approx([1 / 62 + 1 / 61, 1 / 61, 1 / 62, 1 / 63])
    assert {f.source for f in fused} == {"hybrid"}


def test_rrf_ties_break_by_best_rank_then_id():
    # a: ranks 1 and 3 -> 1/61 + 1/63 ; b: ranks 2 and 2 -> 2/62 (smaller: 1/61+1/63 > 2/62)
    fused = reciprocal_rank_fusion([ranked("a", "b", "c"), ranked("c", "b", "a")], rrf_k=60)
    assert [f.chunk_id for f in fused] == ["a", "c", "b"]  # a and c tie exactly; a sorts first
    assert fused[0].score == fused[1].score


class FixedRetriever:
    def __init__(self, hits: list[ScoredChunk]):
        self.hits = hits
        self.asked: list[int] = []

    def retrieve(self, query: str, k: int) -> list[ScoredChunk]:
        self.asked.append(k)
        return self.hits[:k]


def test_hybrid_asks_each_retriever_for_depth_candidates_and_cuts_to_k():
    a, b = FixedRetriever(ranked("x", "y", "z")), FixedRetriever(ranked("y", "w"))
    assert isinstance(a, Retriever)
    hybrid = HybridRetriever([a, b], HybridConfig(rrf_k=60, depth=20))
    out = hybrid.retrieve("q", 2)
    assert [o.chunk_id for o in out] == ["y", "x"]
    assert a.asked == [20] and b.asked == [20]
    assert hybrid.retrieve("q", 0) == []
    with pytest.raises(InputError):
        HybridRetriever([])


@pytest.fixture(scope="module")
def vaswani_index(vaswani_jsonl: Path, real_embedder, tmp_path_factory):
    """200 Vaswani abstracts indexed with the real MiniLM embedder and real Chroma."""
    out = tmp_path_factory.mktemp("vaswani-index")
    config = IndexBuildConfig(embedder_spec="default")
    return build_chunk_index(vaswani_jsonl, out, real_embedder, config, progress=False)


# (query, the abstract it was written from)
QUERIES = [
    ("flexible capacity digital storage with sequential access", "vaswani-1#0"),
    ("an electronic calculating unit converting polar coordinates of a vector", "vaswani-3#0"),
]


@pytest.mark.parametrize("query,expected", QUERIES)
def test_bm25_and_hybrid_rank_the_matching_abstract_first(vaswani_index, query, expected):
    assert vaswani_index.search_bm25(query, 5)[0].chunk_id == expected
    hybrid = vaswani_index.search_hybrid(query, 5)
    assert hybrid[0].chunk_id == expected and hybrid[0].source == "hybrid"
    dense = vaswani_index.search_dense(query, 5)
    assert expected in [d.chunk_id for d in dense[:3]]
    assert all(-1.0 <= d.score <= 1.0 for d in dense)


def test_dense_similarity_is_the_cosine_of_real_embeddings(vaswani_index, real_embedder):
    import numpy as np

    query = "measurement of dielectric constants with microwaves"
    hits = vaswani_index.search_dense(query, 3)
    vecs = vaswani_index.chunk_embeddings([h.chunk_id for h in hits])
    cos = vecs @ real_embedder.embed_query(query)
    np.testing.assert_allclose([h.score for h in hits], cos, atol=1e-4)
