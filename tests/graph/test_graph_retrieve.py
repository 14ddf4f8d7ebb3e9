"""GRAG retrieval on a hand-built graph with a known answer path; pruning and description."""

from __future__ import annotations

import re

import pytest

from branchwise.graph.retrieve import EgoGraph, GraphRetrievalConfig, GraphRetriever, describe_subgraph
from branchwise.graph.types import KnowledgeGraph
from branchwise.retrieval.store import ChromaStore
from branchwise.testing import HashingEmbedder
from branchwise.types import Evidence

from graph_corpus import FILM_CHUNKS

QUESTION = "What is the nationality of the director of Inception?"


def _rid(kg: KnowledgeGraph, predicate: str) -> str:
    return next(r.id for r in kg.relations() if r.predicate == predicate)


def test_known_answer_path_survives_pruning_real_embedder(film_graph, real_embedder) -> None:
    r = GraphRetriever(film_graph, real_embedder, chunks={c.id: c for c in FILM_CHUNKS})
    res = r.search(QUESTION, k=2)
    sub = res.subgraph
    assert sub.egos[0].seed == "inception"  # named in the question
    assert {_rid(film_graph, "directed by"), _rid(film_graph, "has nationality")} <= sub.edges.keys()
    assert _rid(film_graph, "won") not in sub.edges and _rid(film_graph, "capital of") not in sub.edges
    assert "oscar" not in sub.nodes and "england" not in sub.nodes
    assert [e.chunk_id for e in res.evidence] == ["films#0", "people#0"]  # the two hops of the answer
    for ev in res.evidence:
        assert isinstance(ev, Evidence) and ev.source == "graph" and 0.0 < ev.score <= 1.0
        assert ev.text == next(c.text for c in FILM_CHUNKS if c.id == ev.chunk_id) and ev.query == QUESTION
    assert "Christopher Nolan's nationality is British" in res.evidence[1].facts
    # hierarchical description: seed, then hop-1 relation, then hop-2 relation indented deeper
    lines = res.description.splitlines()
    seed_i = next(i for i, ln in enumerate(lines) if re.match(r"1\. Inception \(work\)", ln))
    dir_i = next(i for i, ln in enumerate(lines) if "→ directed by → Christopher Nolan" in ln)
    nat_i = next(i for i, ln in enumerate(lines) if "→ has nationality → British" in ln)
    indent = lambda ln: len(ln) - len(ln.lstrip())  # noqa: E731
    assert seed_i < dir_i < nat_i and indent(lines[nat_i]) > indent(lines[dir_i]) > 0
    assert lines[dir_i].endswith("[films#0]") and lines[nat_i].endswith("[people#0]")
    assert "Academy Award" not in res.description
    # every kept edge is printed exactly once (lossless, no repeats)
    assert sum(ln.count("[") for ln in lines[1:]) == len(sub.edges)


def test_store_backed_lookup_matches_in_memory(film_graph, real_embedder, tmp_path) -> None:
    from branchwise.graph.build import sync_entity_vectors

    store = ChromaStore.persistent(tmp_path / "chroma")
    sync_entity_vectors(film_graph, real_embedder, store, [e.id for e in film_graph.entities()])
    with_store = GraphRetriever(film_graph, real_embedder, store).search(QUESTION, 3)
    in_memory = GraphRetriever(film_graph, real_embedder).search(QUESTION, 3)
    assert [(e.chunk_id, round(e.score, 4)) for e in with_store.evidence] == \
        [(e.chunk_id, round(e.score, 4)) for e in in_memory.evidence]
    assert with_store.description == in_memory.description


