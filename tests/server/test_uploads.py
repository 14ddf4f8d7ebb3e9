"""Upload confinement and the key ring (unit tests on the real file system)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchwise.errors import InputError
from branchwise.server.auth import KeyRing, presented_key
from branchwise.server.config import parse_keys
from branchwise.server.errors import AuthError, Forbidden
from branchwise.server.uploads import UploadArea, safe_name


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"), ("..\\..\\win.ini", "win.ini"), ("/abs/notes.md", "notes.md"),
    ("..", "file"), (".hidden.md", "hidden.md"), ("a b\x00c.md", "a_bc.md"), ("ｆｕｌｌ.md", "full.md"),
])
def test_safe_name_keeps_a_harmless_last_component(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_uploads_land_in_a_fresh_batch_inside_the_work_directory(tmp_path: Path) -> None:
    area = UploadArea(tmp_path / "work")
    batch = area.save_files("../docs", [("../../a.md", b"# A\ntext"), ("sub/a.md", b"# A2\ntext"), ("b.txt", b"b")])
    assert batch.is_relative_to(tmp_path / "work" / "uploads" / "docs")
    assert sorted(p.name for p in batch.iterdir()) == ["a-1.md", "a.md", "b.txt"]
    with pytest.raises(InputError, match="not a supported document type"):
        area.save_files("docs", [("ok.md", b"x"), ("x.exe", b"MZ")])
    assert len(list((tmp_path / "work" / "uploads" / "docs").iterdir())) == 1  # the refused batch is removed
    jsonl = area.save_documents("docs", [{"id": "n/1", "text": "hello", "title": "T"}]) / "documents.jsonl"
    assert json.loads(jsonl.read_text()) == {"id": "n/1", "text": "hello", "title": "T"}
    with pytest.raises(InputError, match="document id"):
        area.save_documents("docs", [{"id": "bad\nid", "text": "x"}])
    assert not [p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "work")]


def test_keys_refuse_with_401_or_403() -> None:
    ring = KeyRing({"a": ["key-a-0123456789abcdef"], "b": ["key-b-0123456789abcdef"], "open": []})
    ring.check("a", "key-a-0123456789abcdef")
    ring.check("open", None)
    with pytest.raises(AuthError):
        ring.check("a", None)
    with pytest.raises(AuthError):
        ring.check("a", "guess-0123456789abcdef")
    with pytest.raises(Forbidden):
        ring.check("a", "key-b-0123456789abcdef")
    assert presented_key("Bearer  k1 ", None) == "k1" and presented_key(None, " k2 ") == "k2"
    assert presented_key("Basic abc", None) is None


def test_keys_come_from_pairs_and_a_json_file(tmp_path: Path) -> None:
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"docs": ["k1", "k2"]}))
    assert parse_keys(["docs=k3", "other=k4"], f) == {"docs": ("k1", "k2", "k3"), "other": ("k4",)}
    f.write_text(json.dumps({"docs": "k1"}))
    with pytest.raises(InputError, match="not a mapping of index names to lists"):
        parse_keys([], f)
    with pytest.raises(InputError, match="NAME=KEY"):
        parse_keys(["docs"])
