"""The chunk store: ``chunks.jsonl``, one :class:`~branchwise.types.Chunk` per line.

Chunk texts live here (not only in Chroma) so that reading an index never needs the vector
store, the file diffs cleanly, and any tool can read it. The whole file is held in memory
(ids → chunks, in file order) and rewritten atomically on every change, so a crash leaves
either the old or the new file, never a torn one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from branchwise.errors import IndexFormatError
from branchwise.files import atomic_write_jsonl
from branchwise.types import Chunk

CHUNKS_FILE = "chunks.jsonl"


class ChunksUnreadable(IndexFormatError):
    """``chunks.jsonl`` has a line that is not a chunk record (an index build can remake it)."""


class ChunkStore:
    """In-memory view of ``chunks.jsonl`` with atomic persistence.

    Args:
        path: the ``chunks.jsonl`` file (need not exist yet).
        chunks: initial chunks (normally use :meth:`load`).
    """

    def __init__(self, path: Path, chunks: Iterable[Chunk] = ()):
        self.path = Path(path)
        self._chunks: dict[str, Chunk] = {c.id: c for c in chunks}

    @classmethod
    def load(cls, path: Path) -> "ChunkStore":
        """Read ``path``; a missing file is an empty store, a corrupt line an IndexFormatError."""
        path = Path(path)
        store = cls(path)
        if not path.exists():
            return store
        with path.open(encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    chunk = Chunk.from_dict(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    raise ChunksUnreadable(
                        f"{path}:{lineno} is not a valid chunk record ({e}).",
                        fix=f"rerun `branchwise index PATH --out {path.parent}` with the corpus it was built from: "
                            "the chunks are remade from it (the damaged file is kept aside as chunks.jsonl.unreadable).",
                    ) from e
                store._chunks[chunk.id] = chunk
        return store

    # -- reading ----------------------------------------------------------------------------
    def get(self, chunk_id: str) -> Chunk:
        """The chunk with this id; KeyError naming the id if absent."""
        try:
            return self._chunks[chunk_id]
        except KeyError:
            raise KeyError(f"no chunk {chunk_id!r} in {self.path}") from None

    def ids(self) -> list[str]:
        """Chunk ids in file order."""
        return list(self._chunks)

    def doc_ids(self) -> list[str]:
        """Distinct document ids, in order of first appearance."""
        return list(dict.fromkeys(c.doc_id for c in self._chunks.values()))

    def by_doc(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document, by ordinal."""
        return sorted((c for c in self._chunks.values() if c.doc_id == doc_id), key=lambda c: c.ordinal)

    def __iter__(self) -> Iterator[Chunk]:
        return iter(list(self._chunks.values()))

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._chunks

    # -- writing ----------------------------------------------------------------------------
    def save(self) -> None:
        """Rewrite the file atomically."""
        atomic_write_jsonl(self.path, (c.to_dict() for c in self._chunks.values()))

    def replace_all(self, chunks: Iterable[Chunk]) -> None:
        """Make the store exactly ``chunks`` (in that order) and save."""
        self._chunks = {c.id: c for c in chunks}
        self.save()

    def add(self, chunks: Iterable[Chunk]) -> list[str]:
        """Insert or replace chunks by id and save; returns the ids that are new or changed."""
        changed = []
        for c in chunks:
            if self._chunks.get(c.id) != c:
                changed.append(c.id)
            self._chunks[c.id] = c
        if changed:
            self.save()
        return changed

    def remove(self, chunk_ids: Iterable[str]) -> list[str]:
        """Delete chunks by id and save; returns the ids that were present."""
        removed = [i for i in dict.fromkeys(chunk_ids) if self._chunks.pop(i, None) is not None]
        if removed:
            self.save()
        return removed
