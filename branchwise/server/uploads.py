"""Uploaded documents, confined to the server's work directory.

Every upload lands in a fresh ``workdir/uploads/<index>/<batch>/`` folder, under a name
reduced by :func:`safe_name` (the last path component only, a small alphabet, no leading
dots), and each target is checked to lie inside that folder before anything is written: no
request can name a path outside it. Documents sent as JSON are written there as one JSONL
file. The index update then reads the batch folder, so document ids are the (safe) file
names, or the JSON ids. (The chat app confines its uploads the same way,
``branchwise.ui.sessions.Workspace``; the two surfaces share no code, by the layer rules.)
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from branchwise.files import safe_name
from branchwise.errors import InputError
from branchwise.files import atomic_write_text
from branchwise.retrieval.ingest import IngestConfig

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_doc_id(doc_id: str) -> str:
    """A document id sent as JSON: 1-200 printable characters."""
    if not isinstance(doc_id, str) or not doc_id.strip() or len(doc_id) > 200 or _CONTROL.search(doc_id):
        raise InputError(f"document id {str(doc_id)[:40]!r} is not valid.",
                         fix="use 1-200 printable characters per id.")
    return doc_id


class UploadArea:
    """``workdir/uploads``: one fresh batch folder per update request.

    Args:
        workdir: the server's work directory (created).
    """

    def __init__(self, workdir: Path) -> None:
        self.root = (Path(workdir) / "uploads").resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _batch(self, index: str) -> Path:
        batch = self.root / safe_name(index, default="index") / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._check_inside(batch)
        batch.mkdir(parents=True)
        return batch

    def _check_inside(self, path: Path) -> None:
        if not path.resolve().is_relative_to(self.root):  # safe_name makes this impossible; keep it explicit
            raise InputError("refusing a path outside the upload folder.", fix="rename the file.")

    def save_documents(self, index: str, documents: Sequence[Mapping[str, Any]]) -> Path:
        """Write JSON documents (``id``, ``text``, optional ``title``) as ``documents.jsonl``."""
        if not documents:
            raise InputError("no documents to add.", fix='send {"documents": [{"id": ..., "text": ...}]}.')
        batch = self._batch(index)
        lines = [json.dumps({"id": check_doc_id(d["id"]), "text": d["text"], "title": d.get("title") or ""},
                            ensure_ascii=False) for d in documents]
        atomic_write_text(batch / "documents.jsonl", "\n".join(lines) + "\n")
        return batch

    def save_files(self, index: str, files: Iterable[tuple[str, bytes]]) -> Path:
        """Write uploaded ``(original name, content)`` files under safe, distinct names."""
        allowed = IngestConfig().extensions
        batch = self._batch(index)
        used: set[str] = set()
        try:
            for original, content in files:
                name = safe_name(original)
                suffix = Path(name).suffix.lower()
                if suffix not in allowed:
                    raise InputError(f"{name!r} is not a supported document type.",
                                     fix=f"upload files ending in {', '.join(allowed)}.")
                stem, n = Path(name).stem, 1
                while name.lower() in used:
                    name, n = f"{stem}-{n}{suffix}", n + 1
                used.add(name.lower())
                target = batch / name
                self._check_inside(target)
                target.write_bytes(content)
        except BaseException:
            shutil.rmtree(batch, ignore_errors=True)
            raise
        if not used:
            shutil.rmtree(batch, ignore_errors=True)
            raise InputError("no files were uploaded.", fix="send one or more files as multipart 'files'.")
        log.info("saved %d upload(s) for %s", len(used), index)
        return batch
