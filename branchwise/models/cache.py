"""Content-addressed caches for embeddings and LLM calls (sqlite, no pickle).

* :class:`CachedEmbedder` keys vectors by ``(model name, sha256(text))``: an in-memory LRU in
  front of an optional sqlite file. Rebuilding a tree, re-running an eval or re-indexing
  an edited corpus then embeds only the new text.
* :class:`CachedLLM` keys calls by ``sha256(model, kind, messages, params | schema |
  continuations)``. With greedy decoding (the default) a rerun is then reproducible and
  free, and every call (hit or miss) is recorded in a :class:`~branchwise.models.base.UsageMeter`.

Values are stored as JSON text or raw float32 bytes, never pickled, so a cache file from an
untrusted source cannot execute code. Keys are hashes; the model name stored beside them is
passed through :func:`branchwise.config.redact` (no URL credentials), and requests' API keys
never reach this layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from branchwise.config import redact
from branchwise.models.base import (
    LLM,
    Completion,
    Embedder,
    GenParams,
    Message,
    StructuredCompletion,
    UsageMeter,
)
from branchwise.models.batch import chat_batch, continuation_logprobs_batch

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 1


def text_hash(text: str) -> str:
    """sha256 hex digest of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One connection shared across threads, serialised by the owner's lock. WAL lets a
    # second process (e.g. a parallel eval) read while this one writes.
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class CachedEmbedder:
    """An :class:`~branchwise.models.base.Embedder` wrapper that never embeds the same text twice.

    Args:
        inner: the embedder doing the work.
        cache_path: sqlite file for a persistent cache (None: memory only).
        max_memory_items: size of the in-memory LRU (vectors, ~1.5 KB each for 384-d).
    """

    def __init__(self, inner: Embedder, cache_path: Path | None = None, max_memory_items: int = 50_000) -> None:
        self.inner = inner
        self.name = redact(inner.name)  # the name is stored in the cache file: no credentials
        self.dim = inner.dim
        self.cache_path = Path(cache_path) if cache_path else None
        self.max_memory_items = max_memory_items
        self.hits = 0
        self.misses = 0
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.cache_path is not None:
            self._conn = _connect(self.cache_path)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, hash TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, hash))"
            )

    def _remember(self, h: str, vec: np.ndarray) -> None:
        self._lru[h] = vec
        self._lru.move_to_end(h)
        while len(self._lru) > self.max_memory_items:
            self._lru.popitem(last=False)

    def _lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for h in hashes:
            if h in self._lru:
                self._lru.move_to_end(h)
                found[h] = self._lru[h]
        missing = [h for h in dict.fromkeys(hashes) if h not in found]
        if self._conn is not None and missing:
            for i in range(0, len(missing), 500):  # sqlite's bound-parameter limit
                part = missing[i : i + 500]
                rows = self._conn.execute(
                    f"SELECT hash, dim, vec FROM embeddings WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                    [self.name, *part],
                ).fetchall()
                for h, dim, blob in rows:
                    if dim == self.dim:
                        vec = np.frombuffer(blob, dtype=np.float32).copy()
                        found[h] = vec
                        self._remember(h, vec)
        return found

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        hashes = [text_hash(t) for t in texts]
        with self._lock:
            found = self._lookup(hashes)
        todo: dict[str, str] = {}
        for h, t in zip(hashes, texts):
            if h not in found:
                todo.setdefault(h, t)
        with self._lock:  # a miss is a text sent to the backend; repeats in one call are hits
            self.hits += len(texts) - len(todo)
            self.misses += len(todo)
        if todo:
            new = np.asarray(self.inner.embed(list(todo.values())), dtype=np.float32)
            with self._lock:
                for h, vec in zip(todo, new):
                    found[h] = vec
                    self._remember(h, vec)
                if self._conn is not None:
                    self._conn.execute("BEGIN")  # one transaction per batch, not per vector
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO embeddings (model, hash, dim, vec) VALUES (?, ?, ?, ?)",
                        [(self.name, h, self.dim, v.astype(np.float32).tobytes()) for h, v in zip(todo, new)],
                    )
                    self._conn.execute("COMMIT")
        return np.stack([found[h] for h in hashes]).astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _call_key(model: str, kind: str, messages: Sequence[Message], extra: Any) -> str:
    payload = {
        "v": _SCHEMA_VERSION,
        "model": model,
        "kind": kind,
        "messages": [[m.role, m.content] for m in messages],
        "extra": extra,
    }
    return text_hash(json.dumps(payload, sort_keys=True, ensure_ascii=False))


