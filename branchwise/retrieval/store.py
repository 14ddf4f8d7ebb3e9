"""Vector stores: the :class:`VectorStore` Protocol and its Chroma implementation.

branchwise always supplies the vectors itself. Chroma is never given an embedding function
(``embedding_function=None``): its default one downloads an ONNX model at first use, and
vectors from another model would not match our queries anyway.

Collections use cosine space with HNSW ``ef_search = ef_construction = 200``: with Chroma's
defaults (100/100) the exact stored vector came back as the top hit for only 83-89 of 100
random queries on this hardware; 200/200 gave 95/100 (see ``../shared/OFFLINE.md``).

Store specs (resolved only here, by :func:`make_store`):

* ``"chroma"`` — a persistent Chroma under ``<index>/chroma`` (default);
* ``"chroma+http://HOST:PORT"`` (or ``chroma+https://``) — a Chroma server
  (``chroma run --path D --host 127.0.0.1 --port 8000``); collection names get the index's
  namespace prefix so several indexes can share one server.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable
from urllib.parse import urlparse

import numpy as np

from branchwise.errors import BackendError, BranchwiseError, IndexFormatError, InputError

log = logging.getLogger(__name__)

Metadata = Mapping[str, str | int | float | bool]


@runtime_checkable
class VectorStore(Protocol):
    """Named collections of (id, vector, optional document text, optional metadata).

    Similarities are cosine similarities (higher is better) of L2-normalised vectors.
    """

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        embeddings: np.ndarray,
        documents: Sequence[str] | None = None,
        metadatas: Sequence[Metadata] | None = None,
    ) -> None: ...

    def query(
        self, collection: str, embedding: np.ndarray, k: int, where: Mapping[str, Any] | None = None
    ) -> list[tuple[str, float]]: ...

    def get_embeddings(self, collection: str, ids: Sequence[str]) -> np.ndarray: ...

    def delete(self, collection: str, ids: Sequence[str]) -> None: ...

    def count(self, collection: str) -> int: ...

    def ids(self, collection: str) -> list[str]: ...

    def drop(self, collection: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ChromaConfig:
    """HNSW settings of new Chroma collections and request batching.

    Attributes:
        ef_search: HNSW search breadth (recall vs. latency); see the module docstring.
        ef_construction: HNSW build breadth.
        batch_size: ids per upsert / get request; None uses the client's maximum.
    """

    ef_search: int = 200
    ef_construction: int = 200
    batch_size: int | None = None


def _chroma_settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def _chroma_module() -> Any:
    # onnxruntime (imported by chromadb) sends telemetry DNS lookups unless this is set
    # before it loads. setdefault: a value the user exported wins. Set here, where a client
    # is created, rather than at import time of branchwise.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import chromadb
    except ImportError as e:  # pragma: no cover - chromadb is a core dependency
        from branchwise.errors import MissingDependencyError

        raise MissingDependencyError("chromadb", "core", "The vector store") from e
    return chromadb


class ChromaStore:
    """:class:`VectorStore` over a Chroma client (persistent or HTTP).

    Build one with :meth:`persistent` / :meth:`http` (or :func:`make_store`).

    Args:
        client: a ``chromadb`` client.
        namespace: prefix of every collection name (``""`` for a private persistent store).
        config: HNSW and batching settings.
    """

    def __init__(self, client: Any, namespace: str = "", config: ChromaConfig = ChromaConfig()):
        self._client = client
        self.namespace = namespace
        self.config = config
        self._collections: dict[str, Any] = {}
        self._batch = config.batch_size or int(client.get_max_batch_size())

    @classmethod
    def persistent(cls, path: str | Path, config: ChromaConfig = ChromaConfig()) -> "ChromaStore":
        """A Chroma database stored under ``path`` (created if missing).

        Raises:
            StoreUnreadable: the files there are not a Chroma database this chromadb reads
                (corrupt, truncated, or written by an incompatible version).
        """
        chromadb = _chroma_module()
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            client = chromadb.PersistentClient(path=str(path), settings=_chroma_settings())
        except Exception as e:  # chromadb raises InternalError, sqlite3 errors, ValueError...
            forget_client(str(path))
            raise StoreUnreadable(
                f"the vector store at {path} cannot be opened ({type(e).__name__}: {e}).",
                fix="rerun `branchwise index` with the same corpus and --out: the vectors are rebuilt from "
                    "chunks.jsonl (the unreadable store is kept aside as chroma.unreadable).",
            ) from e
        return cls(client, "", config)

    @classmethod
    def http(cls, host: str, port: int, *, ssl: bool = False, namespace: str = "",
             config: ChromaConfig = ChromaConfig()) -> "ChromaStore":
        """A Chroma server at ``host:port``; fails fast with a fix if it is not running."""
        chromadb = _chroma_module()
        try:
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=_chroma_settings())
            client.heartbeat()
        except Exception as e:  # connection refused, DNS, TLS...: chromadb raises many types
            raise BackendError(
                f"cannot reach the Chroma server at {host}:{port} ({e}).",
                fix=f"start it with `chroma run --path DIR --host {host} --port {port}`, or use store 'chroma'.",
                retryable=True,
            ) from e
        return cls(client, namespace, config)

    # -- collections ----------------------------------------------------------------------
    def _name(self, collection: str) -> str:
        return f"{self.namespace}-{collection}" if self.namespace else collection

    def _col(self, collection: str) -> Any:
        col = self._collections.get(collection)
        if col is None:
            col = self._client.get_or_create_collection(
                self._name(collection),
                configuration={
                    "hnsw": {
                        "space": "cosine",
                        "ef_search": self.config.ef_search,
                        "ef_construction": self.config.ef_construction,
                    }
                },
                embedding_function=None,
            )
            self._collections[collection] = col
        return col

    def _run(self, collection: str, method: str, **kwargs: Any) -> Any:
        """Call ``method(**kwargs)`` on the collection; refresh a stale handle once and retry.

        Another client (another process on the same server, an overwrite) may drop and
        recreate a collection; the cached handle then names a collection id that no
        longer exists.
        """
        try:
            return getattr(self._col(collection), method)(**kwargs)
        except Exception as ex:
            if type(ex).__name__ != "NotFoundError" or collection not in self._collections:
                raise
            self._collections.pop(collection)
            return getattr(self._col(collection), method)(**kwargs)

    # -- VectorStore ------------------------------------------------------------------------
    def upsert(self, collection: str, ids: Sequence[str], embeddings: np.ndarray,
               documents: Sequence[str] | None = None, metadatas: Sequence[Metadata] | None = None) -> None:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(ids):
            raise InputError(f"upsert of {len(ids)} ids got embeddings of shape {emb.shape}.",
                             fix="pass one embedding row per id.")
        for s in range(0, len(ids), self._batch):
            e = s + self._batch
            try:
                self._run(
                    collection, "upsert",
                    ids=list(ids[s:e]),
                    embeddings=emb[s:e],
                    documents=list(documents[s:e]) if documents is not None else None,
                    metadatas=[dict(m) for m in metadatas[s:e]] if metadatas is not None else None,
                )
            except Exception as ex:
                raise _store_error(ex, f"upsert into {collection!r}") from ex

    def query(self, collection: str, embedding: np.ndarray, k: int,
              where: Mapping[str, Any] | None = None) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        q = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        try:
            res = self._run(collection, "query", query_embeddings=q, n_results=k,
                            where=dict(where) if where else None, include=["distances"])
        except Exception as ex:
            raise _store_error(ex, f"query of {collection!r}") from ex
        # cosine space: distance = 1 - cosine similarity
        return [(i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]

    def get_embeddings(self, collection: str, ids: Sequence[str]) -> np.ndarray:
        """Vectors of ``ids`` in the order given; raises IndexFormatError if any is missing."""
        found: dict[str, np.ndarray] = {}
        for s in range(0, len(ids), self._batch):
            try:
                res = self._run(collection, "get", ids=list(ids[s : s + self._batch]), include=["embeddings"])
            except Exception as ex:
                raise _store_error(ex, f"reading vectors of {collection!r}") from ex
            found.update(zip(res["ids"], np.asarray(res["embeddings"], dtype=np.float32), strict=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise IndexFormatError(
                f"{len(missing)} ids have no vector in collection {collection!r}, e.g. {missing[:3]}.",
                fix="re-run `branchwise index` on the same corpus and --out to finish or repair the index.",
            )
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[i] for i in ids])

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        for s in range(0, len(ids), self._batch):
            self._run(collection, "delete", ids=list(ids[s : s + self._batch]))

    def count(self, collection: str) -> int:
        try:
            return int(self._run(collection, "count"))
        except BranchwiseError:
            raise
        except Exception as ex:
            raise _store_error(ex, f"count of {collection!r}") from ex

    def ids(self, collection: str) -> list[str]:
        out: list[str] = []
        while True:
            try:
                page = self._run(collection, "get", limit=self._batch, offset=len(out), include=[])["ids"]
            except BranchwiseError:
                raise
            except Exception as ex:
                raise _store_error(ex, f"listing of {collection!r}") from ex
            out.extend(page)
            if len(page) < self._batch:
                return out

    def drop(self, collection: str) -> None:
        """Delete a whole collection (no error if it does not exist)."""
        self._collections.pop(collection, None)
        try:
            self._client.delete_collection(self._name(collection))
        except Exception as ex:  # chromadb.errors.NotFoundError
            if "does not exist" not in str(ex):
                raise _store_error(ex, f"drop of {collection!r}") from ex


class StoreUnreadable(IndexFormatError):
    """A persistent Chroma directory that cannot be opened (an index build can rebuild it)."""


def forget_client(path: str) -> None:
    """Drop chromadb's cached system for ``path`` after a failed open: it caches the half-built
    system per path, so without this every later client for that path fails too."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(path, None)
    except (ImportError, AttributeError):  # pragma: no cover - another chromadb layout
        pass


