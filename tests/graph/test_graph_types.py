"""KnowledgeGraph invariants, deletes without orphans, and the versioned JSONL round trip."""

from __future__ import annotations

import json

import pytest

from branchwise.errors import IndexFormatError
from branchwise.graph.types import GRAPH_SCHEMA, Entity, KnowledgeGraph, Mention, Relation


def test_entity_fields_are_derived_from_mentions() -> None:
    e = Entity("e_obama")
    e.mentions = [Mention("c1", "d", "Barack Obama", "person", "44th president"),
                  Mention("c2", "d", "Obama", "other", "president"),
                  Mention("c3", "d", "Barack Obama", "person", "44th president")]
    e.refresh()
    assert e.name == "Barack Obama"  # most frequent surface name
    assert e.type == "person"  # "other" never wins over a real type
    assert e.aliases == ["Barack Obama", "Obama"]
    assert e.chunk_ids == ["c1", "c2", "c3"]
    assert e.descriptions == ["44th president", "president"]
    assert e.profile() == "Barack Obama (person): 44th president; president"


def test_round_trip_preserves_everything(film_graph: KnowledgeGraph, tmp_path) -> None:
    film_graph.info["note"] = "round trip"
    film_graph.save(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["schema"] == GRAPH_SCHEMA
    assert meta["counts"] == {"entities": 7, "relations": 6}
    back = KnowledgeGraph.load(tmp_path)
    assert {e.id: e.to_dict() for e in back.entities()} == {e.id: e.to_dict() for e in film_graph.entities()}
    assert {r.id: r for r in back.relations()} == {r.id: r for r in film_graph.relations()}
    assert back.info["note"] == "round trip"
    assert back.entities_for_chunk("people#0") == ["british", "london", "nolan"]
    assert sorted(back.g.successors("inception")) == ["dicaprio", "nolan"]
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pickle"))


def test_delete_leaves_no_orphan_entity_or_edge(film_graph: KnowledgeGraph) -> None:
    rep = film_graph.remove_chunks(["people#1", "films#0"])
    # Inception, DiCaprio and the Academy Award were only supported by the deleted chunks
    assert set(rep.removed_entities) == {"inception", "dicaprio", "oscar"}
    assert rep.changed_entities == ("nolan",)
    assert rep.removed_relations == 3
    film_graph.validate()
    assert set(film_graph.g.nodes) == {"nolan", "british", "london", "england"}
    for ent in film_graph.entities():
        assert ent.mentions and not {"people#1", "films#0"} & set(ent.chunk_ids)
    for u, v, key in film_graph.g.edges(keys=True):
        rel = film_graph.relation(key)
        assert rel.chunk_id not in {"people#1", "films#0"} and u in film_graph and v in film_graph
    assert film_graph.n_relations == 3
    assert film_graph.entity("nolan").descriptions == ["British film director"]
    assert film_graph.chunk_ids() == {"people#0", "places#0"}


def test_delete_everything_empties_the_graph(film_graph: KnowledgeGraph) -> None:
    film_graph.remove_chunks(["films#0", "people#0", "people#1", "places#0"])
    assert len(film_graph) == 0 and film_graph.n_relations == 0 and film_graph.chunk_ids() == set()
    film_graph.validate()


def test_relation_needs_existing_entities() -> None:
    kg = KnowledgeGraph()
    kg.add_mention("a", Mention("c", "d", "A"))
    with pytest.raises(IndexFormatError, match="unknown entity"):
        kg.add_relation(Relation("r", "a", "likes", "b", "c"))


def test_validate_detects_orphans(film_graph: KnowledgeGraph) -> None:
    film_graph.entity("england").mentions.clear()
    with pytest.raises(IndexFormatError, match="no supporting chunk"):
        film_graph.validate()


def test_load_rejects_other_schema_and_torn_saves(film_graph: KnowledgeGraph, tmp_path) -> None:
    film_graph.save(tmp_path)
    lines = (tmp_path / "relations.jsonl").read_text().splitlines()
    (tmp_path / "relations.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(IndexFormatError, match="disagree with meta.json"):
        KnowledgeGraph.load(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["schema"] = "branchwise.graph/0"
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match="schema") as ei:
        KnowledgeGraph.load(tmp_path)
    assert "rebuild" in str(ei.value)
    with pytest.raises(IndexFormatError, match="no graph"):
        KnowledgeGraph.load(tmp_path / "missing")
