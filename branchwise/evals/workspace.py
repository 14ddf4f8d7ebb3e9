"""The index an evaluation runs on: built from the dataset's corpus under the run folder.

The corpus is written once as ``corpus.jsonl`` (``id``, ``title``, ``text``) and indexed with
the regular build (:func:`branchwise.indexing.chunk_stage.build_chunk_index`), so evaluations
measure the same code path users run. The build is resumable and reused: a second run on
the same corpus and embedder opens the existing index; a different corpus is refused by the
build's fingerprint check rather than silently mixed.

The semantic tree is built only when a requested system needs it (RAPTOR, the navigator,
the agent's tree route), by the composition root's :func:`~branchwise.assembly.root.ensure_tree`
(the tree stage of ``branchwise index``), because summarising a corpus costs LLM calls.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from branchwise.evals.datasets.types import EvalDataset
from branchwise.models.base import Embedder
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
