"""The top-level facade (``import branchwise as bw``): build, ask, add, delete over a real index.

Real Chroma, real tree builder and the real LangGraph agent; the models are the test-only
HashingEmbedder and a ScriptedLLM so the flow is deterministic and fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import branchwise as bw
from branchwise.indexing.pipeline import IndexConfig
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.indexing.tree_build import TreeConfig
from branchwise.indexing.summarize import SummaryConfig

DOCS = {
    "rivers.md": "The River Liffey flows through the centre of Dublin and into Dublin Bay.",
    "writers.md": "Bram Stoker, the author of Dracula, was born in Clontarf, Dublin, in 1847.",
    "wings.md": "Swept wings delay the onset of compressibility drag at high subsonic speeds.",
    "lasers.md": "A laser emits coherent light through stimulated emission in a gain medium.",
}


@pytest.fixture
def index(tmp_path: Path) -> bw.Index:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    config = IndexConfig(tree=TreeConfig(max_children=3, summary=SummaryConfig(mode="extractive")), graph="off")
    return bw.build_index(corpus, tmp_path / "idx", embedder=HashingEmbedder(), config=config, progress=False)


def test_ask_answers_with_a_citation_of_the_right_chunk(index: bw.Index) -> None:
    # the default cascade makes one LLM call: the answer (no sufficiency judge, no plan)
    llm = ScriptedLLM(["Clontarf, Dublin [1]."])
    answer = bw.ask(index, "Where was Bram Stoker born?", llm=llm)
    assert isinstance(answer, bw.Answer)
    assert answer.found and "Clontarf" in answer.text
    assert answer.citations and answer.citations[0].chunk_id.startswith("writers.md")
    assert [c["node"] for c in answer.trace.calls] == ["generate"]


def test_add_then_delete_documents_keeps_the_index_consistent(index: bw.Index, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    (new / "bridges.md").write_text("The Ha'penny Bridge crosses the River Liffey in Dublin.", encoding="utf-8")
    report = bw.add_documents(index, new, progress=False)
    assert report.added == ["bridges.md"]
    reopened = bw.open_index(index.path, embedder=index.embedder)
    assert "bridges.md" in reopened.chunks.doc_ids()
    assert len(list(reopened.tree.leaves())) == len(DOCS) + 1

    with pytest.raises(bw.InputError, match="bridge"):
        bw.delete_documents(reopened, ["bridge.md"])  # a typo fails before anything changes
    report = bw.delete_documents(reopened, ["bridges.md"], progress=False)
    assert report.deleted == ["bridges.md"]
    final = bw.open_index(index.path, embedder=index.embedder)
    assert "bridges.md" not in final.chunks.doc_ids()
    assert final.manifest.counts["documents"] == len(DOCS)
