"""Files, safely: atomic writes (temp file in the same directory, fsync, rename) and JSON /
JSONL record reading with errors that say which line is broken."""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Iterator

from branchwise.errors import InputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (readers see the old or the new file, never half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True))


def atomic_write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))

def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a readable file, else raise an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{what} file not found: {path}.",
            fix=f"pass the path of the {what} file (see /work/shared/data/README.md for the formats).",
        )
    return path


def iter_records(path: Path, what: str) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSON array file or a JSONL file (one object per line).

    The official HotpotQA and 2WikiMultihopQA releases are JSON arrays, many mirrors are
    JSONL; both are accepted. Raises :class:`InputError` naming the bad line.
    """
    path = require_file(path, what)
    with path.open(encoding="utf-8") as f:
        head = f.read(1)
        while head and head.isspace():
            head = f.read(1)
        f.seek(0)
        if head == "[":
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise InputError(f"{path} is not valid JSON ({e}).", fix=f"check that {path} is a {what} file.") from e
            for i, rec in enumerate(data):
                if not isinstance(rec, dict):
                    raise InputError(f"{path}: item {i} is not a JSON object.", fix=f"check that {path} is a {what} file.")
                yield rec
            return
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(
                    f"{path}:{lineno} is not valid JSON ({e.msg}).", fix=f"check that {path} is a {what} JSONL file."
                ) from e
            if not isinstance(rec, dict):
                raise InputError(f"{path}:{lineno} is not a JSON object.", fix=f"check that {path} is a {what} JSONL file.")
            yield rec


def field(rec: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``rec[key]`` checked for presence and type; InputError otherwise."""
    if key not in rec:
        raise InputError(f"{where}: missing field {key!r}.", fix="check that the file is in the documented format.")
    value = rec[key]
    if not isinstance(value, kind):
        raise InputError(
            f"{where}: field {key!r} has type {type(value).__name__}.",
            fix="check that the file is in the documented format.",
        )
    return value


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 80


def safe_name(name: str, *, default: str = "file") -> str:
    """A file or folder name that cannot leave its directory.

    Only the last component of ``name`` is kept (``/`` and ``\\`` both count as separators),
    it is NFKC-normalised, every character outside ``[A-Za-z0-9._-]`` becomes ``_``, leading
    dots are dropped (no hidden files, no ``..``), and the length is capped (the suffix kept).
    Used for uploads (chat app, server) and for files named after untrusted ids (eval traces).
    """
    base = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    base = _UNSAFE_NAME.sub("_", base.replace("\x00", "")).lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if dot and len(base) > _MAX_NAME:
        base = stem[: _MAX_NAME - len(ext) - 1] + "." + ext
    base = base[:_MAX_NAME].strip("_") or default
    return base if base not in (".", "..") else default
