"""Index files are data: never unpickled, never executed (rows I7-I8 of docs/reliability.md).

1. The loaders: no module of branchwise imports a pickle-family library, loads numpy arrays
   with ``allow_pickle=True``, calls ``torch.load`` without ``weights_only=True`` or an unsafe
   YAML loader; the one ``eval`` reads branchwise's own type annotations.
2. The formats: every file of a built index (with a tree, a graph and a tree checkpoint)
   is JSON / JSONL, a numpy array that loads with ``allow_pickle=False``, SQLite, or Chroma's
   HNSW binaries — none is a pickle.
3. A planted pickle (an object array whose unpickling would write a file) in the BM25 folder
   and in the tree checkpoint is refused, and the payload never runs.
"""

from __future__ import annotations

import ast
import io
import json
import os
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "branchwise"
PICKLE_LIBS = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "_pickle"}
#: the only eval in the package: server/options.py resolves its own dataclasses' annotations
ALLOWED_EVAL = {"branchwise/server/options.py"}


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            base = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            out.append((f"{base}.{name}" if base else name, node))
    return out


def _kw(call: ast.Call, name: str) -> Any:
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


def test_no_loader_unpickles_or_executes() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import) else \
                [node.module.split(".")[0]] if isinstance(node, ast.ImportFrom) and node.module else []
            problems += [f"{rel}: imports {n}" for n in names if n in PICKLE_LIBS]
        for name, call in _calls(tree):
            if name in ("np.load", "numpy.load") and _kw(call, "allow_pickle") is not False:
                problems.append(f"{rel}:{call.lineno}: np.load without allow_pickle=False")
            if name.endswith("torch.load") or name == "torch.load":
                if _kw(call, "weights_only") is not True:
                    problems.append(f"{rel}:{call.lineno}: torch.load without weights_only=True")
            if name in ("yaml.load", "yaml.unsafe_load"):
                problems.append(f"{rel}:{call.lineno}: {name}")
            if isinstance(call.func, ast.Name) and name in ("eval", "exec") and rel not in ALLOWED_EVAL:
                problems.append(f"{rel}:{call.lineno}: {name}()")
    assert not problems, problems


def _kind(path: Path) -> str:
    head = path.read_bytes()[:16]
    assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), f"{path} is a pickle"
    if path.suffix in (".json",):
        json.loads(path.read_text(encoding="utf-8"))
        return "json"
    if path.suffix == ".jsonl":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                json.loads(line)
        return "jsonl"
    if path.suffix == ".npy":
        np.load(path, allow_pickle=False)
        return "npy"
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            [z[k] for k in z.files]
        return "npz"
    if head.startswith(b"SQLite format 3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            conn.execute("select count(*) from sqlite_master").fetchone()
        return "sqlite"
    if path.suffix == ".bin" and path.parent.parent.name == "chroma":
        return "hnsw"
    if path.name in (".update.lock",) or path.suffix in (".sqlite3-wal", ".sqlite3-shm", ".sqlite-wal", ".sqlite-shm"):
        return "other"
    raise AssertionError(f"unexpected file in an index: {path}")


def test_every_file_of_an_index_is_plain_data(tmp_path: Path) -> None:
    from branchwise.indexing.chunk_stage import IndexBuildConfig
    from branchwise.indexing.pipeline import IndexConfig, build_index
    from branchwise.indexing.summarize import SummaryConfig
    from branchwise.indexing.tree_build import TreeConfig
    from branchwise.testing import HashingEmbedder
    from rel_support import DOCS, write_docs

    config = IndexConfig(chunk=IndexBuildConfig(embedder_spec="default"), graph="on",
                         tree=TreeConfig(max_children=3, summary=SummaryConfig(mode="extractive")))
    out = tmp_path / "index"
    build_index(write_docs(tmp_path / "docs", DOCS), out, embedder=HashingEmbedder(dim=64), config=config,
                progress=False)
    from branchwise.indexing.checkpoint import BuildCheckpoint  # a checkpoint as a killed tree build leaves it

    ckpt = BuildCheckpoint(out / "tree.build")
    ckpt.open("fingerprint")
    ckpt.add_summaries([("k", "n1", "a summary")])
    ckpt.save_json("level1", {"groups": [[0, 1]]})
    ckpt.save_vectors("level1", ["n1"], np.ones((1, 4)))
    kinds = {p.relative_to(out).as_posix(): _kind(p) for p in sorted(out.rglob("*")) if p.is_file()}
    assert {"json", "jsonl", "npy", "npz", "sqlite", "hnsw"} <= set(kinds.values()), kinds
    assert kinds["graph/entities.jsonl"] == "jsonl" and kinds["tree.json"] == "json"


class _Payload:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _object_array(marker: Path) -> np.ndarray:
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(str(marker))
    return arr


def test_a_planted_pickle_is_refused_and_never_runs(built_index: tuple[Path, Path], tmp_path: Path,
                                                     real_embedder: Any) -> None:
    import shutil

    from branchwise.errors import IndexFormatError
    from branchwise.indexing.checkpoint import BuildCheckpoint
    from branchwise.retrieval.index import Index

    marker = tmp_path / "PWNED"
    idx_dir = tmp_path / "index"
    shutil.copytree(built_index[1], idx_dir)
    np.save(idx_dir / "bm25" / "data.csc.index.npy", _object_array(marker), allow_pickle=True)
    idx = Index.open(idx_dir, embedder=real_embedder)  # the shallow check passes: the file is there
    with pytest.raises(IndexFormatError, match="BM25 index .* is unreadable") as e:
        idx.search_bm25("Eiffel", 3)
    assert "rerun `branchwise index" in e.value.fix
    assert any(p.stage == "bm25" for p in Index.open(idx_dir, embedder=real_embedder).problems(deep=True))

    ckpt = BuildCheckpoint(tmp_path / "tree.build")
    ckpt.open("fp")
    buf = io.BytesIO()
    np.savez(buf, ids=_object_array(marker), vectors=np.ones((1, 4)))
    (ckpt.directory / "level1.npz").write_bytes(buf.getvalue())
    (ckpt.directory / "level2.npz").write_bytes(b"PK\x03\x04 torn")
    assert ckpt.load_vectors("level1") is None and ckpt.load_vectors("level2") is None  # recomputed, not loaded
    with zipfile.ZipFile(ckpt.directory / "level1.npz") as z:
        assert z.read("ids.npy")[:6] == b"\x93NUMPY"  # it really was an object (pickle) array
    assert not marker.exists()  # the payload never ran