class CachedLLM:
    """An :class:`~branchwise.models.base.LLM` wrapper with a call cache and a usage meter.

    Args:
        inner: the backend doing the work.
        cache_path: sqlite file (None: meter only, nothing cached).
        meter: a shared :class:`UsageMeter` (a new one by default).

    Scoring calls (:meth:`continuation_logprobs`) are recorded in the meter as completions
    with no generated tokens and the prompt's token count, so call/token budgets see them.
    """

    def __init__(self, inner: LLM, cache_path: Path | None = None, meter: UsageMeter | None = None) -> None:
        self.inner = inner
        self.name = redact(inner.name)  # the name is stored in the cache file: no credentials
        self.meter = meter if meter is not None else UsageMeter()
        self.cache_path = Path(cache_path) if cache_path else None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.cache_path is not None:
            self._conn = _connect(self.cache_path)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                "kind TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL)"
            )

    # -- storage ---------------------------------------------------------------------
    def _get(self, key: str) -> Any | None:
        if self._conn is None:
            return None
        with self._lock:
            row = self._conn.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _put(self, key: str, kind: str, value: Any) -> None:
        if self._conn is None:
            return
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO calls (key, model, kind, value, created) VALUES (?, ?, ?, ?, ?)",
                (key, self.name, kind, json.dumps(value, ensure_ascii=False), time.time()),
            )

    def _record(self, c: Completion) -> None:
        with self._lock:
            self.meter.record(c)

    def _prompt_tokens(self, messages: Sequence[Message]) -> int:
        return sum(self.inner.count_tokens(m.content) for m in messages)

    # -- LLM protocol -----------------------------------------------------------------
    def chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Completion:
        return self.chat_batch([messages], params)[0]

    def chat_batch(self, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]:
        """Cached :func:`~branchwise.models.batch.chat_batch`: only the misses reach the backend."""
        extra = dataclasses.asdict(params)
        keys = [_call_key(self.name, "chat", m, extra) for m in batch]

        def compute(idx: list[int]) -> list[dict[str, Any]]:
            return [dataclasses.asdict(c) for c in chat_batch(self.inner, [batch[i] for i in idx], params)]

        return [self._completion(v, hit) for v, hit in self._cached_many(keys, "chat", compute)]

    def chat_json(
        self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams = GenParams()
    ) -> StructuredCompletion:
        key = _call_key(self.name, "chat_json", messages, {"params": dataclasses.asdict(params), "schema": schema})

        def compute(_: list[int]) -> list[dict[str, Any]]:
            sc = self.inner.chat_json(messages, schema, params)
            return [{"value": sc.value, "repaired": sc.repaired, "completion": dataclasses.asdict(sc.completion)}]

        v, hit = self._cached_many([key], "chat_json", compute)[0]
        return StructuredCompletion(
            value=v["value"], completion=self._completion(v["completion"], hit), repaired=v["repaired"]
        )

    def continuation_logprobs(self, messages: Sequence[Message], continuations: Sequence[str]) -> list[float]:
        return self.continuation_logprobs_batch([messages], continuations)[0]

    def continuation_logprobs_batch(
        self, batch: Sequence[Sequence[Message]], continuations: Sequence[str]
    ) -> list[list[float]]:
        """Cached :func:`~branchwise.models.batch.continuation_logprobs_batch`."""
        conts = list(continuations)
        keys = [_call_key(self.name, "logprobs", m, conts) for m in batch]

        def compute(idx: list[int]) -> list[dict[str, Any]]:
            t0 = time.perf_counter()
            out = continuation_logprobs_batch(self.inner, [batch[i] for i in idx], conts)
            each = (time.perf_counter() - t0) / max(1, len(idx))
            return [
                {
                    "logprobs": [float(x) for x in lp],
                    "completion": {"text": "", "prompt_tokens": self._prompt_tokens(batch[i]), "latency_s": each},
                }
                for i, lp in zip(idx, out)
            ]

        results = []
        for v, hit in self._cached_many(keys, "logprobs", compute):
            self._completion(v["completion"], hit)
            results.append([float(x) for x in v["logprobs"]])
        return results

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    # -- helpers ----------------------------------------------------------------------
    def _cached_many(
        self, keys: list[str], kind: str, compute: Callable[[list[int]], list[dict[str, Any]]]
    ) -> list[tuple[dict[str, Any], bool]]:
        """Look every key up, compute all misses in one backend call; return (value, was_hit)."""
        found = [self._get(k) for k in keys]
        miss = [i for i, v in enumerate(found) if v is None]
        fresh = dict(zip(miss, compute(miss))) if miss else {}
        for i, v in fresh.items():
            self._put(keys[i], kind, v)
        return [(fresh[i], False) if i in fresh else (v, True) for i, v in enumerate(found)]  # type: ignore[misc]

    def _completion(self, d: dict[str, Any], hit: bool) -> Completion:
        c = Completion(**{k: v for k, v in d.items() if k in _COMPLETION_FIELDS})
        if hit:
            c.cached, c.latency_s = True, 0.0
        self._record(c)
        return c

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_COMPLETION_FIELDS = frozenset(f.name for f in dataclasses.fields(Completion))
