"""``branchwise add`` / ``branchwise delete`` on a real index (persistent Chroma, BM25, tree,
graph) with the hashing embedder: the new document is retrievable everywhere after an add
and gone everywhere after a delete, the tree invariants hold, only the touched summaries
are rewritten, and ``branchwise info`` shows the new counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import branchwise.models.factory as factory
from branchwise.cli.main import main
from branchwise.errors import IndexFormatError, InputError
from branchwise.graph.types import KnowledgeGraph
from branchwise.indexing.incremental import add_documents, delete_documents
from branchwise.indexing.pipeline import IndexConfig, build_index
from branchwise.indexing.chunk_stage import IndexBuildConfig
from branchwise.retrieval.index import CHUNKS, ENTITIES, NODES, Index
from branchwise.testing import HashingEmbedder, ScriptedLLM, json_reply
from branchwise.indexing.tree_build import TreeConfig
from branchwise.indexing.summarize import SummaryConfig

M = 4
TOPICS = {
    "solar": "Solar panels convert sunlight into electricity with photovoltaic cells on the roof.",
    "football": "The striker scored a late goal in the football match against the visiting team.",
    "python": "Python functions and classes organise program code into reusable modules.",
    "bread": "Bread dough rises when yeast ferments the sugars in the wheat flour.",
    "spin": "Electron spin is a quantum property measured with magnetic fields in the laboratory.",
}
NEW_DOC = ("# Zorblat glaciers\n\nThe Zorblat glacier carves a fjord as the ice creeps downhill; "
           "moraines and crevasses mark the Zorblat icefield near Quenmoor.\n")
QUERY = "Zorblat glacier fjord moraines crevasses icefield"


def write_corpus(folder: Path, n: int = 24) -> Path:
    folder.mkdir(parents=True)
    names = list(TOPICS)
    for i in range(n):
        topic = names[i % len(names)]
        (folder / f"{topic}-{i:02d}.md").write_text(
            f"# {topic.title()} note {i}\n\n{TOPICS[topic]} Detail {i} mentions case {i * 7 % 13}.\n", encoding="utf-8")
    return folder


_PASSAGE = re.compile(r'<passage title="[^"]*">\n(.*?)\n</passage>', re.S)


def fake_llm_reply(messages) -> str:
    """Summary prompts get a short label; graph extraction prompts get the passage's
    capitalised words as entities, the first two related."""
    prompt = messages[-1].content
    m = _PASSAGE.search(prompt)
    if m is None:
        return "Topics " + " ".join(re.findall(r"[a-z]{5,}", prompt)[:8])
    names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]{3,}\b", m.group(1))))[:3]
    ents = [{"name": n, "type": "other", "description": f"{n} in the passage"} for n in names]
    rels = [{"subject": names[0], "predicate": "related to", "object": names[1]}] if len(names) > 1 else []
    return json_reply({"entities": ents, "relations": rels})


@pytest.fixture
def fake_models(monkeypatch):
    """The CLI's model factories return the hashing embedder and a counting scripted LLM."""
    llms: list[ScriptedLLM] = []

    def make_llm(spec="default", config=None, cache_dir=None):
        llms.append(ScriptedLLM(replies=fake_llm_reply, name=f"scripted:{spec}"))
        return llms[-1]

    monkeypatch.setattr(factory, "make_embedder", lambda *a, **k: HashingEmbedder(dim=64))
    monkeypatch.setattr(factory, "make_llm", make_llm)
    monkeypatch.delenv("BRANCHWISE_LLM", raising=False)
    return llms


def build(tmp_path: Path, mode: str = "extractive", graph: str = "off") -> Path:
    out = tmp_path / "index"
    config = IndexConfig(
        chunk=IndexBuildConfig(embedder_spec="hashing-test", llm_spec="scripted-build" if mode == "llm" else None),
        tree=TreeConfig(max_children=M, summary=SummaryConfig(mode=mode, summary_tokens=32)),  # type: ignore[arg-type]
        graph=graph,  # type: ignore[arg-type]
        graph_extractor="llm",  # these tests follow the LLM extractor's calls (the default is spaCy)
    )
    llm = ScriptedLLM(replies=fake_llm_reply) if mode == "llm" or graph == "on" else None
    build_index(write_corpus(tmp_path / "corpus"), out, embedder=HashingEmbedder(dim=64), llm=llm, config=config,
                progress=False)
    return out


def info(capsys, out: Path) -> dict:
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def check_invariants(idx: Index) -> None:
    tree = idx.tree
    assert tree is not None
    tree.validate(set(idx.chunks.ids()))  # every chunk exactly once, single root, levels, links
    assert all(len(n.children) <= M for n in tree.nodes.values())
    assert sum(1 for n in tree.nodes.values() if n.parent is None) == 1
    assert not any(n.stale for n in tree.nodes.values())
    internal = {n.id for n in tree.nodes.values() if not n.is_leaf}
    assert set(idx.store.ids(NODES)) == internal  # a summary vector per internal node, none left over
    assert set(idx.store.ids(CHUNKS)) == set(idx.chunks.ids())
    assert idx.manifest.counts["nodes"] == len(tree) and idx.manifest.counts["chunks"] == len(idx.chunks)
    assert "update_in_progress" not in idx.manifest.extra


