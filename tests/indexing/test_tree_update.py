"""Incremental updates: placement, splits, pruning, and refreshing exactly the touched paths."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.indexing.tree_build import TreeConfig, build_tree, chunk_text
from branchwise.indexing.summarize import ExtractiveSummarizer, SummaryConfig, SummaryRequest
from branchwise.retrieval.tree import Node, Tree
from branchwise.indexing.tree_update import add_chunks, delete_chunks, refresh_stale
from branchwise.types import Chunk, Usage

_DOC = re.compile(r"<DOC>\s*<DOCNO>\s*(.*?)\s*</DOCNO>(.*?)</DOC>", re.DOTALL)


def unit(*parts: tuple[int, float], dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    for i, w in parts:
        v[i] = w
    return v / np.linalg.norm(v)


class RecordingSummarizer:
    """Summarises as 'S(<node>)' and records which nodes it was asked for."""

    name = "recording"

    def __init__(self) -> None:
        self.usage = Usage()
        self.seen: list[str] = []

    def summarize_batch(self, requests: list[SummaryRequest]) -> list[str]:
        self.seen.extend(r.node_id for r in requests)
        return [f"S({r.node_id}) over {len(r.texts)}" for r in requests]


def hand_tree() -> tuple[Tree, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """r -> a (la0..la2 near e0), b (lb0, lb1 near e1); M = 3."""
    leaf_vec = {"ca0": unit((0, 1), (2, 0.2)), "ca1": unit((0, 1), (3, 0.2)), "ca2": unit((0, 1), (4, 0.2)),
                "cb0": unit((1, 1), (5, 0.2)), "cb1": unit((1, 1), (6, 0.2))}
    nodes = [Node("n0", 2, None, ["n1", "n2"], "root"), Node("n1", 1, "n0", ["l0", "l1", "l2"], "a"),
             Node("n2", 1, "n0", ["l3", "l4"], "b")]
    nodes += [Node(f"l{i}", 0, "n1" if i < 3 else "n2", chunk_id=c) for i, c in enumerate(leaf_vec)]
    tree = Tree({n.id: n for n in nodes}, root="n0", max_children=3)
    node_vec = {"n0": unit((0, 1), (1, 1)), "n1": unit((0, 1)), "n2": unit((1, 1))}
    return tree, node_vec, leaf_vec


def test_placement_descends_by_cosine():
    tree, node_vec, leaf_vec = hand_tree()
    res = add_chunks(tree, ["x"], unit((1, 1), (7, 0.3))[None, :], node_vectors=node_vec,
                     chunk_vectors=lambda ids: np.stack([leaf_vec[i] for i in ids]))
    leaf = tree.leaf_for_chunk("x")
    assert leaf.parent == "n2" and res.added == [leaf.id] and leaf.id == "l5"
    assert res.stale == {"n2", "n0"} and res.created == []
    assert tree["n2"].stale and tree["n0"].stale and not tree["n1"].stale


def test_overfull_node_splits_and_root_grows():
    tree, node_vec, leaf_vec = hand_tree()
    def lookup(ids):  # type: ignore[no-untyped-def]
        return np.stack([leaf_vec[i] for i in ids])

    leaf_vec["x0"] = unit((0, 1), (7, 0.3))  # the index knows every added chunk's vector
    res = add_chunks(tree, ["x0"], leaf_vec["x0"][None, :], node_vectors=node_vec, chunk_vectors=lookup)
    assert len(res.created) == 1  # n1 had 4 > 3 children: split in two under the root
    sib = res.created[0]
    assert tree[sib].parent == "n0" and tree["n0"].children == ["n1", sib, "n2"]
    assert res.stale == {"n0", "n1", sib}
    tree.validate({*leaf_vec, "x0"})
    more = [f"x{i}" for i in range(1, 5)]
    vecs = np.stack([unit((0, 1), (7, 0.1 * i)) for i in range(1, 5)])
    leaf_vec.update(zip(more, vecs))
    res2 = add_chunks(tree, more, vecs, node_vectors=node_vec, chunk_vectors=lookup)
    tree.validate({*leaf_vec, "x0", *more})
    assert tree.root != "n0" and tree.root in res2.created and tree.depth == 3
    assert all(n in node_vec for n in res2.created)
    assert max(len(n.children) for n in tree.nodes.values()) <= 3


def test_delete_prunes_collapses_and_hands_over_root():
    tree, node_vec, _ = hand_tree()
    res = delete_chunks(tree, ["cb0"], node_vectors=node_vec)
    assert res.removed == ["l3"] and res.stale == {"n2", "n0"}
    tree.validate({"ca0", "ca1", "ca2", "cb1"})
    # emptying n2 prunes it; the root is left with one internal child, which becomes the root
    res = delete_chunks(tree, ["cb1"], node_vectors=node_vec)
    assert res.removed == ["l4", "n2", "n0"] and tree.root == "n1" and tree["n1"].parent is None
    assert res.stale == set() and "n2" not in node_vec  # n1's subtree did not change
    tree.validate({"ca0", "ca1", "ca2"})
    with pytest.raises(InputError, match="empty tree"):
        delete_chunks(tree, ["ca0", "ca1", "ca2"], node_vectors=node_vec)
    with pytest.raises(InputError, match="not in the tree"):
        delete_chunks(tree, ["nope"], node_vectors=node_vec)


def test_delete_splices_single_child_chain():
    # r -> (m -> (p -> l0, l1), q), extra; removing q's only leaf leaves m with one internal child p
    nodes = [Node("r", 3, None, ["m", "z"]), Node("m", 2, "r", ["p", "q"]), Node("p", 1, "m", ["l0", "l1"]),
             Node("q", 1, "m", ["l2"]), Node("z", 1, "r", ["l3"])]
    nodes += [Node(f"l{i}", 0, {0: "p", 1: "p", 2: "q", 3: "z"}[i], chunk_id=f"c{i}") for i in range(4)]
    tree = Tree({n.id: n for n in nodes}, root="r", max_children=4)
    vec = {k: unit((0, 1)) for k in ("r", "m", "p", "q", "z")}
    res = delete_chunks(tree, ["c2"], node_vectors=vec)
    assert res.removed == ["l2", "q", "m"] and tree["r"].children == ["p", "z"] and tree["p"].parent == "r"
    assert res.stale == {"r"} and tree["r"].level == 2
    tree.validate({"c0", "c1", "c3"})


def test_refresh_only_stale_deepest_first():
    tree, node_vec, leaf_vec = hand_tree()
    add_chunks(tree, ["x"], unit((1, 1), (7, 0.3))[None, :], node_vectors=node_vec,
               chunk_vectors=lambda ids: np.stack([leaf_vec[i] for i in ids]))
    summarizer = RecordingSummarizer()

    class Emb:
        name, dim = "fixed", 8

        def embed(self, texts):
            return np.stack([unit((7, 1))] * len(texts))

    refreshed = refresh_stale(tree, summarizer, Emb(), leaf_text=str, node_vectors=node_vec, progress=False)
    assert refreshed == summarizer.seen == ["n2", "n0"]  # deepest first
    assert tree["n2"].summary == "S(n2) over 3" and tree["n1"].summary == "a"
    assert np.allclose(node_vec["n2"], unit((7, 1))) and not np.allclose(node_vec["n1"], unit((7, 1)))
    assert not any(n.stale for n in tree.nodes.values())
    assert refresh_stale(tree, summarizer, None, leaf_text=str, node_vectors=node_vec, progress=False) == []


def test_add_rejects_known_chunks_and_missing_vectors():
    tree, node_vec, leaf_vec = hand_tree()
    with pytest.raises(InputError, match="already in the tree"):
        add_chunks(tree, ["ca0"], leaf_vec["ca0"][None, :], node_vectors=node_vec, chunk_vectors=lambda ids: None)
    with pytest.raises(InputError, match="node embeddings"):
        add_chunks(tree, ["y"], leaf_vec["ca0"][None, :], node_vectors={}, chunk_vectors=lambda ids: None)


# --- real text, real embedder -----------------------------------------------------------------
def vaswani_chunks(shared: Path, n: int) -> list[Chunk]:
    raw = (shared / "vaswani" / "doc-text.trec").read_text(encoding="utf-8", errors="replace")
    return [Chunk(id=f"v{no}", doc_id=f"v{no}", text=" ".join(t.split())) for no, t in _DOC.findall(raw)[:n]]


@pytest.mark.parametrize("strategy", ["bottom_up", "top_down"])
def test_vaswani_add_delete_refresh_exact_paths(strategy, shared_data, real_embedder):
    chunks = vaswani_chunks(shared_data, 620)
    base, new = chunks[:600], chunks[600:]
    vecs = real_embedder.embed([c.text for c in chunks])
    cfg = SummaryConfig(mode="extractive", summary_tokens=48)
    summarizer = ExtractiveSummarizer.from_corpus([c.text for c in base], cfg)
    built = build_tree(base, vecs[:600], TreeConfig(strategy=strategy, summary=cfg), summarizer=summarizer,
                       embedder=real_embedder, progress=False)
    tree, node_vec = built.tree, built.node_embeddings
    row = {c.id: i for i, c in enumerate(chunks)}
    text = {c.id: chunk_text(c) for c in chunks}
    before = {nid: n.summary for nid, n in tree.nodes.items()}

    # add one at a time; what an add touches: the new leaf's path to the root, plus both
    # halves of every node it made overflow, plus any new root
    expected: set[str] = set()
    for c in new:
        old_parent = {nid: n.parent for nid, n in tree.nodes.items()}
        res = add_chunks(tree, [c.id], vecs[[row[c.id]]], node_vectors=node_vec,
                         chunk_vectors=lambda ids: vecs[[row[i] for i in ids]])
        touched = set(tree.path_to_root(tree[res.added[0]].parent)) | set(res.created)
        for sib in res.created:
            touched |= {old_parent[k] for k in tree[sib].children if old_parent.get(k) is not None}
        assert res.stale == touched
        expected |= touched
    # each new abstract went under a node whose leaves resemble it more than the corpus does
    for c in new[:5]:
        siblings = [row[n.chunk_id] for n in tree.children(tree.leaf_for_chunk(c.id).parent) if n.chunk_id != c.id]
        assert float(np.mean(vecs[siblings] @ vecs[row[c.id]])) > float(np.mean(vecs[:600] @ vecs[row[c.id]]))

    doomed = [base[i].id for i in range(0, 600, 60)]
    doomed_paths = set()
    for cid in doomed:
        doomed_paths |= set(tree.path_to_root(tree.leaf_for_chunk(cid).parent))
    deleted = delete_chunks(tree, doomed, node_vectors=node_vec)
    assert deleted.stale == doomed_paths & set(tree.nodes)
    expected = (expected | doomed_paths) & set(tree.nodes)
    assert {n.id for n in tree.nodes.values() if n.stale} == expected

    refreshed = refresh_stale(tree, summarizer, real_embedder, leaf_text=text.__getitem__, node_vectors=node_vec, progress=False)
    assert set(refreshed) == expected and len(refreshed) == len(expected)
    tree.validate({c.id for c in chunks} - set(doomed))
    assert max(len(n.children) for n in tree.nodes.values()) <= tree.max_children
    unchanged = [nid for nid in tree.nodes if nid not in expected and not tree[nid].is_leaf]
    assert unchanged  # not a rebuild: the untouched summaries stay as they were
    assert all(tree[nid].summary == before[nid] for nid in unchanged)
    assert all(np.isclose(np.linalg.norm(node_vec[nid]), 1.0, atol=1e-4) for nid in refreshed)
