"""Missing, foreign and corrupt index directories: ``ask`` refuses with the command that
repairs it, ``info`` reports the problem (exit 1) instead of a healthy-looking summary, and
rerunning ``branchwise index`` repairs the index to what it was (rows B14-B15 of
docs/reliability.md).

Real components: the CLI in-process, the real embedder, Chroma, BM25 and the tree builder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest
from rel_support import FAST, pristine_copy
from test_bad_input import assert_cli_error


def _garble_chroma(idx: Path) -> None:
    for f in (idx / "chroma").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\x00garbage" * 40)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "tree-deleted": (lambda i: (i / "tree.json").unlink(), "tree.json is missing"),
    "tree-corrupt": (lambda i: (i / "tree.json").write_text("{not json"), "tree.json is corrupt"),
    "chunks-corrupt": (lambda i: (i / "chunks.jsonl").open("a").write('{"id": broken\n'), "not a valid chunk record"),
    "chunks-deleted": (lambda i: (i / "chunks.jsonl").unlink(), "chunks.jsonl is missing"),
    "bm25-deleted": (lambda i: shutil.rmtree(i / "bm25"), "BM25 index (bm25/) is missing"),
    "chroma-deleted": (lambda i: shutil.rmtree(i / "chroma"), "holds 0 chunk vectors"),
    "chroma-corrupt": (_garble_chroma, "the vector store at"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_index_is_refused_reported_and_repaired(cli, built_index, tmp_path: Path, damage: str) -> None:
    corpus, pristine = built_index
    idx = pristine_copy(pristine, tmp_path / "idx")
    harm, symptom = DAMAGE[damage]
    harm(idx)
    line = assert_cli_error(cli("ask", idx, "When was the Eiffel Tower completed?"), symptom)
    assert "rerun `branchwise index" in line
    info = cli("info", idx)
    assert info.code in (1, 2) and symptom in (info.out + info.err)
    if info.code == 1:
        assert "PROBLEMS" in info.out and "tree: not built" not in info.out
    if damage.startswith("tree"):  # issue 21: info said the tree stage was done and "tree: not built"
        assert info.code == 1 and "tree: BROKEN" in info.out

    run = cli("index", corpus, "--out", idx, *FAST)  # the repair the errors name
    assert run.code == 0, run.err
    assert cli("info", idx).code == 0
    for name in ("chunks.jsonl", "tree.json"):
        assert (idx / name).read_text() == (pristine / name).read_text(), name
    assert json.loads((idx / "manifest.json").read_text())["counts"] == \
        json.loads((pristine / "manifest.json").read_text())["counts"]


def test_missing_and_foreign_index_directories(cli, built_index, tmp_path: Path) -> None:
    assert_cli_error(cli("ask", tmp_path / "nowhere", "q?"), "no index at", "branchwise index PATH --out")
    (tmp_path / "empty").mkdir()
    assert_cli_error(cli("info", tmp_path / "empty"), "no index at")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text(json.dumps({"name": "my-web-app", "version": "1.0"}))
    assert_cli_error(cli("ask", foreign, "q?"), "schema None", "branchwise index")
    (foreign / "manifest.json").write_text("\x00\x01 not json")
    assert_cli_error(cli("info", foreign), "is not valid JSON")
    # an index directory given where documents are expected
    assert_cli_error(cli("index", built_index[1], "--out", tmp_path / "o", *FAST), "is a branchwise index directory")


def tear_chroma_log(idx: Path, chunk_id: str) -> None:
    """What a kill -9 during Chroma's own flush leaves (seen in the kill tests): an id the
    metadata knows whose vector is gone. Reading it back fails with "Error finding id"."""
    import sqlite3

    with sqlite3.connect(idx / "chroma" / "chroma.sqlite3") as conn:
        assert conn.execute("delete from embeddings_queue where id = ?", (chunk_id,)).rowcount == 1


def test_a_store_whose_ids_and_vectors_disagree_is_found_and_rebuilt(cli, built_index, tmp_path: Path) -> None:
    corpus, pristine = built_index
    idx = pristine_copy(pristine, tmp_path / "idx")
    tear_chroma_log(idx, "nile.md#0")
    info = cli("info", idx)
    assert info.code == 1 and "cannot serve collection 'chunks'" in info.out and "out of step" in info.out
    run = cli("index", corpus, "--out", idx, *FAST)  # the build's rerun moves the store aside and rebuilds it
    assert run.code == 0, run.err
    assert (idx / "chroma.unreadable").is_dir() and cli("info", idx).code == 0


def test_an_update_rebuilds_a_torn_store_from_the_index_files(cli, built_index, tmp_path: Path) -> None:
    from branchwise.retrieval.index import CHUNKS, NODES, Index

    corpus, pristine = built_index
    idx = pristine_copy(pristine, tmp_path / "idx")
    tear_chroma_log(idx, "eiffel.md#0")
    docs = tmp_path / "more"
    docs.mkdir()
    (docs / "danube.md").write_text("# Danube\n\nThe Danube flows through ten countries.", encoding="utf-8")
    run = cli("add", idx, docs, "--no-progress")  # the corpus changed: the build's rerun is no option
    assert run.code == 0, run.err
    opened = Index.open(idx)
    assert opened.problems(deep=True) == []
    before = Index.open(pristine)
    ids = before.store.ids(CHUNKS)  # every old chunk vector is back, as it was
    assert (abs(opened.store.get_embeddings(CHUNKS, ids) - before.store.get_embeddings(CHUNKS, ids)) < 1e-5).all()
    assert len(opened.store.ids(NODES)) == sum(1 for n in opened.tree.nodes.values() if not n.is_leaf)
