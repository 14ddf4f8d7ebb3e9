"""The chunk stage of an index build: ingest → chunk → embed → Chroma + BM25 + manifest.

Resumable: each stage is recorded in the manifest (``chunks``, ``embeddings``, ``bm25``) and
every write is atomic, so an interrupted build leaves a consistent directory. Re-running the
same build on the same ``out``:

* re-reads the corpus and compares its fingerprint (and the chunking parameters and
  embedder) with the manifest — a different corpus is refused unless ``overwrite=True``;
* skips chunking when it is done, and embeds only the chunks whose ids are not yet in the
  vector store (batches are stored as they are embedded), giving the same index as an
  uninterrupted build.

The tree and graph stages are run afterwards by :mod:`branchwise.indexing.pipeline` on the returned
:class:`~branchwise.retrieval.index.Index`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from branchwise.errors import IndexFormatError, InputError
from branchwise.models.base import Embedder
from branchwise.retrieval.bm25 import BM25Config
from branchwise.retrieval.chunking import ChunkingConfig, chunk_documents, document_digest
from branchwise.retrieval.index import CHUNKS, Index, check_embedder
from branchwise.retrieval.ingest import IngestConfig, load_documents
from branchwise.retrieval.manifest import MANIFEST_FILE, Manifest, corpus_fingerprint

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
    docs = load_documents(source, config.ingest)
    fingerprint = corpus_fingerprint((d.id, document_digest(d)) for d in docs)
    idx = _open_or_create(out, embedder, config, fingerprint)

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
        return Index.open(out, embedder, warn_unfinished=False)
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
