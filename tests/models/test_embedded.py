"""Assembly of the embedded GGUF from its part packages: once, verified, atomic, locked."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from pathlib import Path

import pytest

from branchwise.errors import BackendError
from branchwise.models import embedded
from branchwise.models.embedded import ensure_assembled, part_paths


def _make_parts(tmp_path: Path, n: int = 3, size: int = 300_000) -> tuple[list[Path], bytes]:
    whole = bytes((i * 7 + 3) % 251 for i in range(n * size))
    parts = []
    for i in range(n):
        p = tmp_path / "parts" / f"part{i + 1:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(whole[i * size : (i + 1) * size])
        parts.append(p)
    return parts, whole


def test_assembles_once_and_verifies(tmp_path: Path) -> None:
    parts, whole = _make_parts(tmp_path)
    sha = hashlib.sha256(whole).hexdigest()
    calls = []

    def get_parts() -> list[Path]:
        calls.append(1)
        return parts

    target = tmp_path / "models" / "m.gguf"
    assert ensure_assembled(target, get_parts, sha) == target
    assert target.read_bytes() == whole
    mtime = target.stat().st_mtime_ns
    # Second call: the marker short-circuits; the parts are not even listed.
    assert ensure_assembled(target, get_parts, sha) == target
    assert calls == [1]
    assert target.stat().st_mtime_ns == mtime
    assert not list(target.parent.glob(".*.tmp"))


def test_checksum_mismatch_leaves_no_file(tmp_path: Path) -> None:
    parts, _ = _make_parts(tmp_path)
    target = tmp_path / "models" / "m.gguf"
    with pytest.raises(BackendError, match="sha256") as ei:
        ensure_assembled(target, lambda: parts, "0" * 64)
    assert "force-reinstall" in str(ei.value)
    assert not target.exists()
    assert not list(target.parent.glob(".*.tmp"))


def test_corrupted_file_is_reassembled(tmp_path: Path) -> None:
    parts, whole = _make_parts(tmp_path)
    sha = hashlib.sha256(whole).hexdigest()
    target = tmp_path / "m.gguf"
    ensure_assembled(target, lambda: parts, sha)
    target.write_bytes(b"truncated")  # size/mtime no longer match the marker
    ensure_assembled(target, lambda: parts, sha)
    assert target.read_bytes() == whole


def _worker(target: str, parts: list[str], sha: str, q: "mp.Queue[str]") -> None:
    p = ensure_assembled(Path(target), lambda: [Path(x) for x in parts], sha)
    q.put(hashlib.sha256(p.read_bytes()).hexdigest())


def test_two_processes_assemble_safely(tmp_path: Path) -> None:
    parts, whole = _make_parts(tmp_path, n=4, size=2_000_000)
    sha = hashlib.sha256(whole).hexdigest()
    target = tmp_path / "models" / "m.gguf"
    ctx = mp.get_context("spawn")
    q: mp.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(target), [str(p) for p in parts], sha, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert [q.get(timeout=5), q.get(timeout=5)] == [sha, sha]
    assert not list(target.parent.glob(".*.tmp"))


def test_missing_parts_name_the_extra() -> None:
    with pytest.raises(BackendError) as ei:
        part_paths(module_pattern="branchwise_no_such_part_{i}", n_parts=2)
    msg = str(ei.value)
    assert "pip install 'branchwise[embedded]'" in msg and "[1, 2]" in msg


def test_real_parts_present_and_model_verified() -> None:
    """The installed part packages add up to the published file size and hash marker."""
    paths = part_paths()
    assert len(paths) == embedded.N_PARTS
    assert sum(p.stat().st_size for p in paths) == 1_117_320_768
    model = embedded.ensure_embedded_model()
    assert model.stat().st_size == 1_117_320_768
    assert embedded._is_verified(model, embedded.EMBEDDED_SHA256)
