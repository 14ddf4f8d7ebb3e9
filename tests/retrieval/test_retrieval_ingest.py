"""Ingestion of each format, and a clear error for each kind of bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from branchwise.errors import InputError
from branchwise.retrieval.ingest import IngestConfig, load_documents


def write_pdf(path: Path, lines: list[str], title: str) -> None:
    """A minimal, valid one-page PDF with real text operators (Helvetica) and an Info title."""
    text_ops = " ".join(f"({ln}) Tj 0 -20 Td" for ln in lines)
    stream = f"BT /F1 14 Tf 72 720 Td {text_ops} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("Plain text about lattices.\nSecond line.", encoding="utf-8")
    (root / "guide.md").write_text("---\ntitle: The Guide\n---\n# Heading\n\nMarkdown *body* text.", encoding="utf-8")
    (root / "sub" / "page.html").write_text(
        "<html><head><title>Page &amp; Title</title><style>p {color: red}</style></head>"
        "<body><h1>Big heading</h1><p>First paragraph.</p><script>alert('x')</script>"
        "<p>Second&nbsp;paragraph.</p></body></html>",
        encoding="utf-8",
    )
    write_pdf(root / "sub" / "paper.pdf", ["Portable documents carry text.", "Second PDF line."], "A Paper")
    (root / ".hidden.txt").write_text("hidden files are skipped", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # unsupported suffix: ignored
    return root


def test_folder_reads_every_format_recursively_in_sorted_order(corpus: Path):
    docs = load_documents(corpus)
    assert [d.id for d in docs] == ["guide.md", "notes.txt", "sub/page.html", "sub/paper.pdf"]
    by_id = {d.id: d for d in docs}

    assert by_id["notes.txt"].text == "Plain text about lattices.\nSecond line."
    assert by_id["notes.txt"].title == "notes"
    assert by_id["notes.txt"].metadata == {"source": "notes.txt", "format": "txt"}

    md = by_id["guide.md"]
    assert md.title == "The Guide" and "title:" not in md.text and md.text.startswith("# Heading")

    html = by_id["sub/page.html"]
    assert html.title == "Page & Title"
    assert html.text == "Big heading\n\nFirst paragraph.\n\nSecond paragraph."

    pdf = by_id["sub/paper.pdf"]
    assert pdf.title == "A Paper"
    assert "Portable documents carry text." in pdf.text and "Second PDF line." in pdf.text


def test_single_file_gets_its_file_name_as_id(corpus: Path):
    docs = load_documents(corpus / "sub" / "paper.pdf")
    assert [d.id for d in docs] == ["paper.pdf"]


def test_jsonl_records_with_extra_fields_as_metadata(tmp_path: Path):
    path = tmp_path / "recs.jsonl"
    path.write_text(
        json.dumps({"id": "a", "text": "Alpha text.", "title": "Alpha", "year": 2020, "tags": ["x"]}) + "\n"
        "\n"  # blank lines are ignored
        + json.dumps({"id": 7, "text": "Numeric id."}) + "\n"
        + json.dumps({"text": "No id: named by file and line."}) + "\n",
        encoding="utf-8",
    )
    docs = load_documents(path)
    assert [d.id for d in docs] == ["a", "7", "recs/4"]
    assert docs[0].title == "Alpha"
    assert docs[0].metadata == {"year": 2020, "tags": ["x"], "source": "recs.jsonl:1"}
    assert docs[1].title == ""


# -- bad input ------------------------------------------------------------------------------


def test_nonexistent_path(tmp_path: Path):
    with pytest.raises(InputError, match="no such file or folder"):
        load_documents(tmp_path / "missing")


def test_empty_folder(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no supported files") as e:
        load_documents(tmp_path / "empty")
    assert "Fix:" in str(e.value)


def test_folder_with_only_unsupported_files(tmp_path: Path):
    (tmp_path / "x.docx").write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="no supported files"):
        load_documents(tmp_path)


def test_unsupported_single_file(tmp_path: Path):
    (tmp_path / "x.docx").write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="unsupported file type '.docx'"):
        load_documents(tmp_path / "x.docx")


def test_binary_file_raises_naming_it_or_is_skipped(tmp_path: Path, caplog):
    (tmp_path / "good.txt").write_text("good text", encoding="utf-8")
    (tmp_path / "blob.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00binary")
    with pytest.raises(InputError, match=r"blob\.txt looks like a binary file"):
        load_documents(tmp_path)
    with caplog.at_level(logging.WARNING):
        docs = load_documents(tmp_path, IngestConfig(on_error="skip"))
    assert [d.id for d in docs] == ["good.txt"]
    assert "blob.txt" in caplog.text


def test_non_utf8_text_reports_file_and_offers_replacement(tmp_path: Path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café crème".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.txt is not valid UTF-8.*byte 3") as e:
        load_documents(path)
    assert "iconv" in str(e.value)
    docs = load_documents(path, IngestConfig(encoding_errors="replace"))
    assert docs[0].text == "caf\ufffd cr\ufffdme"


def test_utf8_bom_and_utf16_text_are_decoded(tmp_path: Path):
    (tmp_path / "bom.txt").write_bytes("\ufeffwith bom".encode("utf-8"))
    (tmp_path / "wide.txt").write_bytes("wide text".encode("utf-16"))
    docs = {d.id: d.text for d in load_documents(tmp_path)}
    assert docs == {"bom.txt": "with bom", "wide.txt": "wide text"}


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": oops}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: malformed JSON"):
        load_documents(path)
    docs = load_documents(path, IngestConfig(on_error="skip"))
    assert [d.id for d in docs] == ["a"]


def test_jsonl_record_without_text(tmp_path: Path):
    path = tmp_path / "notext.jsonl"
    path.write_text('{"id": "a", "body": "wrong key"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"notext\.jsonl:1: record has no 'text' field"):
        load_documents(path)
    docs = load_documents(path, IngestConfig(text_field="body"))
    assert docs[0].text == "wrong key"


def test_jsonl_record_not_an_object(tmp_path: Path):
    path = tmp_path / "list.jsonl"
    path.write_text('["a", "b"]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"list\.jsonl:1: a record must be a JSON object"):
        load_documents(path)


def test_duplicate_ids(tmp_path: Path):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"id": "a", "text": "one"}\n{"id": "a", "text": "two"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="duplicate document id 'a'.*dup.jsonl:1 and dup.jsonl:2"):
        load_documents(path)
    assert [d.text for d in load_documents(path, IngestConfig(on_error="skip"))] == ["one"]


def test_corrupt_pdf_is_reported(tmp_path: Path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    with pytest.raises(InputError, match=r"broken\.pdf is not a readable PDF"):
        load_documents(tmp_path / "broken.pdf")


def test_only_empty_documents(tmp_path: Path):
    (tmp_path / "blank.md").write_text("   \n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no documents with text"):
        load_documents(tmp_path)


def test_invalid_config_values():
    with pytest.raises(InputError, match="on_error"):
        IngestConfig(on_error="ignore")  # type: ignore[arg-type]


def test_corpus_inside_a_dot_folder_is_read_but_hidden_files_inside_it_are_not(tmp_path: Path):
    root = tmp_path / ".cache" / "corpus"
    (root / ".git").mkdir(parents=True)
    (root / "doc.txt").write_text("visible", encoding="utf-8")
    (root / ".git" / "notes.txt").write_text("hidden", encoding="utf-8")
    assert [d.id for d in load_documents(root)] == ["doc.txt"]


def test_relative_and_symlinked_roots_give_the_same_ids(corpus: Path, monkeypatch):
    monkeypatch.chdir(corpus.parent)
    (corpus.parent / "link").symlink_to(corpus, target_is_directory=True)
    expected = [d.id for d in load_documents(corpus)]
    assert [d.id for d in load_documents("corpus")] == expected
    assert [d.id for d in load_documents("link")] == expected
