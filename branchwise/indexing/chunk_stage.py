"""The chunk stage of an index build: ingest → chunk → embed → Chroma + BM25 + manifest.

Resumable: each stage is recorded in the manifest (``chunks``, ``embeddings``, ``bm25``) and
every write is atomic, so an interrupted build leaves a consistent directory. Re-running the
same build on the same ``out``:

* re-reads the corpus and compares its fingerprint (and the chunking parameters and
  embedder) with the manifest — a different corpus is refused unless ``overwrite=True``;
* skips chunking when it is done, and embeds only the chunks whose ids are not yet in the
  vector store (batches are stored as they are embedded), giving the same index as an
  uninterrupted build;
* repairs what a crash or a careless hand left behind: a finished stage whose files or
  vectors are missing or out of step (:meth:`Index.problems`) is redone, and a Chroma
  directory that cannot be opened is moved aside (``chroma.unreadable``) and rebuilt from
  ``chunks.jsonl``.

The manifest records where the corpus came from and which inputs were left out
(``extra["ingest"]``: ``source``, ``skipped``), so errors can name the exact command to rerun
and ``branchwise index`` can list what ``--on-error skip`` left out.

The tree and graph stages are run afterwards by :mod:`branchwise.indexing.pipeline` on the returned
:class:`~branchwise.retrieval.index.Index`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time

import numpy as np
from dataclasses import dataclass, field
from pathlib import Path

from branchwise.errors import IndexFormatError, InputError
from branchwise.models.base import Embedder
from branchwise.retrieval.bm25 import BM25Config
from branchwise.retrieval.chunking import ChunkingConfig, chunk_documents, document_digest
from branchwise.retrieval.index import CHUNKS, NODES, ENTITIES, Index, check_embedder
from branchwise.retrieval.ingest import IngestConfig, SkippedInput, ingest
from branchwise.retrieval.manifest import MANIFEST_FILE, Manifest, corpus_fingerprint
from branchwise.retrieval.chunkstore import CHUNKS_FILE, ChunksUnreadable
from branchwise.retrieval.store import StoreUnreadable, forget_client

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexBuildConfig:
    """Settings of the chunk stage of a build.

    Attributes:
        ingest: how documents are read (error policy, encodings, extensions).
        chunking: chunk and overlap sizes in tokens.
        bm25: BM25 parameters.
        store: vector store spec: ``"chroma"`` or ``"chroma+http://HOST:PORT"``.
        embed_batch_size: texts per embedder call (also the unit of resumption).
        overwrite: replace an index of another corpus / embedder / chunking at ``out``.
        embedder_spec: spec string recorded in the manifest so ``Index.open`` can recreate
            the embedder (defaults to the embedder's ``spec`` attribute, if any).
        llm_spec: LLM spec recorded in the manifest (used by the later stages).
    """

    ingest: IngestConfig = field(default_factory=IngestConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    store: str = "chroma"
    embed_batch_size: int = 64
    overwrite: bool = False
    embedder_spec: str | None = None
    llm_spec: str | None = None

    def __post_init__(self) -> None:
        if self.embed_batch_size < 1:
            raise InputError(f"embed_batch_size={self.embed_batch_size} must be >= 1.", fix="use e.g. 64.")


def build_chunk_index(
    source: str | Path,
    out: str | Path,
    embedder: Embedder,
    config: IndexBuildConfig = IndexBuildConfig(),
    progress: bool = True,
) -> Index:
    """Build (or resume building) the chunk-level index of ``source`` in ``out``.

    Raises:
        InputError: bad input documents (see :func:`load_documents`), or ``out`` is a
            non-index folder.
        IndexFormatError: ``out`` holds an index of another corpus, chunking, store or
            embedder and ``overwrite`` is False.
    """
    t0 = time.perf_counter()
    out = Path(out)
    report = ingest(source, config.ingest)
    docs = report.documents
    fingerprint = corpus_fingerprint((d.id, document_digest(d)) for d in docs)
    idx = _open_or_create(out, embedder, config, fingerprint)
    _record_ingest(idx, source, report.skipped)

    if not idx.manifest.stage_done("chunks"):
        idx.set_stage("chunks", "in_progress")
        chunks = chunk_documents(docs, config.chunking, progress=progress)
        idx.chunks.replace_all(chunks)
        idx.update_manifest(counts={**idx.manifest.counts, "documents": len(docs), "chunks": len(chunks)})
        idx.set_stage("chunks", "done")

    idx.set_stage("embeddings", "in_progress")
    stored = set(idx.store.ids(CHUNKS))
    todo = [c for c in idx.chunks if c.id not in stored]
    orphans = sorted(stored - set(idx.chunks.ids()))
    if orphans:
        idx.store.delete(CHUNKS, orphans)
    if todo:
        log.info("embedding %d of %d chunks (%d already stored)",
                 len(todo), len(idx.chunks), len(stored) - len(orphans))
        idx.embed_chunks(todo, batch_size=config.embed_batch_size, progress=progress)
    idx.set_stage("embeddings", "done")

    if not idx.manifest.stage_done("bm25"):
        idx.set_stage("bm25", "in_progress")
        idx.rebuild_bm25(config.bm25)
        idx.set_stage("bm25", "done")

    log.info("chunk index at %s ready: %d documents, %d chunks (%.1f s)",
             out, len(docs), len(idx.chunks), time.perf_counter() - t0)
    return idx


def _open_or_create(out: Path, embedder: Embedder, config: IndexBuildConfig, fingerprint: str) -> Index:
    """Resume the index at ``out`` if it was built from the same inputs, else create one."""

    def create(overwrite: bool) -> Index:
        return Index.create(
            out, embedder, config.store, embedder_spec=config.embedder_spec, llm_spec=config.llm_spec,
            chunking=config.chunking, corpus_fingerprint=fingerprint, overwrite=overwrite,
        )

    if not (out / MANIFEST_FILE).exists():
        return create(overwrite=False)
    old = Manifest.load(out)
    why = _mismatch(old, embedder, config, fingerprint, out)
    if why is None:
        log.info("resuming the build at %s (stages: %s)", out, old.stages or "none")
        return _repair(_open_for_resume(out, embedder))
    if not config.overwrite:
        raise IndexFormatError(
            f"{out} already holds an index built from {why}.",
            fix="pass overwrite=True (`--overwrite`) to replace it, or choose another --out.",
        )
    log.warning("replacing the index at %s (%s)", out, why)
    return create(overwrite=True)


def _mismatch(old: Manifest, embedder: Embedder, config: IndexBuildConfig, fingerprint: str, out: Path) -> str | None:
    """Why the index at ``out`` cannot be resumed with these inputs, or None if it can."""
    if old.corpus_fingerprint != fingerprint:
        return f"a different corpus (fingerprint {old.corpus_fingerprint[:12]}…, this one {fingerprint[:12]}…)"
    if old.chunking != dataclasses.asdict(config.chunking):
        return f"other chunking parameters ({old.chunking} vs {dataclasses.asdict(config.chunking)})"
    if old.store != config.store:
        return f"another vector store ({old.store!r} vs {config.store!r})"
    try:
        check_embedder(old, embedder, out)
    except IndexFormatError:
        return f"another embedder ({old.embedder.name!r}, dim {old.embedder.dim})"
    return None


#: stages that depend on each stage's output: redoing one redoes these too
_DOWNSTREAM = {"chunks": ("chunks", "embeddings", "bm25", "tree", "graph"), "embeddings": ("embeddings",),
               "bm25": ("bm25",), "tree": ("tree",), "graph": ("graph",)}


def _open_for_resume(out: Path, embedder: Embedder) -> Index:
    """Open ``out`` to resume its build; an unreadable Chroma directory is moved aside (to
    ``chroma.unreadable``) and the stages whose vectors it held are redone."""
    redo: tuple[str, ...] = ()
    for _ in range(3):  # at most: the chunks, then the store
        try:
            idx = Index.open(out, embedder, warn_unfinished=False, check=False)
            break
        except ChunksUnreadable as e:
            broken, why, redo = out / CHUNKS_FILE, e.message, (*redo, *_DOWNSTREAM["chunks"])
        except StoreUnreadable as e:
            broken, why, redo = out / "chroma", e.message, (*redo, "embeddings", "tree", "graph")
        aside = broken.with_name(broken.name + ".unreadable")
        log.warning("%s Moving it aside to %s and rebuilding it.", why, aside)
        forget_client(str(out / "chroma"))
        if aside.is_dir():
            shutil.rmtree(aside)
        broken.rename(aside)
    else:  # pragma: no cover - a third failure is not one of the two above
        idx = Index.open(out, embedder, warn_unfinished=False, check=False)
    for stage in dict.fromkeys(redo):
        if stage in idx.manifest.stages:
            idx.set_stage(stage, "in_progress")
    return idx


def _repair(idx: Index) -> Index:
    """Mark for redoing every finished stage whose files or vectors are missing or out of step."""
    problems = idx.problems(deep=True)
    if any(p.stage == "store" for p in problems):  # ids and vectors out of step: start the store afresh
        log.warning("index %s: %s; rebuilding the vector store", idx.path,
                    next(p.message for p in problems if p.stage == "store"))
        _move_store_aside(idx)
        idx = Index.open(idx.path, idx.embedder, warn_unfinished=False, check=False)
        for stage in ("embeddings", "tree", "graph"):
            if stage in idx.manifest.stages:
                idx.set_stage(stage, "in_progress")
        problems = idx.problems(deep=True)
    redo = {s for p in problems if p.stage in _DOWNSTREAM and idx.manifest.stage_done(p.stage)
            for s in _DOWNSTREAM[p.stage]}
    for p in problems:
        if p.stage in redo:
            log.warning("index %s: %s; redoing the %r stage", idx.path, p.message, p.stage)
    for stage in sorted(redo):
        if stage in idx.manifest.stages:
            idx.set_stage(stage, "in_progress")
    if "tree" in redo:  # its summary vectors are rewritten from the rebuilt tree
        idx.store.drop(NODES)
        idx.tree_path.unlink(missing_ok=True)
    if "graph" in redo:
        idx.store.drop(ENTITIES)
    return idx


def _move_store_aside(idx: Index) -> None:
    """Move ``chroma/`` to ``chroma.unreadable/`` (replacing an older one) and forget its client."""
    if idx.manifest.store != "chroma":
        raise IndexFormatError(f"the vector store of the index at {idx.path} ({idx.manifest.store}) is out of step.",
                               fix="rebuild the index: `branchwise index PATH --out DIR --overwrite`.")
    live, aside = idx.path / "chroma", idx.path / "chroma.unreadable"
    forget_client(str(live))
    if aside.is_dir():
        shutil.rmtree(aside)
    if live.exists():
        live.rename(aside)


def rebuild_vectors(idx: Index, *, progress: bool = False) -> None:
    """Rebuild every vector of ``idx`` from its files (chunks.jsonl, tree.json, graph/) into a
    fresh Chroma directory: the repair of a store whose ids and vectors are out of step, for an
    index whose corpus has changed since the build (so rerunning the build is no option). The
    embedder's cache in ``cache/`` makes the re-embedding cheap."""
    from branchwise.indexing.cluster import normalize
    from branchwise.retrieval.store import make_store

    log.warning("rebuilding the vector store of %s from its files", idx.path)
    _move_store_aside(idx)
    idx.store = make_store(idx.manifest.store, idx.path, namespace=idx.manifest.store_namespace)
    idx.embed_chunks(list(idx.chunks), progress=progress)
    tree = idx.tree
    if tree is not None:
        internal = [n for n in tree.nodes.values() if not n.is_leaf]
        if idx.manifest.extra.get("tree", {}).get("node_vectors") == "centroid":
            vecs = np.stack([normalize(idx.chunk_embeddings([leaf.chunk_id for leaf in tree.leaves_under(n.id)
                                                             if leaf.chunk_id in idx.chunks]).sum(axis=0, keepdims=True))[0]
                             for n in internal]) if internal else np.zeros((0, idx.embedder.dim))
        else:
            vecs = normalize(idx.embedder.embed([n.summary for n in internal])) if internal else None
        if internal:
            idx.store.upsert(NODES, [n.id for n in internal], np.asarray(vecs, dtype=np.float32),
                             [n.summary for n in internal], [{"level": n.level} for n in internal])
    if idx.manifest.stage_done("graph"):
        from branchwise.graph.build import sync_entity_vectors
        from branchwise.graph.types import KnowledgeGraph

        graph = KnowledgeGraph.load(idx.graph_dir)
        sync_entity_vectors(graph, idx.embedder, idx.store, [e.id for e in graph.entities()])


def _record_ingest(idx: Index, source: str | Path, skipped: list[SkippedInput]) -> None:
    """Where the corpus came from and what was left out, in the manifest (for errors and ``info``)."""
    record = {"source": str(Path(source).expanduser().absolute()), "n_skipped": len(skipped),
              "skipped": [s.to_dict() for s in skipped[:100]]}
    if idx.manifest.extra.get("ingest") != record:
        idx.update_manifest(extra={**idx.manifest.extra, "ingest": record})
