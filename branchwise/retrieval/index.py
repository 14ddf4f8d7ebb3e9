"""The index directory as an object: manifest, chunks, vectors, BM25, tree (see
``docs/architecture.md`` for the layout and the contract).

An :class:`Index` is created empty by :meth:`Index.create` and filled by the build stages
(:func:`branchwise.indexing.chunk_stage.build_chunk_index` for chunks, vectors and BM25; the tree
and graph builders through :meth:`save_tree` and ``graph_dir``). :meth:`Index.open` reopens
it, refusing an embedder other than the one that built it: vectors from two models are not
comparable, and a silent mismatch would return confident nonsense.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

import numpy as np
from tqdm.auto import tqdm

from branchwise.errors import BackendError, IndexFormatError, InputError
from branchwise.models.base import Embedder
from branchwise.retrieval.bm25 import BM25_DIR, BM25Config, BM25Index
from branchwise.retrieval.chunking import ChunkingConfig
from branchwise.retrieval.chunkstore import CHUNKS_FILE, ChunkStore
from branchwise.retrieval.manifest import (MANIFEST_FILE, EmbedderInfo, Manifest, StageState, corpus_fingerprint,
                                          no_index_error)
from branchwise.retrieval.search import BM25Retriever, DenseRetriever, HybridConfig, HybridRetriever, Retriever
from branchwise.retrieval.store import VectorStore, make_store
from branchwise.retrieval.tree import Tree
from branchwise.types import Chunk, ScoredChunk

if TYPE_CHECKING:
    from branchwise.retrieval.consistency import IndexProblem

log = logging.getLogger(__name__)

CHUNKS = "chunks"
NODES = "nodes"
ENTITIES = "entities"
TREE_FILE = "tree.json"
#: What an overwrite deletes. ``cache/`` survives: its LLM/embedding caches are keyed by
#: content, so a rebuild reuses them. ``chroma/`` collections are dropped, not rm'd, because
#: Chroma keeps a per-path client alive inside the process.
_INDEX_ENTRIES = (MANIFEST_FILE, CHUNKS_FILE, TREE_FILE, "tree.build", "graph", BM25_DIR)


def embedding_text(chunk: Chunk) -> str:
    """The text embedded for a chunk: its title line, then its text.

    Titles carry the subject that a chunk's sentences often only refer to ("He was born...").
    """
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


class Index:
    """An opened index directory. Use :meth:`create` or :meth:`open`, not the constructor."""

    def __init__(self, path: Path, manifest: Manifest, embedder: Embedder, store: VectorStore):
        self.path = Path(path)
        self._manifest = manifest
        self.embedder = embedder
        self.store = store
        self.chunks = ChunkStore.load(self.path / CHUNKS_FILE)
        self._tree: Tree | None = None
        self._bm25: BM25Index | None = None

    # -- lifecycle --------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        embedder: Embedder,
        store: str = "chroma",
        *,
        embedder_spec: str | None = None,
        llm_spec: str | None = None,
        chunking: ChunkingConfig = ChunkingConfig(),
        corpus_fingerprint: str = "",
        overwrite: bool = False,
    ) -> "Index":
        """Create a new, empty index directory (or replace an index there if ``overwrite``).

        Raises:
            IndexFormatError: an index already exists at ``path`` and ``overwrite`` is False.
            InputError: ``path`` is a non-empty folder that is not an index (never deleted).
        """
        path = Path(path)
        if (path / MANIFEST_FILE).exists():
            if not overwrite:
                raise IndexFormatError(
                    f"an index already exists at {path}.",
                    fix="open it with Index.open, pass overwrite=True (--overwrite), or choose another --out.",
                )
            _clear_index_dir(path)
        elif path.exists() and (not path.is_dir() or any(p.name != "cache" for p in path.iterdir())):
            raise InputError(
                f"{path} exists and is not a branchwise index; refusing to write into it.",
                fix="choose a new or empty --out folder.",
            )
        path.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(
            embedder=EmbedderInfo(embedder.name, int(embedder.dim), embedder_spec or getattr(embedder, "spec", None)),
            chunking=dataclasses.asdict(chunking),
            corpus_fingerprint=corpus_fingerprint,
            store=store,
            store_namespace="" if store == "chroma" else f"bw-{uuid.uuid4().hex[:12]}",
            llm=llm_spec,
        )
        manifest.save(path)  # first: a folder holding only a store and no manifest is not resumable
        try:
            vector_store = make_store(store, path, namespace=manifest.store_namespace)
        except BaseException:
            (path / MANIFEST_FILE).unlink(missing_ok=True)
            raise
        log.info("created index at %s (embedder %s, store %s)", path, embedder.name, store)
        return cls(path, manifest, embedder, vector_store)

    @classmethod
    def open(cls, path: str | Path, embedder: Embedder | None = None, *, warn_unfinished: bool = True,
             check: bool = True) -> "Index":
        """Open an existing index; ``embedder=None`` recreates the one named in the manifest.

        ``check`` (default) refuses an index that would answer wrongly: an interrupted build
        or update, or a part missing or out of step with the others (see :meth:`problems`);
        the error names the command that finishes or repairs it. The resuming build, the
        updates (which repair) and ``branchwise info`` (which reports) open with
        ``check=False``; ``warn_unfinished`` then logs the problems instead.

        Raises:
            IndexFormatError: no index at ``path``, a corrupt manifest, an embedder that
                differs from the one the index was built with, or (with ``check``) a problem.
        """
        path = Path(path)
        if not path.is_dir():
            raise no_index_error(path)
        manifest = Manifest.load(path)
        info = manifest.embedder
        if embedder is None:
            if not info.spec:
                raise IndexFormatError(
                    f"the index at {path} was built with embedder {info.name!r}, whose spec was not recorded.",
                    fix="pass that embedder object: Index.open(path, embedder=...).",
                )
            from branchwise.models.factory import make_embedder

            embedder = make_embedder(info.spec, cache_dir=path / "cache")
            check_embedder(manifest, embedder, path, recorded=True)
        else:
            check_embedder(manifest, embedder, path)
        index = cls(path, manifest, embedder, make_store(manifest.store, path, namespace=manifest.store_namespace))
        if check or warn_unfinished:
            problems = index.problems()
            if problems and check:
                raise IndexFormatError(
                    f"the index at {path} cannot be used as it is: " + "; ".join(p.message for p in problems) + ".",
                    fix=index.repair_hint(problems),
                )
            if problems:
                log.warning("index %s: %s (%s)", path, "; ".join(p.message for p in problems),
                            index.repair_hint(problems))
        return index

    # -- consistency (see branchwise.retrieval.consistency) ---------------------------------
    def problems(self, *, deep: bool = False) -> list["IndexProblem"]:
        """What would make this index answer wrongly (:func:`~branchwise.retrieval.consistency.find_problems`)."""
        from branchwise.retrieval.consistency import find_problems

        return find_problems(self, deep=deep)

    def repair_hint(self, problems: Sequence["IndexProblem"]) -> str:
        """The command that finishes or repairs this index, for ``problems``."""
        from branchwise.retrieval.consistency import repair_hint

        return repair_hint(self, problems)

    # -- manifest -------------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        return self._manifest

    def update_manifest(self, **changes: Any) -> Manifest:
        """Replace manifest fields (``dataclasses.replace``) and write it atomically."""
        self._manifest = dataclasses.replace(self._manifest, **changes)
        self._manifest.save(self.path)
        return self._manifest

    def set_stage(self, stage: str, state: StageState) -> None:
        """Record a build stage as ``"in_progress"`` or ``"done"`` (resumable builds)."""
        self._manifest = self._manifest.with_stage(stage, state)
        self._manifest.save(self.path)

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    @property
    def graph_dir(self) -> Path:
        return self.path / "graph"

    @property
    def tree_path(self) -> Path:
        return self.path / TREE_FILE

    # -- vectors ----------------------------------------------------------------------------------
    def chunk_embeddings(self, ids: Sequence[str]) -> np.ndarray:
        """Chunk vectors, shape ``(len(ids), dim)``, in the order of ``ids``."""
        return self._vectors(CHUNKS, ids)

    def node_embeddings(self, ids: Sequence[str]) -> np.ndarray:
        """Summary vectors of internal tree nodes, in the order of ``ids``."""
        return self._vectors(NODES, ids)

    def _vectors(self, collection: str, ids: Sequence[str]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self._manifest.embedder.dim), dtype=np.float32)
        return self.store.get_embeddings(collection, list(ids))

    def embed_chunks(self, chunks: Sequence[Chunk], *, batch_size: int = 64, progress: bool = False) -> int:
        """Embed ``chunks`` in batches and upsert them into the ``chunks`` collection.

        Each batch is stored as soon as it is embedded, so an interrupted run keeps its work
        (a re-run embeds only what is missing). Returns the number of embedder calls.
        """
        calls = 0
        bar = tqdm(total=len(chunks), desc="embedding chunks", unit="chunk", disable=not progress)
        with bar:
            for s in range(0, len(chunks), batch_size):
                batch = chunks[s : s + batch_size]
                vecs = self._check_vectors(self.embedder.embed([embedding_text(c) for c in batch]), len(batch))
                calls += 1
                self.store.upsert(
                    CHUNKS, [c.id for c in batch], vecs, [c.text for c in batch],
                    [{"doc_id": c.doc_id, "ordinal": c.ordinal} for c in batch],
                )
                bar.update(len(batch))
        return calls

    def _check_vectors(self, vecs: np.ndarray, n: int) -> np.ndarray:
        vecs = np.asarray(vecs, dtype=np.float32)
        dim = self._manifest.embedder.dim
        if vecs.shape != (n, dim):
            raise IndexFormatError(
                f"embedder {self.embedder.name!r} returned shape {vecs.shape}, expected ({n}, {dim}).",
                fix="use the embedder the index was built with.",
            )
        return vecs

    # -- tree -------------------------------------------------------------------------------------
    @property
    def tree(self) -> Tree | None:
        """The semantic tree from ``tree.json`` (loaded on first access), or None if not built."""
        if self._tree is None and self.tree_path.exists():
            try:
                self._tree = Tree.load(self.tree_path)
            except IndexFormatError as e:
                from branchwise.retrieval.consistency import IndexProblem

                raise IndexFormatError(e.message, fix=self.repair_hint([IndexProblem("tree", e.message)])) from e
        return self._tree

    def save_tree(self, tree: Tree, node_embeddings: dict[str, np.ndarray]) -> None:
        """Persist ``tree`` and the summary vectors of its internal nodes.

        ``node_embeddings`` may hold only the nodes whose summaries changed (incremental
        updates). Vectors are stored first, then ``tree.json`` is replaced atomically, then
        vectors of nodes no longer in the tree are deleted.

        Raises:
            IndexFormatError: the tree is invalid or its leaves do not match the chunks.
            InputError: a vector is given for a node that is not an internal node.
        """
        tree.validate(set(self.chunks.ids()))
        internal = {n.id for n in tree.nodes.values() if not n.is_leaf}
        unknown = sorted(set(node_embeddings) - internal)
        if unknown:
            raise InputError(f"node embeddings given for non-internal nodes {unknown[:5]}.",
                             fix="pass vectors only for internal (summary) nodes.")
        if node_embeddings:
            ids = sorted(node_embeddings)
            vecs = self._check_vectors(np.stack([np.asarray(node_embeddings[i]) for i in ids]), len(ids))
            self.store.upsert(NODES, ids, vecs, [tree.nodes[i].summary for i in ids],
                              [{"level": tree.nodes[i].level} for i in ids])
        tree.save(self.tree_path)
        stale = [i for i in self.store.ids(NODES) if i not in internal]
        if stale:
            self.store.delete(NODES, stale)
        self._tree = tree
        self._manifest = self._manifest.with_counts(nodes=len(internal))
        self._manifest.save(self.path)

    # -- search -----------------------------------------------------------------------------------
    @property
    def bm25(self) -> BM25Index:
        """The BM25 index (loaded on first use)."""
        if self._bm25 is None:
            from branchwise.retrieval.consistency import IndexProblem

            if not (self.path / BM25_DIR).exists():
                raise IndexFormatError(f"the index at {self.path} has no BM25 index.",
                                       fix=self.repair_hint([IndexProblem("bm25", "no BM25 index")]))
            try:
                self._bm25 = BM25Index.load(self.path / BM25_DIR)
            except (ValueError, OSError, KeyError) as e:  # e.g. an array numpy would have to unpickle
                raise IndexFormatError(f"the BM25 index at {self.path / BM25_DIR} is unreadable ({e}).",
                                       fix=self.repair_hint([IndexProblem("bm25", "unreadable")])) from e
        return self._bm25

    def rebuild_bm25(self, config: BM25Config | None = None) -> BM25Index:
        """Re-index all chunks lexically (BM25 statistics are corpus-wide) and save."""
        config = config or (self._bm25.config if self._bm25 is not None else BM25Config())
        self._bm25 = BM25Index.build(list(self.chunks), config)
        self._bm25.save(self.path / BM25_DIR)
        return self._bm25

    def retriever(self, kind: Literal["dense", "bm25", "hybrid"] = "hybrid",
                  hybrid: HybridConfig = HybridConfig()) -> Retriever:
        """A :class:`~branchwise.retrieval.search.Retriever` over this index."""
        if kind == "dense":
            return DenseRetriever(self.embedder, self.store, CHUNKS)
        if kind == "bm25":
            return BM25Retriever(self.bm25)
        if kind == "hybrid":
            return HybridRetriever([self.retriever("dense"), self.retriever("bm25")], hybrid)
        raise InputError(f"unknown retriever kind {kind!r}.", fix="use 'dense', 'bm25' or 'hybrid'.")

    def search_dense(self, query: str, k: int = 10) -> list[ScoredChunk]:
        return self.retriever("dense").retrieve(query, k)

    def search_bm25(self, query: str, k: int = 10) -> list[ScoredChunk]:
        return self.retriever("bm25").retrieve(query, k)

    def search_hybrid(self, query: str, k: int = 10) -> list[ScoredChunk]:
        """Reciprocal rank fusion (k=60) of dense and BM25 results."""
        return self.retriever("hybrid").retrieve(query, k)

    # -- incremental updates ---------------------------------------------------------------------
    def add_chunks(self, chunks: Iterable[Chunk], *, batch_size: int = 64, progress: bool = False) -> list[str]:
        """Insert or replace chunks; only new or changed ones are embedded.

        Returns the ids of the chunks that were new or changed (the tree must place them).
        """
        changed = [c for c in chunks if c.id not in self.chunks or self.chunks.get(c.id) != c]
        if changed:
            self.embed_chunks(changed, batch_size=batch_size, progress=progress)
            self.chunks.add(changed)
            self._after_chunk_change()
        return [c.id for c in changed]

    def remove_docs(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete every chunk of these documents; returns the removed chunk ids."""
        gone = set(doc_ids)
        return self.remove_chunks([c.id for c in self.chunks if c.doc_id in gone])

    def remove_chunks(self, chunk_ids: Iterable[str]) -> list[str]:
        """Delete these chunks (vectors, ``chunks.jsonl``, BM25); returns the ids that were present.

        The tree is not edited here: see :func:`branchwise.indexing.pipeline.delete_documents`.
        """
        ids = [i for i in dict.fromkeys(chunk_ids) if i in self.chunks]
        if ids:
            self.store.delete(CHUNKS, ids)
            self.chunks.remove(ids)
            self._after_chunk_change()
        return ids

    def _after_chunk_change(self) -> None:
        self.rebuild_bm25()
        self._manifest = dataclasses.replace(
            self._manifest.with_counts(documents=len(self.chunks.doc_ids()), chunks=len(self.chunks)),
            corpus_fingerprint=self.fingerprint_from_chunks(),
        )
        self._manifest.save(self.path)

    def fingerprint_from_chunks(self) -> str:
        """The corpus fingerprint recomputed from ``chunks.jsonl`` (see ``corpus_fingerprint``)."""
        digests: dict[str, str] = {}
        texts: dict[str, list[str]] = {}
        for c in self.chunks:
            if "doc_sha256" in c.metadata:
                digests[c.doc_id] = str(c.metadata["doc_sha256"])
            texts.setdefault(c.doc_id, []).append(c.text)
        for doc_id, parts in texts.items():  # chunks made elsewhere: hash their texts
            digests.setdefault(doc_id, hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest())
        return corpus_fingerprint(digests.items())

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, chunks={len(self.chunks)}, embedder={self.embedder.name!r})"


