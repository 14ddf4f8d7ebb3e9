"""Graph build: resolution across chunks, resumable cache, failures, incremental add/delete, store sync."""

from __future__ import annotations

import json

from branchwise.graph.extract import GraphExtractor
from branchwise.graph.build import FAILURES_FILE, GraphBuildConfig, GraphBuilder, load_failures
from branchwise.graph.resolve import ResolutionConfig
from branchwise.graph.types import KnowledgeGraph
from branchwise.retrieval.store import ChromaStore
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.types import Chunk

from graph_corpus import FILM_CHUNKS, FILM_EXTRACTIONS, scripted_extractor

QUIET = GraphBuildConfig(show_progress=False)


def _builder(tmp_path, table=FILM_EXTRACTIONS, store=None, config=QUIET):
    llm = ScriptedLLM(replies=scripted_extractor(table))
    return llm, GraphBuilder(llm, HashingEmbedder(), tmp_path / "graph", store=store, config=config)


def test_build_resolves_entities_across_chunks(tmp_path) -> None:
    _, builder = _builder(tmp_path)
    graph, report = builder.build(FILM_CHUNKS)
    names = {e.name: e for e in graph.entities()}
    # "Christopher Nolan" (films#0) and "Nolan, Christopher" (people#0) are one entity
    nolan = next(e for e in graph.entities() if "Nolan, Christopher" in e.aliases)
    assert nolan.aliases == ["Christopher Nolan", "Nolan, Christopher"]
    assert nolan.chunk_ids == ["films#0", "people#0"]
    assert set(nolan.descriptions) == {"director of Inception", "British film director"}
    assert names["London"].chunk_ids == ["people#0", "places#0"]
    assert names["Leonardo DiCaprio"].chunk_ids == ["films#0", "people#1"]
    assert len(graph) == 7 and graph.n_relations == 6
    assert report.extracted == 4 and report.failed == 0 and report.llm_calls == 4
    assert report.merges["exact"] == 3 and report.merges["new"] == 7
    graph.validate()
    assert KnowledgeGraph.load(tmp_path / "graph").stats() == graph.stats()


def test_build_is_resumable_from_the_extraction_cache(tmp_path) -> None:
    llm, builder = _builder(tmp_path)
    builder.build(FILM_CHUNKS[:2])  # "interrupted" after two chunks
    assert len(llm.calls) == 2
    g2, rep = builder.build(FILM_CHUNKS)
    assert len(llm.calls) == 4 and rep.cached == 2 and rep.extracted == 2
    llm2, builder2 = _builder(tmp_path)
    g3, rep3 = builder2.build(FILM_CHUNKS)
    assert llm2.calls == [] and rep3.cached == 4  # nothing re-extracted
    assert {e.id: e.to_dict() for e in g3.entities()} == {e.id: e.to_dict() for e in g2.entities()}
    edited = [Chunk(c.id, c.doc_id, c.text + " Edited.", title=c.title) for c in FILM_CHUNKS[:1]]
    builder2.build(edited + FILM_CHUNKS[1:])
    assert len(llm2.calls) == 1  # only the edited chunk


def test_torn_cache_line_is_ignored(tmp_path) -> None:
    _, builder = _builder(tmp_path)
    builder.build(FILM_CHUNKS[:2])
    with (tmp_path / "graph" / "extractions.jsonl").open("a") as f:
        fingerprint = GraphExtractor(ScriptedLLM()).fingerprint
        f.write('{"fingerprint": "' + fingerprint + '", "extraction": {"chunk_id": "places#0", "ent')
    llm, builder = _builder(tmp_path)
    _, rep = builder.build(FILM_CHUNKS)
    assert rep.cached == 2 and len(llm.calls) == 2


def test_failed_chunks_are_reported_persisted_and_retried(tmp_path) -> None:
    table = dict(FILM_EXTRACTIONS, London="{{ garbage")
    _, builder = _builder(tmp_path, table)
    graph, rep = builder.build(FILM_CHUNKS)
    assert rep.failed == 1 and rep.failed_chunk_ids == ["places#0"] and rep.llm_calls == 3 + 2
    assert "places#0" not in graph.chunk_ids()
    fails = load_failures(tmp_path / "graph")
    assert [f.chunk_id for f in fails] == ["places#0"] and "garbage" in fails[0].raw
    assert KnowledgeGraph.load(tmp_path / "graph").info["failed_chunks"] == 1
    # the model behaves now: retry_failed extracts exactly the failed chunk
    llm, builder = _builder(tmp_path)
    rep2 = builder.retry_failed(graph, {c.id: c for c in FILM_CHUNKS})
    assert rep2.extracted == 1 and len(llm.calls) == 1
    assert "places#0" in graph.chunk_ids() and load_failures(tmp_path / "graph") == []
    assert (tmp_path / "graph" / FAILURES_FILE).read_text() == ""


