"""Bad input, tried as a careless user would, through the CLI: one clear error (what is wrong,
where, what to do) worded for the command line, no traceback, nothing half-written — or,
with ``--on-error skip``, the rest of the corpus built and every input left out listed.

Real components: the CLI in-process, the real embedder, Chroma, BM25 and the tree builder.
Rows B1-B13 of docs/reliability.md.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from rel_support import DOCS, FAST, pristine_copy, write_docs

from branchwise.errors import InputError
from branchwise.retrieval.ingest import IngestConfig, _lines, ingest, load_documents

#: Python spellings that must never reach a person at the command line
PYTHON_ONLY = re.compile(r"on_error=|encoding_errors=|max_file_mb=|LlamaCppConfig|OpenAIConfig|Settings\(|llm=\.\.\.")


def assert_cli_error(run: Any, *needles: str) -> str:
    """Exit 2, one ``branchwise: error:`` line with a ``Fix:``, no traceback, no Python-only
    option names; returns the line."""
    assert run.code == 2, (run.out, run.err)
    line = run.error
    assert "Traceback" not in run.err and "Fix:" in line
    assert not PYTHON_ONLY.search(line), line
    for needle in needles:
        assert needle in line, line
    return line


def test_empty_corpus_folder(cli, tmp_path: Path) -> None:  # B1
    (tmp_path / "docs").mkdir()
    assert_cli_error(cli("index", tmp_path / "docs", "--out", tmp_path / "idx", *FAST), "no supported files", "docs")
    assert not (tmp_path / "idx").exists()


def test_one_bad_file_stops_the_folder_unless_asked_to_skip_then_every_one_is_listed(cli, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs")  # B2-B6: binary, zero-byte, not UTF-8, too large, bad JSONL
    (docs / "blob.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    (docs / "empty.md").write_bytes(b"")
    (docs / "latin1.txt").write_bytes("Crème brûlée is a French dessert.".encode("latin-1"))
    (docs / "huge.txt").write_text("word " * 60_000, encoding="utf-8")  # 300 KB, over a 0.1 MiB limit
    (docs / "records.jsonl").write_text('{"id": "r1", "text": "Record one is about the river Thames."}\n'
                                        '{"id": "r2", "text": oops}\n', encoding="utf-8")
    out = tmp_path / "idx"
    # sizes are checked first, from the file system alone, before any model loads
    line = assert_cli_error(cli("index", docs, "--out", out, "--max-file-mb", "0.1", *FAST), "huge.txt",
                            "over the 0.1 MiB limit", "--max-file-mb MB (at least 0.3)")
    assert not out.exists()
    line = assert_cli_error(cli("index", docs, "--out", out, "--max-file-mb", "1", *FAST), "blob.txt", "binary")
    assert "--on-error skip" in line  # the CLI's own option, not on_error='skip'
    assert not out.exists()  # refused before anything was written

    run = cli("index", docs, "--out", out, "--max-file-mb", "0.1", "--on-error", "skip", *FAST)
    assert run.code == 0, run.err
    listed = run.out.split("left out", 1)[1]
    for name, why in (("blob.txt", "binary"), ("empty.md", "no text"), ("latin1.txt", "not valid UTF-8"),
                      ("huge.txt", "over the 0.1 MiB limit"), ("records.jsonl:2", "malformed JSON")):
        assert re.search(re.escape(name) + r".*" + re.escape(why), listed), (name, listed)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == len(DOCS) + 1  # the four documents and record r1
    assert manifest["extra"]["ingest"]["n_skipped"] == 5


def test_non_utf8_text_names_the_cli_option_and_replace_reads_it(cli, tmp_path: Path) -> None:  # B4
    f = tmp_path / "latin1.txt"
    f.write_bytes("Crème brûlée is a French dessert of custard.".encode("latin-1"))
    line = assert_cli_error(cli("index", f, "--out", tmp_path / "idx", *FAST), "latin1.txt", "byte 2")
    assert "--encoding-errors replace" in line and "iconv" in line
    assert cli("index", f, "--out", tmp_path / "idx", "--encoding-errors", "replace", *FAST).code == 0
    chunks = (tmp_path / "idx" / "chunks.jsonl").read_text(encoding="utf-8")
    assert "Cr\\ufffdme" in chunks or "Cr\ufffdme" in chunks


def test_an_enormous_single_line_file_is_refused_from_its_size_before_any_model_loads(cli, tmp_path: Path,
                                                                                      monkeypatch) -> None:
    big = tmp_path / "big"  # B5: the 30 MB single-line file of issue 21 (36 k chunks, hours of work)
    big.mkdir()
    (big / "one-line.txt").write_bytes(b"word " * 6_000_000)
    from branchwise.assembly import root

    def no_models(*a: Any, **k: Any) -> Any:
        raise AssertionError("a model was loaded for a build that must be refused first")

    monkeypatch.setattr(root, "load_embedder", no_models)
    line = assert_cli_error(cli("index", big, "--out", tmp_path / "idx"), "one-line.txt", "28.6 MiB",
                            "--max-file-mb")
    assert "10.0 MiB limit" in line and not (tmp_path / "idx").exists()
    # raising the limit shows the estimate and asks; without a terminal it needs --yes
    run = cli("index", big, "--out", tmp_path / "idx", "--max-file-mb", "0")
    line = assert_cli_error(run, "estimated at", "--yes", "--summaries extractive")
    assert re.search(r"3\d,\d{3} chunks", run.err) and "LLM summaries" in run.err
    assert not (tmp_path / "idx").exists()


def test_a_long_build_within_the_limits_asks_first_and_yes_starts_it(cli, tmp_path: Path, monkeypatch) -> None:
    from branchwise.cli import index_cmd

    docs = write_docs(tmp_path / "docs")
    monkeypatch.setattr(index_cmd, "CONFIRM_OVER_S", 0.001)  # any build counts as long
    assert_cli_error(cli("index", docs, "--out", tmp_path / "idx", *FAST), "--yes")
    run = cli("index", docs, "--out", tmp_path / "idx", "--yes", *FAST)
    assert run.code == 0 and "estimated time" in run.err


def test_jsonl_is_streamed_a_huge_line_is_never_held_whole(tmp_path: Path) -> None:  # B5 (JSONL)
    f = tmp_path / "recs.jsonl"
    with f.open("wb") as out:
        out.write(b'{"id": "a", "text": "first record"}\n')
        out.write(b'{"id": "b", "text": "' + b"x" * (16 * 2**20) + b'"}\n')
        out.write(b'{"id": "c", "text": "third record"}\n')
    tracemalloc.start()
    try:
        report = ingest(f, IngestConfig(on_error="skip", max_file_mb=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d.id for d in report.documents] == ["a", "c"]
    assert report.skipped[0].where.endswith("recs.jsonl:2") and "over the 1.0 MiB limit" in report.skipped[0].reason
    assert peak < 4 * 2**20  # the 16 MiB line was read a block at a time, never whole
    with f.open("rb") as fh:
        sizes = [(n, line is None, size) for n, line, size in _lines(fh, 2**20)]
    assert sizes[1] == (2, True, 16 * 2**20 + 24)


def test_malformed_jsonl_and_duplicate_ids_name_file_and_line(cli, tmp_path: Path) -> None:  # B6, B7
    f = tmp_path / "recs.jsonl"
    f.write_text('{"id": "a", "text": "Alpha is first."}\n{"id": "a", "text": "Again alpha."}\n'
                 '{"id": "b", "text": broken}\n', encoding="utf-8")
    assert_cli_error(cli("index", f, "--out", tmp_path / "idx", *FAST), "recs.jsonl:3", "malformed JSON")
    f.write_text('{"id": "a", "text": "Alpha is first."}\n{"id": "a", "text": "Again alpha."}\n', encoding="utf-8")
    line = assert_cli_error(cli("index", f, "--out", tmp_path / "idx", *FAST), "duplicate document id 'a'",
                            "recs.jsonl:1 and recs.jsonl:2")
    assert "--on-error skip" in line
    run = cli("index", f, "--out", tmp_path / "idx", "--on-error", "skip", *FAST)
    assert run.code == 0 and "duplicate document id 'a'" in run.out
    assert [json.loads(x)["text"] for x in (tmp_path / "idx" / "chunks.jsonl").read_text().splitlines()] == \
        ["Alpha is first."]


def test_unreadable_file_is_an_error_or_skipped_not_a_traceback(tmp_path: Path) -> None:  # B8
    docs = write_docs(tmp_path / "docs")
    (docs / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    (docs / "folder.txt").mkdir()  # a directory with a document's name
    try:
        load_documents(docs)
    except InputError as e:
        assert "dangling.md" in str(e) and "Fix:" in str(e)
    report = ingest(docs, IngestConfig(on_error="skip"))
    assert sorted(d.id for d in report.documents) == sorted(DOCS)


def test_an_index_inside_its_own_corpus_folder_is_never_ingested(cli, tmp_path: Path) -> None:  # B9
    docs = write_docs(tmp_path / "docs")
    out = docs / "my-index"
    assert cli("index", docs, "--out", out, *FAST).code == 0
    before = (out / "chunks.jsonl").read_text()
    run = cli("index", docs, "--out", out, *FAST)  # used to ingest my-index/chunks.jsonl: "different corpus"
    assert run.code == 0, run.err
    assert (out / "chunks.jsonl").read_text() == before
    (docs / "new.md").write_text("# Danube\n\nThe Danube flows through ten countries.", encoding="utf-8")
    run = cli("add", out, docs, "--no-progress")
    assert run.code == 0 and "added: new.md" in run.out and "chunks.jsonl" not in run.out
    assert_cli_error(cli("add", out, out), "is a branchwise index directory")


def test_ask_on_a_docs_folder_suggests_a_command_that_works(cli, tmp_path: Path) -> None:  # B10
    docs = write_docs(tmp_path / "docs")
    line = assert_cli_error(cli("ask", docs, "Where is the Eiffel Tower?"), "no index at", "folder of documents")
    command = re.search(r"`(branchwise index [^`]+)`", line).group(1)
    assert f"--out {docs}-index" in command
    run = cli(*command.split()[1:], *FAST)  # the suggested command, as typed
    assert run.code == 0, run.err
    assert cli("info", f"{docs}-index").code == 0


@pytest.mark.parametrize("question, needle", [("", "the question is empty"), ("   ", "the question is empty"),
                                               ("why " * 25_000, "100,000 characters long")])
def test_empty_and_100k_character_questions(cli, built_index, question: str, needle: str, monkeypatch) -> None:
    from branchwise.assembly import root  # B11: refused before any model loads

    monkeypatch.setattr(root, "build_agent", lambda *a, **k: pytest.fail("the agent was built"))
    assert_cli_error(cli("ask", built_index[1], question), needle)


@pytest.mark.parametrize("args, needle", [
    (["ask", "{idx}", "q?", "--llm", "foo:bar"], "unknown LLM spec 'foo:bar'"),
    (["ask", "{idx}", "q?", "--reranker", "bogus"], "unknown reranker 'bogus'"),
    (["index", "{corpus}", "--out", "{tmp}/o", "--embedder", "nonsense"], "unknown embedder spec 'nonsense'"),
    (["index", "{corpus}", "--out", "{tmp}/o", "--store", "mongo://x"], "unknown store spec 'mongo://x'"),
    (["ask", "{idx}", "q?", "--llm", "openai:http://127.0.0.1:9/v1"], "malformed spec"),
], ids=["llm", "reranker", "embedder", "store", "openai-without-model"])
def test_unknown_backend_specs(cli, built_index, tmp_path: Path, args: list[str], needle: str) -> None:  # B12
    corpus, idx = built_index
    args = [a.format(idx=idx, corpus=corpus, tmp=tmp_path) for a in args]
    assert_cli_error(cli(*args), needle)
    assert not (tmp_path / "o").exists()


def test_an_index_of_another_embedder_dimension_is_refused(cli, built_index, tmp_path: Path) -> None:  # B13

    idx = pristine_copy(built_index[1], tmp_path / "idx")
    manifest = json.loads((idx / "manifest.json").read_text())
    manifest["embedder"]["dim"] = 768  # as if built by a 768-dimensional model of the same name
    (idx / "manifest.json").write_text(json.dumps(manifest))
    line = assert_cli_error(cli("ask", idx, "Where is the Eiffel Tower?"), "dim 768", "dim 384", "--overwrite")
    # the recorded spec loads another model now: giving it again cannot help, so it is not suggested
    assert "recorded spec 'default' now loads" in line and "Index.open" not in line
    manifest["embedder"].update(dim=384, name="BAAI/bge-small-en-v1.5")
    (idx / "manifest.json").write_text(json.dumps(manifest))
    assert_cli_error(cli("add", idx, built_index[0]), "BAAI/bge-small-en-v1.5")