def check_embedder(manifest: Manifest, embedder: Embedder, path: Path, *, recorded: bool = False) -> None:
    """Raise IndexFormatError unless ``embedder`` is the one the index was built with.

    ``recorded``: ``embedder`` was made from the spec in the manifest, so the model behind
    that spec has changed since the build (passing the same spec again cannot help).
    """
    info = manifest.embedder
    if embedder.name == info.name and int(embedder.dim) == info.dim:
        return
    rebuild = f"rebuild it with yours: `branchwise index PATH --out {path} --overwrite`"
    if recorded:
        raise IndexFormatError(
            f"the index at {path} was built with embedder {info.name!r} (dim {info.dim}), but its recorded "
            f"spec {info.spec!r} now loads {embedder.name!r} (dim {embedder.dim}).",
            fix=f"{rebuild}, or give the embedder it was built with (--embedder SPEC).",
        )
    how = f"--embedder {info.spec}" if info.spec else f"an embedder named {info.name!r}"
    raise IndexFormatError(
        f"the index at {path} was built with embedder {info.name!r} (dim {info.dim}), "
        f"not {embedder.name!r} (dim {embedder.dim}).",
        fix=f"use the embedder it was built with ({how}), or {rebuild}.",
    )


def _clear_index_dir(path: Path) -> None:
    """Remove an index's contents (keeping ``cache/``) and drop its vector collections."""
    try:
        old = Manifest.load(path)
        store = make_store(old.store, path, namespace=old.store_namespace)
        for col in (CHUNKS, NODES, ENTITIES):
            store.drop(col)
    except IndexFormatError:  # corrupt manifest: the local store is all we can clear
        shutil.rmtree(path / "chroma", ignore_errors=True)
    except BackendError as e:  # server down: its collections stay behind, under an unused namespace
        log.warning("could not drop the old index's collections: %s", e)
    for name in _INDEX_ENTRIES:
        p = path / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    log.info("cleared the old index at %s", path)