def test_incremental_add_and_delete_keep_graph_and_store_consistent(tmp_path) -> None:
    store = ChromaStore.persistent(tmp_path / "chroma")
    _, builder = _builder(tmp_path, store=store)
    graph, _ = builder.build(FILM_CHUNKS[:2])
    assert sorted(store.ids("entities")) == sorted(e.id for e in graph.entities())
    rep = builder.add(graph, FILM_CHUNKS[2:])
    assert rep.extracted == 2
    dicaprio = next(e for e in graph.entities() if e.name == "Leonardo DiCaprio")
    assert dicaprio.chunk_ids == ["films#0", "people#1"]  # merged into the existing entity
    assert sorted(store.ids("entities")) == sorted(e.id for e in graph.entities())
    # delete a whole document: its relations and every entity left unsupported go
    rem = builder.delete_documents(graph, ["people"])
    graph.validate()
    assert {e.name for e in graph.entities()} == {"Inception", "Christopher Nolan", "Leonardo DiCaprio",
                                                  "London", "England"}
    assert "Academy Award" not in {e.name for e in graph.entities()} and len(rem.removed_entities) == 2
    assert all(r.doc_id != "people" for r in graph.relations())
    assert sorted(store.ids("entities")) == sorted(e.id for e in graph.entities())
    on_disk = KnowledgeGraph.load(tmp_path / "graph")
    assert on_disk.stats() == graph.stats()
    cached = [json.loads(line)["extraction"]["chunk_id"]
              for line in (tmp_path / "graph" / "extractions.jsonl").read_text().splitlines()]
    assert sorted(cached) == ["films#0", "places#0"]
    # store profile vector reflects the remaining mentions only
    vec = store.get_embeddings("entities", [dicaprio.id])[0]
    assert abs(float(vec @ HashingEmbedder().embed([graph.entity(dicaprio.id).profile()])[0]) - 1.0) < 1e-5


def test_readding_a_changed_chunk_replaces_its_facts(tmp_path) -> None:
    _, builder = _builder(tmp_path)
    graph, _ = builder.build(FILM_CHUNKS)
    table = dict(FILM_EXTRACTIONS)
    table["London"] = {"entities": [{"name": "London", "type": "location", "description": "city on the Thames"}],
                       "relations": []}
    _, builder2 = _builder(tmp_path, table)
    changed = Chunk("places#0", "places", "London is a city on the Thames.", title="London")
    builder2.add(graph, [changed])
    graph.validate()
    assert "England" not in {e.name for e in graph.entities()}
    london = next(e for e in graph.entities() if e.name == "London")
    assert "capital city of England" not in london.descriptions and "city on the Thames" in london.descriptions


def test_exact_only_resolution_keeps_distinct_keys_apart(tmp_path) -> None:
    table = {"Inception": {"entities": [{"name": "Christopher Nolan", "type": "person", "description": ""}],
                           "relations": []},
             "Christopher Nolan": {"entities": [{"name": "Chris Nolan", "type": "person", "description": ""}],
                                   "relations": []}}
    cfg = GraphBuildConfig(resolution=ResolutionConfig(use_embeddings=False), show_progress=False)
    chunks = [Chunk("a#0", "a", "Christopher Nolan.", title="Inception"),
              Chunk("b#0", "b", "Chris Nolan.", title="Christopher Nolan")]
    _, builder = _builder(tmp_path, table, config=cfg)
    graph, rep = builder.build(chunks)
    assert len(graph) == 2 and rep.merges["new"] == 2


def test_delete_documents_also_clears_failures_and_empty_extractions(tmp_path) -> None:
    table = dict(FILM_EXTRACTIONS, London="{{ garbage", Inception={"entities": [], "relations": []})
    _, builder = _builder(tmp_path, table)
    graph, rep = builder.build(FILM_CHUNKS)
    assert rep.failed == 1 and "films#0" not in graph.chunk_ids()  # failed / nothing extracted
    builder.delete_documents(graph, ["places", "films"])
    assert load_failures(tmp_path / "graph") == []
    cached = [json.loads(line)["extraction"]["chunk_id"]
              for line in (tmp_path / "graph" / "extractions.jsonl").read_text().splitlines()]
    assert sorted(cached) == ["people#0", "people#1"]
    graph.validate()
