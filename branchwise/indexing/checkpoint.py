"""Resumable tree builds: what is done survives a kill (``index/tree.build/``).

Layout (schema ``branchwise.tree-build/1``)::

    tree.build/
      meta.json            schema + fingerprint of (chunks, embeddings, config, summarizer)
      summaries.jsonl      {"key", "node", "summary"} appended and fsynced per batch
      <name>.json          clustering results (one per bottom-up level, or the top-down
                           hierarchy), written atomically
      <name>.npz           node vectors of one finished level: "ids" (unicode) + "vectors"

A rerun with the same inputs replays the recorded clustering, skips every summary whose
request hash is in ``summaries.jsonl`` and reloads finished levels' vectors, so it produces
the same tree as an uninterrupted build. A checkpoint whose fingerprint does not match
(different corpus, settings or summarizer) is discarded. Arrays are saved and loaded with
``allow_pickle=False``; nothing here is ever unpickled. A torn last line of the JSONL (a
kill during a write) is ignored.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from branchwise.files import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

CHECKPOINT_SCHEMA = "branchwise.tree-build/1"
_SUMMARIES = "summaries.jsonl"


class BuildCheckpoint:
    """A build checkpoint directory. Call :meth:`open` before use and :meth:`discard`
    once the finished tree is safely saved.

    Args:
        directory: where to keep it, conventionally ``<index>/tree.build``.
    """

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.resumed = False
        self._summaries: dict[str, str] = {}

    def open(self, fingerprint: str) -> None:
        """Load the checkpoint for ``fingerprint``, or start an empty one."""
        meta_path = self.directory / "meta.json"
        meta: dict[str, Any] = {}
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                meta = {}
        if meta.get("schema") == CHECKPOINT_SCHEMA and meta.get("fingerprint") == fingerprint:
            self._summaries = self._read_summaries()
            self.resumed = True
            log.info("resuming tree build from %s (%d summaries done)", self.directory, len(self._summaries))
            return
        if self.directory.exists():
            log.warning("discarding tree build checkpoint %s: built from other inputs or settings", self.directory)
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(meta_path, {"schema": CHECKPOINT_SCHEMA, "fingerprint": fingerprint})
        self._summaries = {}
        self.resumed = False

    # -- summaries --------------------------------------------------------------------------
    def _read_summaries(self) -> dict[str, str]:
        path = self.directory / _SUMMARIES
        out: dict[str, str] = {}
        if not path.exists():
            return out
        with path.open("r", encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    out[str(rec["key"])] = str(rec["summary"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.warning("ignoring a torn record in %s", path)
        return out

    def summary(self, key: str) -> str | None:
        """The stored summary for a request hash, if any."""
        return self._summaries.get(key)

    @property
    def n_summaries(self) -> int:
        return len(self._summaries)

    def add_summaries(self, records: Sequence[tuple[str, str, str]]) -> None:
        """Append ``(key, node_id, summary)`` records durably (flush + fsync)."""
        if not records:
            return
        path = self.directory / _SUMMARIES
        with path.open("a", encoding="utf-8") as f:
            for key, node, text in records:
                f.write(json.dumps({"key": key, "node": node, "summary": text}, ensure_ascii=False) + "\n")
                self._summaries[key] = text
            f.flush()
            os.fsync(f.fileno())

    # -- clustering results and vectors ---------------------------------------------------------
    def load_json(self, name: str) -> Any | None:
        """A saved clustering result, or None when absent or unreadable (then recomputed)."""
        path = self.directory / f"{name}.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            log.warning("ignoring unreadable checkpoint file %s (%s); recomputing it", path, e)
            return None

    def save_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.directory / f"{name}.json", obj)

    def load_vectors(self, name: str) -> tuple[list[str], np.ndarray] | None:
        """Saved node vectors, or None when absent or unreadable (then recomputed). An array
        that would need unpickling is refused by numpy (``allow_pickle=False``) and ignored."""
        path = self.directory / f"{name}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                ids = [str(i) for i in data["ids"]]
                vectors = np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            log.warning("ignoring unreadable checkpoint file %s (%s); recomputing it", path, e)
            return None
        if vectors.ndim != 2 or len(ids) != len(vectors):
            log.warning("ignoring malformed checkpoint file %s; recomputing it", path)
            return None
        return ids, vectors

    def save_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, ids=np.asarray(list(ids), dtype=str), vectors=np.asarray(vectors, dtype=np.float32))
        atomic_write_bytes(self.directory / f"{name}.npz", buf.getvalue())

    def discard(self) -> None:
        """Delete the checkpoint (call after the finished tree is saved)."""
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self._summaries = {}