class StoreInconsistent(IndexFormatError):
    """A Chroma store whose id lists and vector segments disagree (seen after a kill -9 that
    landed while Chroma was flushing its HNSW files): an index build or update rebuilds it."""


def _store_error(ex: Exception, what: str) -> BranchwiseError:
    msg = str(ex)
    if "Error finding id" in msg or "hnsw segment" in msg.lower():
        return StoreInconsistent(
            f"{what} failed: the vector store's ids and vectors are out of step ({msg}).",
            fix="rebuild the vectors: rerun `branchwise index` with the same corpus and --out, or rerun the "
                "`branchwise add` / `delete` that was interrupted (chunks.jsonl is intact; vectors are re-embedded).",
        )
    if "dimension" in msg:
        return IndexFormatError(
            f"{what} failed: {msg}.",
            fix="the vectors come from another embedder than the index's; open the index with its own embedder.",
        )
    return BackendError(f"{what} failed: {msg}.", fix="check the Chroma store (disk space, server up).",
                        retryable=True)


def make_store(spec: str, index_path: str | Path, *, namespace: str = "",
               config: ChromaConfig = ChromaConfig()) -> ChromaStore:
    """Resolve a store spec (``"chroma"``, ``"chroma+http://host:port"``) for an index."""
    if spec == "chroma":
        return ChromaStore.persistent(Path(index_path) / "chroma", config)
    if spec.startswith(("chroma+http://", "chroma+https://")):
        url = urlparse(spec.removeprefix("chroma+"))
        if not url.hostname:
            raise InputError(f"store spec {spec!r} has no host.", fix="use chroma+http://127.0.0.1:8000.")
        ssl = url.scheme == "https"
        return ChromaStore.http(url.hostname, url.port or (443 if ssl else 8000), ssl=ssl,
                                namespace=namespace, config=config)
    raise InputError(f"unknown store spec {spec!r}.", fix="use 'chroma' or 'chroma+http://HOST:PORT'.")
