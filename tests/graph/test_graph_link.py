"""Tree ↔ graph links: entity → leaves, leaf → entities, and jumps between tree branches."""

from __future__ import annotations

import pytest

from branchwise.graph.link import TreeGraphLink
from branchwise.retrieval.tree import Node, Tree


@pytest.fixture()
def film_tree() -> Tree:
    """Films and places in one branch, people in another (as a topical clustering might do)."""
    nodes = [
        Node("n0", 2, None, ["n1", "n2"], "films, places and people"),
        Node("n1", 1, "n0", ["l0", "l3"], "films and places"),
        Node("n2", 1, "n0", ["l1", "l2"], "people"),
        Node("l0", 0, "n1", chunk_id="films#0"),
        Node("l3", 0, "n1", chunk_id="places#0"),
        Node("l1", 0, "n2", chunk_id="people#0"),
        Node("l2", 0, "n2", chunk_id="people#1"),
    ]
    tree = Tree({n.id: n for n in nodes}, root="n0")
    tree.validate({"films#0", "people#0", "people#1", "places#0"})
    return tree


def test_every_entity_knows_its_leaves_and_every_leaf_its_entities(film_graph, film_tree) -> None:
    link = TreeGraphLink(film_graph, film_tree)
    assert link.leaves_of_entity("nolan") == ["l0", "l1"]
    assert link.leaves_of_entity("london") == ["l1", "l3"]
    assert link.entities_of_leaf("l1") == ["british", "london", "nolan"]
    assert link.entities_of_leaf("n1") == []  # internal nodes have no chunk
    for ent in film_graph.entities():
        for leaf in link.leaves_of_entity(ent.id):
            assert ent.id in link.entities_of_leaf(leaf)
    assert link.unlinked_chunks() == []


def test_jump_from_a_leaf_reaches_the_other_branch_and_back(film_graph, film_tree) -> None:
    link = TreeGraphLink(film_graph, film_tree)
    jump = link.jump("l0", hops=1)  # Inception's leaf, in the films branch
    assert jump.entities == ["dicaprio", "inception", "nolan"]
    # 1 hop from {Inception, Nolan, DiCaprio}: British, London (Nolan), Academy Award (DiCaprio)
    assert jump.neighbours == {"british": 1, "london": 1, "oscar": 1}
    # Hand-computed scores: l1 (people#0) has 2 relations (1.0 each) + mentions of British and
    # London (0.5 each) = 3.0; l2 (people#1) has 1 relation + the award mention = 1.5;
    # l3 (places#0) has London's mention = 0.5. Normalised by the max (3.0):
    assert jump.leaves == [("l1", 1.0), ("l2", 0.5), ("l3", pytest.approx(1 / 6))]
    assert jump.paths["l1"] == ["l1", "n2", "n0"]  # resume navigation in the people branch
    assert "l0" not in dict(jump.leaves)


def test_two_hop_neighbourhood_and_unlinked_chunks(film_graph, film_tree) -> None:
    link = TreeGraphLink(film_graph, film_tree)
    assert link.neighbourhood(["british"], hops=2) == {"british": 0, "nolan": 1, "london": 2, "inception": 2}
    film_tree.nodes["l3"].chunk_id = "gone#0"
    film_tree.reindex()
    assert link.unlinked_chunks() == ["places#0"]
