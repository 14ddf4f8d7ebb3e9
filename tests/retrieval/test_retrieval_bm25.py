"""BM25 with bm25s: scores checked by hand, persistence without pickle, real-corpus ranking."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from branchwise.retrieval.bm25 import BM25Config, BM25Index
from branchwise.types import Chunk

PLAIN = BM25Config(k1=1.5, b=0.75, method="lucene", stopwords="none", stemmer="none", title_in_text=False)


def tiny() -> list[Chunk]:
    texts = ["apple banana apple", "banana cherry", "cherry durian elder fig"]  # lengths 3, 2, 4: avgdl 3
    return [Chunk(id=f"d{i}#0", doc_id=f"d{i}", text=t) for i, t in enumerate(texts)]


def test_scores_match_hand_computed_lucene_bm25():
    """score = Σ idf(t) · tf / (tf + k1 (1 - b + b·dl/avgdl)), idf = ln(1 + (N - df + .5)/(df + .5))."""
    idx = BM25Index.build(tiny(), PLAIN)

    # "apple": df=1, idf=ln(1 + 2.5/1.5)=ln(8/3); d0: tf=2, dl=3 -> 2 / (2 + 1.5) = 4/7
    (hit,) = idx.search("apple", 5)
    assert hit.chunk_id == "d0#0" and hit.source == "bm25"
    assert hit.score == pytest.approx(math.log(8 / 3) * 4 / 7, rel=1e-5)  # 0.560474

    # "banana cherry": both df=2, idf=ln(1.6)
    #   d1: two terms, tf=1, dl=2 -> 1/(1 + 1.5·0.75) = 1/2.125 each
    #   d0: banana, dl=3 -> 1/2.5 ;  d2: cherry, dl=4 -> 1/(1 + 1.5·1.25) = 1/2.875
    hits = idx.search("Banana, CHERRY!", 5)
    assert [h.chunk_id for h in hits] == ["d1#0", "d0#0", "d2#0"]
    idf = math.log(1.6)
    expected = [2 * idf / 2.125, idf / 2.5, idf / 2.875]  # 0.442357, 0.188001, 0.163480
    assert [h.score for h in hits] == pytest.approx(expected, rel=1e-5)


def test_no_match_and_empty_cases():
    idx = BM25Index.build(tiny(), PLAIN)
    assert idx.search("zebra", 5) == []
    assert idx.search("", 5) == []
    assert idx.search("apple", 0) == []
    assert len(idx.search("banana cherry", 2)) == 2
    assert BM25Index.build([], PLAIN).search("apple", 3) == []


def test_stemming_and_stopwords():
    chunks = [Chunk(id="a#0", doc_id="a", text="The runners were running quickly"),
              Chunk(id="b#0", doc_id="b", text="A quiet library of books")]
    idx = BM25Index.build(chunks, BM25Config())
    assert idx.stemmer_name in ("pystemmer", "porter")
    assert [h.chunk_id for h in idx.search("run", 2)] == ["a#0"]  # stemmed to the same term
    assert idx.search("the of a", 2) == []  # only stopwords


def test_save_load_roundtrip_without_pickle(tmp_path: Path):
    idx = BM25Index.build(tiny(), PLAIN)
    idx.save(tmp_path / "bm25")
    files = sorted(p.name for p in (tmp_path / "bm25").iterdir())
    assert all(f.endswith((".npy", ".json")) for f in files), files
    for f in files:  # every array loads with pickling disabled
        if f.endswith(".npy"):
            np.load(tmp_path / "bm25" / f, allow_pickle=False)
    again = BM25Index.load(tmp_path / "bm25")
    assert again.search("banana cherry", 5) == idx.search("banana cherry", 5)
    assert again.config == PLAIN and again.chunk_ids == idx.chunk_ids
    # saving again swaps the folder atomically: no temp or old folders left
    again.save(tmp_path / "bm25")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]


def test_load_missing_is_a_clear_error(tmp_path: Path):
    from branchwise.errors import IndexFormatError

    with pytest.raises(IndexFormatError, match="re-run `branchwise index`"):
        BM25Index.load(tmp_path / "nothing")


def test_ranks_the_matching_abstract_first_on_vaswani(vaswani_jsonl: Path):
    from branchwise.retrieval.chunking import chunk_documents
    from branchwise.retrieval.ingest import load_documents

    idx = BM25Index.build(chunk_documents(load_documents(vaswani_jsonl)))
    assert len(idx.chunk_ids) == 200
    # words of abstract 1 ("compact memories have flexible capacities  a digital data storage
    # system with capacity up to bits and random and or sequential access is described")
    assert idx.search("flexible capacity digital storage with sequential access", 3)[0].chunk_id == "vaswani-1#0"
    # abstract 3: "electronic coordinate transformer ... polar coordinates of a vector ..."
    assert idx.search("transformer of polar coordinates", 3)[0].chunk_id == "vaswani-3#0"
