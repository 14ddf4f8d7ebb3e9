"""The graph inside a real index directory (Index + persistent Chroma), end to end."""

from __future__ import annotations

from branchwise.graph import GraphBuildConfig, GraphBuilder, GraphRetriever, KnowledgeGraph
from branchwise.retrieval.index import Index
from branchwise.testing import HashingEmbedder, ScriptedLLM

from graph_corpus import FILM_CHUNKS, FILM_EXTRACTIONS, scripted_extractor


def test_build_in_index_then_reopen_and_retrieve(tmp_path) -> None:
    emb = HashingEmbedder()
    idx = Index.create(tmp_path / "idx", emb)
    idx.add_chunks(FILM_CHUNKS)
    llm = ScriptedLLM(replies=scripted_extractor(FILM_EXTRACTIONS))
    graph, report = GraphBuilder.for_index(idx, llm, GraphBuildConfig(show_progress=False)).build(list(idx.chunks))
    assert report.extracted == 4 and (idx.graph_dir / "meta.json").exists()
    assert sorted(idx.store.ids("entities")) == sorted(e.id for e in graph.entities())

    reopened = Index.open(tmp_path / "idx", embedder=emb)
    retriever = GraphRetriever.from_index(reopened)
    assert retriever.graph.stats() == KnowledgeGraph.load(idx.graph_dir).stats()
    ev = retriever.retrieve("Inception director nationality", k=2)
    assert [e.chunk_id for e in ev] == ["films#0", "people#0"]
    assert ev[0].text == FILM_CHUNKS[0].text and ev[0].title == "Inception"  # text from the chunk store

    # deleting a document through the builder keeps graph, store and tree-side lookups consistent
    GraphBuilder.for_index(reopened, None).delete_documents(retriever.graph, ["people"])
    retriever.refresh()
    assert sorted(reopened.store.ids("entities")) == sorted(e.id for e in retriever.graph.entities())
    assert all(e.chunk_id not in {"people#0", "people#1"} for e in retriever.retrieve("Nolan London", k=5))
