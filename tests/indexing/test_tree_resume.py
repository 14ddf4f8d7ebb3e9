"""Resumable builds: a build killed mid-way resumes to the identical tree without redoing work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from branchwise.testing import HashingEmbedder
from branchwise.indexing.tree_build import TreeConfig, build_tree
from branchwise.indexing.checkpoint import CHECKPOINT_SCHEMA, BuildCheckpoint
from branchwise.indexing.summarize import ExtractiveSummarizer, SummaryConfig, SummaryRequest
from branchwise.types import Chunk, Usage

WORDS = ["laser", "optics", "photon", "beam", "crystal", "lattice", "phonon", "magnet", "plasma", "fusion", "neutron", "decay", "circuit", "voltage", "antenna", "signal", "orbit", "comet", "galaxy", "quasar", "enzyme", "protein", "genome", "cell"]


def corpus(n: int = 240) -> list[Chunk]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        topic = WORDS[(i % 6) * 4 : (i % 6) * 4 + 4]
        words = list(rng.choice(topic, 6)) + list(rng.choice(WORDS, 3))
        out.append(Chunk(id=f"c{i}", doc_id=f"d{i}", text=f"Study {i} of {' '.join(words)}. Results are reported."))
    return out


class Killed(RuntimeError):
    pass


class CountingSummarizer:
    """Delegates to an extractive summarizer; records node ids; dies after ``kill_after`` requests."""

    def __init__(self, inner: ExtractiveSummarizer, kill_after: int | None = None):
        self.inner, self.kill_after = inner, kill_after
        self.name = inner.name  # same name: the checkpoint must accept its summaries
        self.usage = Usage()
        self.seen: list[str] = []

    def summarize_batch(self, requests: list[SummaryRequest]) -> list[str]:
        if self.kill_after is not None and len(self.seen) >= self.kill_after:
            raise Killed(f"simulated kill after {len(self.seen)} summaries")
        self.seen.extend(r.node_id for r in requests)
        return self.inner.summarize_batch(requests)


def setup(strategy: str):
    chunks = corpus()
    emb = HashingEmbedder()
    vecs = emb.embed([c.text for c in chunks])
    cfg = TreeConfig(strategy=strategy, max_children=5, summary_batch=4, summary=SummaryConfig(mode="extractive", summary_tokens=32))
    inner = ExtractiveSummarizer.from_corpus([c.text for c in chunks], cfg.summary)
    return chunks, vecs, cfg, inner, emb


@pytest.mark.parametrize("strategy", ["bottom_up", "top_down"])
@pytest.mark.parametrize("kill_after", [8, 60])  # mid level 1; after level 1 is finished
def test_resume_after_kill_gives_identical_tree(tmp_path, strategy, kill_after):
    chunks, vecs, cfg, inner, emb = setup(strategy)
    reference = CountingSummarizer(inner)
    ref = build_tree(chunks, vecs, cfg, summarizer=reference, embedder=emb, progress=False)
    assert len(reference.seen) > kill_after  # the kill really happens mid-build

    ckpt_dir = tmp_path / "tree.build"
    first = CountingSummarizer(inner, kill_after=kill_after)
    with pytest.raises(Killed):
        build_tree(chunks, vecs, cfg, summarizer=first, embedder=emb, checkpoint=BuildCheckpoint(ckpt_dir), progress=False)
    assert len(first.seen) == kill_after  # killed at a batch boundary: all of them were saved

    second = CountingSummarizer(inner)
    ckpt = BuildCheckpoint(ckpt_dir)
    resumed = build_tree(chunks, vecs, cfg, summarizer=second, embedder=emb, checkpoint=ckpt, progress=False)
    assert ckpt.resumed
    assert resumed.tree.to_dict() == ref.tree.to_dict()
    assert resumed.node_embeddings.keys() == ref.node_embeddings.keys()
    assert all(np.array_equal(resumed.node_embeddings[k], v) for k, v in ref.node_embeddings.items())
    assert not set(first.seen) & set(second.seen)  # no finished node summarised twice
    assert sorted(first.seen + second.seen) == sorted(reference.seen)

    # a third run redoes nothing at all
    third = CountingSummarizer(inner)
    again = build_tree(chunks, vecs, cfg, summarizer=third, embedder=emb, checkpoint=BuildCheckpoint(ckpt_dir), progress=False)
    assert third.seen == [] and again.tree.to_dict() == ref.tree.to_dict()
    ckpt.discard()
    assert not ckpt_dir.exists()


def test_checkpoint_files_are_plain_data(tmp_path):
    chunks, vecs, cfg, inner, emb = setup("bottom_up")
    build_tree(chunks, vecs, cfg, summarizer=inner, embedder=emb, checkpoint=BuildCheckpoint(tmp_path), progress=False)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["schema"] == CHECKPOINT_SCHEMA and len(meta["fingerprint"]) == 64
    level1 = json.loads((tmp_path / "level-1.json").read_text())
    assert sorted(c for g in level1["groups"] for c in g) == sorted(f"l{i}" for i in range(len(chunks)))
    with np.load(tmp_path / "vectors-1.npz", allow_pickle=False) as data:  # no pickle needed
        assert data["vectors"].shape == (len(level1["groups"]), emb.dim) and data["ids"].dtype.kind == "U"
    lines = (tmp_path / "summaries.jsonl").read_text().splitlines()
    assert all({"key", "node", "summary"} <= set(json.loads(line)) for line in lines)


def test_torn_record_and_changed_inputs(tmp_path):
    chunks, vecs, cfg, inner, emb = setup("top_down")
    build_tree(chunks, vecs, cfg, summarizer=inner, embedder=emb, checkpoint=BuildCheckpoint(tmp_path), progress=False)
    with (tmp_path / "summaries.jsonl").open("a") as f:
        f.write('{"key": "abc", "summ')  # a kill in the middle of a write
    counter = CountingSummarizer(inner)
    ckpt = BuildCheckpoint(tmp_path)
    build_tree(chunks, vecs, cfg, summarizer=counter, embedder=emb, checkpoint=ckpt, progress=False)
    assert ckpt.resumed and counter.seen == []
    # another seed changes the clustering: the stale checkpoint is discarded, not reused
    other = CountingSummarizer(inner)
    ckpt2 = BuildCheckpoint(tmp_path)
    reseeded = TreeConfig(strategy="top_down", max_children=5, seed=1, summary=cfg.summary)
    result = build_tree(chunks, vecs, reseeded, summarizer=other, embedder=emb, checkpoint=ckpt2, progress=False)
    assert not ckpt2.resumed and len(other.seen) == result.tree.stats()["internal"]
