"""``sync_leaves``: make a tree's leaves match a chunk list (what CLI updates and their
repair of an interrupted update rely on)."""

from __future__ import annotations

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.retrieval.tree import Node, Tree
from branchwise.indexing.tree_update import sync_leaves


def unit(*parts: tuple[int, float], dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    for i, w in parts:
        v[i] = w
    return v / np.linalg.norm(v)


def hand_tree() -> tuple[Tree, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """n0 -> n1 (ca0..ca2 near e0), n2 (cb0, cb1 near e1); M = 3."""
    vec = {"ca0": unit((0, 1), (2, 0.2)), "ca1": unit((0, 1), (3, 0.2)), "ca2": unit((0, 1), (4, 0.2)),
           "cb0": unit((1, 1), (5, 0.2)), "cb1": unit((1, 1), (6, 0.2))}
    nodes = [Node("n0", 2, None, ["n1", "n2"], "root"), Node("n1", 1, "n0", ["l0", "l1", "l2"], "a"),
             Node("n2", 1, "n0", ["l3", "l4"], "b")]
    nodes += [Node(f"l{i}", 0, "n1" if i < 3 else "n2", chunk_id=c) for i, c in enumerate(vec)]
    node_vec = {"n0": unit((0, 1), (1, 1)), "n1": unit((0, 1)), "n2": unit((1, 1))}
    return Tree({n.id: n for n in nodes}, root="n0", max_children=3), node_vec, vec


def test_sync_removes_vanished_places_new_and_re_places_replaced():
    tree, node_vec, vec = hand_tree()
    vec["x"] = unit((1, 1), (7, 0.3))
    vec["ca1"] = unit((1, 1), (2, 0.1))  # its text changed: it now belongs with the b's
    lookup = lambda ids: np.stack([vec[i] for i in ids])  # noqa: E731
    res = sync_leaves(tree, ["ca0", "ca1", "ca2", "cb1", "x"], replace=["ca1"], node_vectors=node_vec,
                      chunk_vectors=lookup)
    tree.validate({"ca0", "ca1", "ca2", "cb1", "x"})
    assert tree.leaf_for_chunk("cb0") is None and tree.leaf_for_chunk("x").parent == "n2"
    assert tree.leaf_for_chunk("ca1").parent == "n2" and tree.leaf_for_chunk("ca1").id not in {"l1"}
    assert len(res.added) == 2 and "l1" in res.removed and "l3" in res.removed
    assert res.stale == {n.id for n in tree.nodes.values() if n.stale} and {"n0", "n1", "n2"} <= res.stale
    assert max(len(n.children) for n in tree.nodes.values()) <= 3


def test_sync_of_a_matching_tree_changes_nothing():
    tree, node_vec, vec = hand_tree()
    res = sync_leaves(tree, list(vec), node_vectors=node_vec, chunk_vectors=lambda ids: None)
    assert (res.added, res.removed, res.created, res.stale) == ([], [], [], set())
    assert not any(n.stale for n in tree.nodes.values())


def test_sync_refuses_to_empty_the_tree():
    tree, node_vec, _ = hand_tree()
    with pytest.raises(InputError, match="empty tree"):
        sync_leaves(tree, [], node_vectors=node_vec, chunk_vectors=lambda ids: None)
