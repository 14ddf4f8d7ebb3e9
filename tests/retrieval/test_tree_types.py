"""Tree/Node types: JSON round trip, invariants, networkx view, stats."""

from __future__ import annotations

import json

import pytest

from branchwise.errors import IndexFormatError
from branchwise.retrieval.tree import TREE_SCHEMA, Node, Tree


def small_tree() -> Tree:
    """root n0 -> (n1 -> l0, l1), (n2 -> l2, l3, l4)."""
    nodes = [
        Node("n0", 2, None, ["n1", "n2"], summary="everything"),
        Node("n1", 1, "n0", ["l0", "l1"], summary="a and b"),
        Node("n2", 1, "n0", ["l2", "l3", "l4"], summary="c, d, e", stale=True),
    ] + [Node(f"l{i}", 0, "n1" if i < 2 else "n2", chunk_id=f"c{i}") for i in range(5)]
    return Tree(nodes={n.id: n for n in nodes}, root="n0", strategy="top_down", max_children=3)


def test_round_trip_json(tmp_path):
    tree = small_tree()
    path = tmp_path / "tree.json"
    tree.save(path)
    raw = json.loads(path.read_text())
    assert raw["schema"] == TREE_SCHEMA
    back = Tree.load(path)
    assert back.to_dict() == tree.to_dict()
    assert back.leaf_for_chunk("c3").id == "l3"
    assert back["n2"].stale is True
    back.validate({f"c{i}" for i in range(5)})


def test_accessors():
    tree = small_tree()
    assert tree.depth == 2
    assert tree.path_to_root("l3") == ["l3", "n2", "n0"]
    assert [n.id for n in tree.leaves_under("n2")] == ["l2", "l3", "l4"]
    assert [n.id for n in tree.children("n0")] == ["n1", "n2"]
    stats = tree.stats()
    assert stats["branching_histogram"] == {2: 2, 3: 1}
    assert stats["nodes_per_level"] == {0: 5, 1: 2, 2: 1}
    assert (stats["leaves"], stats["internal"], stats["stale"]) == (5, 3, 1)


def test_networkx_view():
    g = small_tree().to_networkx()
    assert g.number_of_nodes() == 8 and g.number_of_edges() == 7
    assert set(g.successors("n0")) == {"n1", "n2"}
    assert g.nodes["l4"]["chunk_id"] == "c4"
    assert g.graph["root"] == "n0"
    import networkx as nx

    assert nx.is_arborescence(g)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.nodes["n1"].children.append("l0"), "reachable twice"),
        (lambda t: setattr(t, "max_children", 2), "children > max"),
        (lambda t: setattr(t.nodes["n1"], "level", 3), "inconsistent level"),
        (lambda t: setattr(t.nodes["l1"], "parent", "n2"), "does not point back"),
        (lambda t: t.nodes["n1"].children.clear(), "no children"),
        (lambda t: t.nodes.update(x=Node("x", 1, None, [])), "unreachable"),
    ],
)
def test_validate_rejects(mutate, message):
    tree = small_tree()
    mutate(tree)
    with pytest.raises(IndexFormatError, match=message):
        tree.validate()


def test_validate_checks_chunks():
    tree = small_tree()
    with pytest.raises(IndexFormatError, match="1 missing"):
        tree.validate({f"c{i}" for i in range(6)})


def test_schema_and_corruption_errors(tmp_path):
    d = small_tree().to_dict()
    d["schema"] = "branchwise.tree/0"
    with pytest.raises(IndexFormatError, match="rebuild"):
        Tree.from_dict(d)
    bad = tmp_path / "tree.json"
    bad.write_text("{not json")
    with pytest.raises(IndexFormatError, match="corrupt"):
        Tree.load(bad)
    with pytest.raises(IndexFormatError, match="no tree"):
        Tree.load(tmp_path / "missing.json")
