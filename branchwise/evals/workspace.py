"""The index an evaluation runs on: built from the dataset's corpus under the run folder.

The corpus is written once as ``corpus.jsonl`` (``id``, ``title``, ``text``) and indexed with
the regular build (:func:`branchwise.indexing.chunk_stage.build_chunk_index`), so evaluations
measure the same code path users run. The build is resumable and reused: a second run on
the same corpus and embedder opens the existing index; a different corpus is refused by the
build's fingerprint check rather than silently mixed.

The semantic tree is built only when a requested system needs it (RAPTOR, the navigator,
the agent's tree route), through the tree stage's public builder, because summarising a
corpus costs LLM calls.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from branchwise.errors import InputError
from branchwise.evals.datasets.types import EvalDataset
from branchwise.models.base import LLM, Embedder
from branchwise.types import Usage
from branchwise.files import atomic_write_jsonl

log = logging.getLogger(__name__)

CORPUS_FILE = "corpus.jsonl"


def write_corpus(dataset: EvalDataset, path: Path) -> Path:
    """Write the dataset's documents as JSONL records for the ingest stage (atomic)."""
    atomic_write_jsonl(path, ({"id": d.id, "title": d.title, "text": d.text} for d in dataset.corpus))
    return path


def prepare_index(
    dataset: EvalDataset,
    index_dir: Path,
    embedder: Embedder,
    *,
    embedder_spec: str | None = None,
    llm_spec: str | None = None,
    progress: bool = True,
) -> Any:
    """Build (or reopen) the chunk index of ``dataset`` at ``index_dir``."""
    from branchwise.indexing.chunk_stage import IndexBuildConfig, build_chunk_index

    corpus = write_corpus(dataset, index_dir.parent / f"{index_dir.name}.{CORPUS_FILE}")
    config = IndexBuildConfig(embedder_spec=embedder_spec, llm_spec=llm_spec)
    return build_chunk_index(corpus, index_dir, embedder, config, progress=progress)


def ensure_tree(
    index: Any, llm_factory: Callable[[], LLM] | None, *, summary_mode: str = "llm", progress: bool = True
) -> Usage | None:
    """Build the index's semantic tree if it has none; returns the build's usage (None if reused).

    Uses the tree stage's public pieces (:func:`branchwise.indexing.tree_build.build_tree`, the
    summarizer, a resumable :class:`~branchwise.indexing.checkpoint.BuildCheckpoint` in
    ``<index>/tree.build``). LLM summaries go through the index's call cache, so an
    interrupted build resumes without repeating calls.
    """
    if index.tree is not None:
        return None
    from branchwise.models.cache import CachedLLM
    from branchwise.indexing.tree_build import TreeConfig, build_tree
    from branchwise.indexing.checkpoint import BuildCheckpoint
    from branchwise.indexing.summarize import SummaryConfig, make_summarizer

    chunks = list(index.chunks)
    llm = None
    if summary_mode == "llm":
        if llm_factory is None:
            raise InputError("building the semantic tree needs an LLM for the summaries.",
                             fix="pass --llm SPEC, or build the tree beforehand with `branchwise index`.")
        llm = CachedLLM(llm_factory(), index.cache_dir / "llm.sqlite")
    summary = SummaryConfig(mode=summary_mode)  # type: ignore[arg-type]
    summarizer = make_summarizer(summary, llm=llm, corpus_texts=(c.text for c in chunks))
    checkpoint = BuildCheckpoint(index.path / "tree.build")
    log.info("building the semantic tree of %s over %d chunks (%s summaries)", index.path, len(chunks), summary_mode)
    result = build_tree(chunks, index.chunk_embeddings([c.id for c in chunks]), TreeConfig(summary=summary),
                        summarizer=summarizer, embedder=index.embedder, checkpoint=checkpoint, progress=progress)
    index.save_tree(result.tree, result.node_embeddings)
    checkpoint.discard()
    return result.usage