def test_add_then_delete_through_the_cli(tmp_path, capsys, fake_models):
    out = build(tmp_path)
    before = info(capsys, out)
    old = Index.open(out)
    summaries = {nid: n.summary for nid, n in old.tree.nodes.items()}
    new_file = tmp_path / "incoming" / "zorblat.md"
    new_file.parent.mkdir()
    new_file.write_text(NEW_DOC, encoding="utf-8")

    assert main(["add", str(out), str(new_file), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "added: zorblat.md" in printed and "summaries refreshed" in printed
    assert fake_models == []  # extractive summaries, no graph: no LLM is even loaded

    idx = Index.open(out)
    new_ids = [c.id for c in idx.chunks.by_doc("zorblat.md")]
    assert new_ids
    for hits in (idx.search_hybrid(QUERY, 3), idx.search_dense(QUERY, 3), idx.search_bm25(QUERY, 3)):
        assert hits[0].chunk_id in new_ids
    check_invariants(idx)
    leaf = idx.tree.leaf_for_chunk(new_ids[0])
    path = set(idx.tree.path_to_root(leaf.id))
    # the summaries off the new leaf's path are untouched; those on it were rewritten
    untouched = [nid for nid, s in summaries.items() if nid in idx.tree.nodes and nid not in path
                 and not idx.tree[nid].is_leaf]
    assert untouched and all(idx.tree[nid].summary == summaries[nid] for nid in untouched)
    created = {nid for nid in set(idx.tree.nodes) - set(summaries) if not idx.tree[nid].is_leaf}
    assert idx.manifest.extra["last_update"]["summaries_refreshed"] == len((path - {leaf.id}) | created)
    after_add = info(capsys, out)
    counts0, counts1 = before["manifest"]["counts"], after_add["manifest"]["counts"]
    assert counts1["documents"] == counts0["documents"] + 1
    assert counts1["chunks"] == counts0["chunks"] + len(new_ids)
    assert counts1["nodes"] == after_add["tree"]["nodes"] and after_add["tree"]["leaves"] == counts1["chunks"]
    assert after_add["manifest"]["extra"]["last_update"]["op"] == "add"

    # adding the same file again changes nothing
    assert main(["add", str(out), str(new_file), "--no-progress"]) == 0
    assert "unchanged, skipped: zorblat.md" in capsys.readouterr().out
    assert info(capsys, out)["manifest"]["counts"] == counts1

    assert main(["delete", str(out), "--list"]) == 0
    assert "zorblat.md\t1 chunks" in capsys.readouterr().out
    assert main(["delete", str(out), "zorblat.md", "--no-progress"]) == 0
    assert "deleted: zorblat.md" in capsys.readouterr().out
    idx = Index.open(out)
    assert idx.chunks.by_doc("zorblat.md") == []
    assert not set(new_ids) & set(idx.store.ids(CHUNKS))
    for search in (idx.search_bm25, idx.search_dense, idx.search_hybrid):
        assert not {h.chunk_id for h in search(QUERY, 50)} & set(new_ids)
    assert all(idx.tree.leaf_for_chunk(c) is None for c in new_ids)
    assert not any("zorblat" in n.summary.lower() for n in idx.tree.nodes.values())
    check_invariants(idx)
    after_delete = info(capsys, out)["manifest"]["counts"]
    assert after_delete["documents"] == counts0["documents"] and after_delete["chunks"] == counts0["chunks"]


def test_cli_errors_are_one_clear_line(tmp_path, capsys, fake_models):
    out = build(tmp_path)
    capsys.readouterr()
    assert main(["delete", str(out), "solar-00.mdx"]) == 2
    err = capsys.readouterr().err
    assert "unknown document id" in err and "did you mean 'solar-00.md'" in err and "--list" in err
    assert main(["delete", str(out)]) == 2
    assert "no document ids" in capsys.readouterr().err
    assert main(["add", str(tmp_path / "no-index"), str(tmp_path / "corpus")]) == 2
    assert "no index at" in capsys.readouterr().err
    assert main(["add", str(out), str(tmp_path / "missing.md")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    everything = [f.name for f in (tmp_path / "corpus").iterdir()]
    assert main(["delete", str(out), *everything]) == 2
    assert "would leave the index" in capsys.readouterr().err
    check_invariants(Index.open(out))  # nothing was changed by the failed commands


def test_llm_summaries_and_graph_follow_the_update(tmp_path, capsys, fake_models):
    out = build(tmp_path, mode="llm", graph="on")
    new_file = tmp_path / "zorblat.md"
    new_file.write_text(NEW_DOC, encoding="utf-8")
    assert main(["add", str(out), str(new_file), "--no-progress"]) == 0
    capsys.readouterr()
    (llm,) = fake_models
    assert llm.name == "scripted:scripted-build"  # the LLM the index was built with
    idx = Index.open(out)
    check_invariants(idx)
    new_id = idx.chunks.by_doc("zorblat.md")[0].id
    leaf = idx.tree.leaf_for_chunk(new_id)
    refreshed = idx.manifest.extra["last_update"]["summaries_refreshed"]
    extractions = sum(1 for call in llm.calls if "<passage" in call[-1].content)
    # one summary call per node on the new leaf's path (plus any split), one extraction call
    assert refreshed >= idx.tree[idx.tree.root].level and extractions == 1
    assert len(llm.calls) - extractions == refreshed == idx.manifest.extra["last_update"]["llm_calls"]
    assert set(idx.tree.path_to_root(leaf.parent)) <= {n for n in idx.tree.nodes}
    graph = KnowledgeGraph.load(idx.graph_dir)
    assert new_id in graph.chunk_ids()
    zorblat = [e.id for e in graph.entities() if e.name == "Zorblat"]
    assert zorblat and set(zorblat) <= set(idx.store.ids(ENTITIES))

    assert main(["delete", str(out), "zorblat.md", "--no-progress"]) == 0
    idx = Index.open(out)
    check_invariants(idx)
    graph = KnowledgeGraph.load(idx.graph_dir)
    assert new_id not in graph.chunk_ids() and not [e for e in graph.entities() if e.name in ("Zorblat", "Quenmoor")]
    assert not set(zorblat) & set(idx.store.ids(ENTITIES))
    assert sorted(idx.store.ids(ENTITIES)) == sorted(e.id for e in graph.entities())


def test_llm_is_required_where_summaries_are_llm_written(tmp_path):
    out = build(tmp_path, mode="llm")
    idx = Index.open(out, embedder=HashingEmbedder(dim=64))
    with pytest.raises(InputError, match="needs an LLM"):
        delete_documents(idx, ["solar-00.md"])


def test_many_adds_split_nodes_and_replacements_re_place_leaves(tmp_path):
    out = build(tmp_path)
    idx = Index.open(out, embedder=HashingEmbedder(dim=64))
    more = tmp_path / "more"
    more.mkdir()
    for i in range(12):
        (more / f"glacier-{i:02d}.md").write_text(f"# Glacier {i}\n\nGlacier ice {i} carves fjords and moraines, "
                                                  f"note {i * 3}.\n", encoding="utf-8")
    report = add_documents(idx, more, progress=False)
    assert len(report.added) == 12 and report.leaves_added == 12 and report.nodes_created > 0
    check_invariants(idx)

    (more / "glacier-00.md").write_text("# Glacier 0\n\nRewritten: sea ice and polar bears.\n", encoding="utf-8")
    report = add_documents(idx, [more], progress=False)
    assert report.replaced == ["glacier-00.md"] and len(report.unchanged) == 11
    assert report.leaves_removed == report.leaves_added == 1 and report.repaired == 0
    assert "polar bears" in idx.chunks.by_doc("glacier-00.md")[0].text
    check_invariants(idx)
    report = delete_documents(idx, [f"glacier-{i:02d}.md" for i in range(12)], progress=False)
    assert report.chunks_removed == 12 and report.leaves_removed == 12
    check_invariants(idx)
    assert idx.manifest.counts["documents"] == 24


def test_an_interrupted_update_is_repaired_by_the_next(tmp_path):
    out = build(tmp_path)
    idx = Index.open(out, embedder=HashingEmbedder(dim=64))
    # an add that stored chunks but died before the tree was saved, and a delete that
    # removed chunks but died before the tree was saved
    stray = [c for c in idx.chunks.by_doc("bread-03.md")]
    idx.remove_chunks([c.id for c in stray])
    from branchwise.types import Chunk

    idx.add_chunks([Chunk("orphan#0", "orphan", "Zorblat glacier ice and moraines.")])
    with pytest.raises(IndexFormatError):
        idx.tree.validate(set(idx.chunks.ids()))
    report = delete_documents(idx, ["solar-00.md"], progress=False)
    assert report.repaired == 2  # the vanished chunk's leaf removed, the unplaced chunk placed
    check_invariants(idx)
    assert idx.tree.leaf_for_chunk("orphan#0") is not None


def test_unfinished_index_is_refused(tmp_path):
    out = build(tmp_path)
    idx = Index.open(out, embedder=HashingEmbedder(dim=64))
    idx.set_stage("tree", "in_progress")
    with pytest.raises(IndexFormatError, match="not fully built"):
        add_documents(idx, tmp_path / "corpus", progress=False)
