"""Graph extraction and retrieval with the real embedded LLM on real HotpotQA paragraphs.

Two short gold paragraphs of one bridge question ("Hugo Rodríguez Romero ... plays for a
team in the autonomous community of what?" — Hugo plays for FC Cartagena, which is in
Murcia). The graph is built once per module (two LLM calls, greedy decoding).
"""

from __future__ import annotations

import json

import pytest

from branchwise.graph import (ExtractionConfig, GraphBuildConfig, GraphBuilder, GraphRetrievalConfig,
                              GraphRetriever, KnowledgeGraph)
from branchwise.graph.build import CACHE_FILE, ExtractionCache
from branchwise.graph.extract import GraphExtractor
from branchwise.graph.resolve import normalize_text
from branchwise.types import Chunk

pytestmark = pytest.mark.real_llm

QUESTION_ID = "Hugo Rodríguez Romero"


@pytest.fixture(scope="module")
def hotpot(shared_data):
    with (shared_data / "hotpotqa" / "dev_distractor_200.jsonl").open(encoding="utf-8") as f:
        rec = next(r for r in map(json.loads, f) if r["question"].startswith(QUESTION_ID))
    gold = {t for t, _ in rec["supporting_facts"]}
    chunks = [Chunk(f"{t}#0", t, "".join(s).strip(), title=t) for t, s in rec["context"] if t in gold]
    assert len(chunks) == 2
    return rec["question"], chunks


@pytest.fixture(scope="module")
def built(hotpot, real_llm, real_embedder, tmp_path_factory):
    _, chunks = hotpot
    # grounding filter off: the assertions below measure the model, not our filter
    # (and a 256-token cap keeps the two calls well under a minute on 2 free cores)
    extraction = ExtractionConfig(max_entities=5, max_relations=5, max_output_tokens=256, require_grounded=False)
    cfg = GraphBuildConfig(extraction=extraction, show_progress=False)
    out = tmp_path_factory.mktemp("graph")
    graph, report = GraphBuilder(real_llm, real_embedder, out, config=cfg).build(chunks)
    cache = ExtractionCache(out / CACHE_FILE, GraphExtractor(real_llm, cfg.extraction).fingerprint)
    return graph, report, cache.extractions(), out


def test_real_extraction_names_appear_in_the_text(hotpot, built) -> None:
    _, chunks = hotpot
    graph, report, extractions, _ = built
    assert report.chunks == 2 and report.extracted + report.failed == 2  # nothing dropped silently
    assert report.extracted >= 1 and report.llm_calls >= 2
    text = {c.id: f" {normalize_text(c.title + ' ' + c.text)} " for c in chunks}
    names = [(ex.chunk_id, e.name) for ex in extractions for e in ex.entities]
    ends = [(ex.chunk_id, n) for ex in extractions for r in ex.relations for n in (r.subject, r.object)]
    assert len(names) >= 4 and ends, f"too little extracted: {extractions}"
    grounded = sum(f" {normalize_text(n)} " in text[c] for c, n in names) / len(names)
    grounded_ends = sum(f" {normalize_text(n)} " in text[c] for c, n in ends) / len(ends)
    assert grounded >= 0.6, names
    assert grounded_ends >= 0.5, ends
    assert any("hugo" in normalize_text(n) for _, n in names)  # the paragraph's subject
    assert any("cartagena" in normalize_text(n) for _, n in names)
    assert all(e.prompt_tokens > 0 and e.completion_tokens > 0 for e in extractions)


def test_real_graph_persists_and_retrieves_the_bridge_paragraphs(hotpot, built, real_embedder) -> None:
    question, chunks = hotpot
    graph, _, _, out = built
    graph.validate()
    assert KnowledgeGraph.load(out).stats() == graph.stats()
    retriever = GraphRetriever(graph, real_embedder, config=GraphRetrievalConfig(),
                               chunks={c.id: c for c in chunks})
    res = retriever.search(question, k=2)
    assert res.evidence and res.evidence[0].chunk_id == "Hugo Rodríguez Romero#0"  # named in the question
    assert all(e.source == "graph" and e.chunk_id in {c.id for c in chunks} for e in res.evidence)
    assert res.description.splitlines()[1].startswith("1. Hugo")