def test_soft_pruning_scales_and_keeps_paths(film_graph) -> None:
    """Hand-computed: α = r / r_best per kind; below 0.5 dropped unless on a kept path."""
    r = GraphRetriever(film_graph, HashingEmbedder(), config=GraphRetrievalConfig(prune_ratio=0.5))
    ego = EgoGraph("inception", 1.0, depth={"inception": 0, "nolan": 1, "dicaprio": 1, "british": 2, "oscar": 2},
                   parent={"nolan": ("inception", _rid(film_graph, "directed by")),
                           "dicaprio": ("inception", _rid(film_graph, "stars")),
                           "british": ("nolan", _rid(film_graph, "has nationality")),
                           "oscar": ("dicaprio", _rid(film_graph, "won"))})
    ego.edges = {_rid(film_graph, p) for p in ("directed by", "stars", "has nationality", "won")}
    node_rel = {"inception": 0.4, "nolan": 0.2, "dicaprio": 0.1, "british": 0.8, "oscar": 0.3}
    edge_rel = {_rid(film_graph, "directed by"): 0.1, _rid(film_graph, "stars"): 0.05,
                _rid(film_graph, "has nationality"): 0.5, _rid(film_graph, "won"): 0.2}
    sub = r.prune([ego], node_rel, edge_rel)
    # British (0.8 = best) kept -> its path Nolan/directed-by kept with their own small α
    assert sub.nodes == pytest.approx({"inception": 0.5, "british": 1.0, "nolan": 0.25})
    assert sub.edges == pytest.approx({_rid(film_graph, "has nationality"): 1.0, _rid(film_graph, "directed by"): 0.2})
    everything = GraphRetriever(film_graph, HashingEmbedder(), config=GraphRetrievalConfig(prune_ratio=0.0))
    assert len(everything.prune([ego], node_rel, edge_rel).edges) == 4


def test_hops_and_size_caps(film_graph) -> None:
    one = GraphRetriever(film_graph, HashingEmbedder(), config=GraphRetrievalConfig(hops=1, prune_ratio=0.0))
    q = one.embedder.embed_query("Inception")
    ego, _, _ = one.ego_graph("inception", 1.0, q)
    assert ego.depth == {"inception": 0, "nolan": 1, "dicaprio": 1}
    capped = GraphRetriever(film_graph, HashingEmbedder(), config=GraphRetrievalConfig(max_ego_nodes=2))
    ego2, _, _ = capped.ego_graph("inception", 1.0, q)
    assert len(ego2.depth) == 2
    two = GraphRetriever(film_graph, HashingEmbedder(), config=GraphRetrievalConfig(hops=2))
    ego3, _, _ = two.ego_graph("nolan", 1.0, two.embedder.embed_query("Nolan"))
    assert max(ego3.depth.values()) == 2 and "oscar" not in ego3.depth  # 3 hops away


def test_retrieve_without_chunks_uses_graph_facts_and_describe_budget(film_graph) -> None:
    r = GraphRetriever(film_graph, HashingEmbedder(), config=GraphRetrievalConfig(max_description_lines=3))
    ev = r.retrieve("Inception director nationality", k=5)
    assert ev and all(e.source == "graph" for e in ev)
    assert [e.score for e in ev] == sorted((e.score for e in ev), reverse=True)
    assert ev[0].text == "\n".join(ev[0].facts) and ev[0].facts
    text = r.describe("Inception director nationality")
    assert len(text.splitlines()) == 4 and "more lines omitted" in text.splitlines()[-1]


def test_no_seed_gives_no_evidence(film_graph) -> None:
    r = GraphRetriever(film_graph, HashingEmbedder(), config=GraphRetrievalConfig(min_seed_score=0.99))
    assert r.retrieve("quantum chromodynamics lattice", k=3) == []


def test_describe_subgraph_lists_cross_links_once(film_graph) -> None:
    ego = EgoGraph("nolan", 1.0, depth={"nolan": 0, "london": 1, "england": 2},
                   parent={"london": ("nolan", _rid(film_graph, "born in")),
                           "england": ("london", _rid(film_graph, "capital of"))},
                   edges={_rid(film_graph, "born in"), _rid(film_graph, "capital of")})
    from branchwise.graph.retrieve import PrunedSubgraph

    extra = _rid(film_graph, "won")  # kept but outside the tree: listed under "Other links"
    sub = PrunedSubgraph([ego], {"nolan": 1.0, "london": 0.5, "england": 0.5, "dicaprio": 0.1, "oscar": 0.1},
                         {_rid(film_graph, "born in"): 1.0, _rid(film_graph, "capital of"): 0.6, extra: 0.5})
    text = describe_subgraph(film_graph, sub)
    assert text.splitlines()[1:] == [
        "1. Christopher Nolan (person): director of Inception",
        "  → born in → London (location): birthplace of Nolan [people#0]",
        "    → capital of → England (location): country [places#0]",
        "Other links:",
        "  Leonardo DiCaprio → won → Academy Award [people#1]",
    ]
