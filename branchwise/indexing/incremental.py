"""Incremental updates of a built index: ``branchwise add`` and ``branchwise delete``.

:func:`add_documents` ingests and chunks new files with the index's chunking parameters,
embeds them with its embedder, stores them (Chroma, ``chunks.jsonl``, BM25), places them as
tree leaves and re-summarises only the nodes on the touched paths
(:mod:`branchwise.indexing.tree_update`), and extracts them into the graph when the index has one.
:func:`delete_documents` removes documents from all of these (empty tree nodes pruned,
entities left without support dropped). The manifest counts are rewritten in one atomic
write at the end.

Interruptions: an add stores the chunks before the tree is edited, a delete rewrites the
tree and its summaries (the slow part) before anything is removed. Each update records
itself in the manifest first (``update_in_progress``: the operation, its documents, sources
and replaced chunks), and :meth:`Index.open` refuses to answer from an index whose update
did not finish. Each update reconciles the tree's leaves with the stored chunks, and after
an interrupted one also drops vectors of chunks that were never stored, rebuilds BM25 and
extracts into the graph the chunks it never reached; a vector store whose ids and vectors
disagree (a kill -9 during Chroma's own flush) is rebuilt from the index's files — so rerunning
the command (or any later update) gives the index an uninterrupted update would have. One update of a directory runs
at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from branchwise.errors import IndexFormatError, InputError
from branchwise.models.base import LLM
from branchwise.retrieval.index import Index
from branchwise.retrieval.tree import Tree
from branchwise.types import Chunk

if TYPE_CHECKING:
    from branchwise.retrieval.ingest import IngestConfig, SkippedInput
    from branchwise.indexing.summarize import Summarizer

log = logging.getLogger(__name__)

UPDATE_LOCK = ".update.lock"


@dataclass(slots=True)
class UpdateReport:
    """What :func:`add_documents` / :func:`delete_documents` changed: document ids by outcome;
    chunks stored (new or changed) and removed; tree leaves placed / removed, internal nodes
    created by splits / pruned or spliced; summaries refreshed (the touched paths only) and
    their LLM calls; leaves ``repaired`` after an interrupted update; the graph update in
    words (None without a graph); the manifest counts afterwards."""

    added: list[str] = field(default_factory=list)
    skipped: list["SkippedInput"] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    leaves_added: int = 0
    leaves_removed: int = 0
    nodes_created: int = 0
    nodes_removed: int = 0
    summaries_refreshed: int = 0
    repaired: int = 0
    llm_calls: int = 0
    graph: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def format(self) -> str:
        docs = [f"{len(v)} {k}" for k, v in (("added", self.added), ("replaced", self.replaced),
                                             ("unchanged", self.unchanged), ("deleted", self.deleted)) if v]
        lines = [f"documents: {', '.join(docs) or 'none changed'}",
                 f"chunks: +{self.chunks_added} -{self.chunks_removed}",
                 f"tree: +{self.leaves_added} -{self.leaves_removed} leaves, +{self.nodes_created} -{self.nodes_removed} "
                 f"internal nodes, {self.summaries_refreshed} summaries refreshed ({self.llm_calls} LLM calls)"]
        if self.repaired:
            lines.append(f"repaired {self.repaired} tree leaves left out of step by an interrupted update")
        if self.skipped:
            lines.append(f"left out {len(self.skipped)} input(s): " + "; ".join(
                f"{s.where}: {s.reason}" for s in self.skipped[:10]) + (" ..." if len(self.skipped) > 10 else ""))
        if self.graph is not None:
            lines.append(f"graph: {self.graph}")
        lines.append(f"counts: {self.counts}")
        return "\n".join(lines)


def update_needs_llm(idx: Index, op: Literal["add", "delete"]) -> bool:
    """Whether an update of ``idx`` calls an LLM: LLM-written summaries to refresh, or (for
    ``add``) graph extraction of the new chunks by the LLM extractor (a spaCy graph needs none)."""
    from branchwise.graph.build import recorded_extractor
    from branchwise.graph.registry import extractor_needs_llm

    mode = idx.manifest.extra.get("tree", {}).get("summary_mode", "llm")
    return mode == "llm" or (op == "add" and idx.manifest.stage_done("graph")
                             and extractor_needs_llm(recorded_extractor(idx)))


def add_documents(
    idx: Index,
    sources: str | Path | Sequence[str | Path],
    *,
    llm: LLM | None = None,
    ingest: "IngestConfig | None" = None,
    progress: bool = True,
) -> UpdateReport:
    """Add (or replace) the documents of ``sources`` (folders, files, JSONL) in a built index.

    Documents are chunked with the index's chunking parameters and embedded with its
    embedder. A document whose id is already indexed is skipped when its text is unchanged
    and replaced otherwise. New chunks go to Chroma, ``chunks.jsonl`` and BM25, become tree
    leaves (placed by descending to the most similar nodes; overfull nodes split), and only
    the summaries on the touched paths are rewritten. With a graph, the new chunks are
    extracted and merged (needs ``llm``).

    Raises:
        IndexFormatError: the index is not fully built.
        InputError: unreadable sources, an id repeated across sources, or no ``llm`` where
            one is needed (see :func:`update_needs_llm`).
    """
    from branchwise.retrieval.chunking import ChunkingConfig, chunk_documents
    from branchwise.retrieval.ingest import IngestConfig
    from branchwise.retrieval.ingest import ingest as read_sources

    _check_updatable(idx, llm, "add")
    paths = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not paths:
        raise InputError("no files to add.", fix="pass one or more files, folders or .jsonl files.")
    reports = [read_sources(p, ingest or IngestConfig()) for p in paths]
    docs = [d for r in reports for d in r.documents]
    repeated = sorted(i for i, k in Counter(d.id for d in docs).items() if k > 1)
    if repeated:
        raise InputError(f"document id(s) given twice: {repeated[:5]}.",
                         fix="add each document once (file ids are paths relative to the folder passed).")
    known = {f.name for f in dataclasses.fields(ChunkingConfig)}
    chunking = ChunkingConfig(**{k: v for k, v in idx.manifest.chunking.items() if k in known})
    chunks = chunk_documents(docs, chunking, progress=progress)
    report = UpdateReport(skipped=[sk for r in reports for sk in r.skipped])
    by_doc: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    indexed = set(idx.chunks.doc_ids())
    fresh: list[Chunk] = []
    gone: list[str] = []
    for d in docs:
        new = by_doc.get(d.id, [])
        if d.id not in indexed:
            report.added.append(d.id)
            fresh += new
            continue
        old = idx.chunks.by_doc(d.id)
        if old == new:
            report.unchanged.append(d.id)
            continue
        report.replaced.append(d.id)
        old_by_id = {c.id: c for c in old}
        fresh += [c for c in new if old_by_id.get(c.id) != c]
        new_ids = {c.id for c in new}
        gone += [c.id for c in old if c.id not in new_ids]
    replaced_ids = [c.id for c in fresh if c.id in idx.chunks]  # same id, new text: re-placed in the tree
    with _update_lock(idx):
        pending = _resume_pending(idx)
        replaced_ids = list(dict.fromkeys(replaced_ids + pending.get("replace", [])))
        _mark_update(idx, "add", report.added + report.replaced, sources=[Path(p).absolute() for p in paths],
                     replace=replaced_ids)
        report.chunks_removed = len(idx.remove_chunks(gone))
        report.chunks_added = len(idx.add_chunks(fresh, progress=progress))
        tree, node_vec = _edit_tree(idx, llm, report, drop=replaced_ids, keep=set(idx.chunks.ids()),
                                    expected={c.id for c in fresh}, progress=progress)
        idx.save_tree(tree, node_vec)
        added = [idx.chunks.get(c.id) for c in fresh] + (_unextracted(idx, llm, fresh) if pending else [])
        _update_graph(idx, llm, report, add=added, drop=gone, progress=progress)
        _finish_update(idx, report, "add")
    return report


def delete_documents(idx: Index, doc_ids: Iterable[str], *, llm: LLM | None = None, progress: bool = True) -> UpdateReport:
    """Delete documents from a built index: their chunks leave Chroma, ``chunks.jsonl``, BM25,
    the tree (empty nodes pruned, single-child chains spliced out; the summaries on the
    touched paths rewritten) and the graph (entities left without support removed).

    Raises:
        InputError: an id that is not an indexed document (close matches are suggested),
            deleting every document, or no ``llm`` where LLM summaries must be refreshed.
        IndexFormatError: the index is not fully built.
    """
    _check_updatable(idx, llm, "delete")
    doc_ids = check_deletable(idx, doc_ids)
    chunk_ids = [c.id for d in doc_ids for c in idx.chunks.by_doc(d)]
    report = UpdateReport(deleted=doc_ids)
    with _update_lock(idx):
        _resume_pending(idx)
        _mark_update(idx, "delete", doc_ids)
        # the tree and its summaries first: the slow part, which writes nothing
        tree, node_vec = _edit_tree(idx, llm, report, drop=chunk_ids, keep=set(idx.chunks.ids()) - set(chunk_ids),
                                    expected=set(), progress=progress)
        report.chunks_removed = len(idx.remove_chunks(chunk_ids))
        idx.save_tree(tree, node_vec)
        _update_graph(idx, llm, report, add=[], drop=chunk_ids, progress=progress)
        _finish_update(idx, report, "delete")
    return report


def check_deletable(idx: Index, doc_ids: Iterable[str]) -> list[str]:
    """``doc_ids`` without repeats, after checking that they can be deleted from ``idx``.

    Raises:
        InputError: no ids, an id that is not an indexed document (close matches are
            suggested), or every document of the index.
    """
    doc_ids = list(dict.fromkeys(doc_ids))
    if not doc_ids:
        raise InputError("no document ids to delete.", fix=f"pass ids; list them with `branchwise delete {idx.path} --list`.")
    indexed = idx.chunks.doc_ids()
    known = set(indexed)
    pending = idx.manifest.extra.get("update_in_progress") or {}
    if pending.get("op") == "delete":  # rerun of an interrupted delete: its ids may be gone already
        known |= set(pending.get("documents", [])) & set(doc_ids)
    unknown = [d for d in doc_ids if d not in known]
    if unknown:
        hints = {u: difflib.get_close_matches(u, indexed, n=3) for u in unknown[:5]}
        near = "; ".join(f"{u!r}: did you mean {', '.join(map(repr, m))}?" for u, m in hints.items() if m)
        raise InputError(
            f"{len(unknown)} unknown document id(s) in {idx.path}: {unknown[:5]}" + (f" ({near})" if near else "") + ".",
            fix=f"use ids as indexed (file paths relative to the indexed folder, or JSONL ids); "
                f"list them with `branchwise delete {idx.path} --list`.",
        )
    if known <= set(doc_ids):
        raise InputError(f"deleting all {len(indexed)} documents would leave the index at {idx.path} empty.",
                         fix="delete the index directory instead, or rebuild it with `branchwise index ... --overwrite`.")
    return doc_ids


def _check_updatable(idx: Index, llm: LLM | None, op: Literal["add", "delete"]) -> None:
    # what an interrupted update leaves (vectors, counts, leaves out of step) this one repairs
    blocking = [p for p in idx.problems() if not p.repairable and idx.manifest.stage_done(p.stage)]
    if blocking:
        raise IndexFormatError(f"the index at {idx.path} needs repair before an update: "
                               + "; ".join(p.message for p in blocking) + ".", fix=idx.repair_hint(blocking))
    missing = [s for s in ("chunks", "embeddings", "bm25", "tree") if not idx.manifest.stage_done(s)]
    if missing or idx.tree is None:
        raise IndexFormatError(f"the index at {idx.path} is not fully built (stages not done: {missing or ['tree']}).",
                               fix=f"finish the build first: rerun `branchwise index PATH --out {idx.path}`.")
    if "graph" in idx.manifest.stages and not idx.manifest.stage_done("graph"):
        raise IndexFormatError(f"the graph of the index at {idx.path} is not fully built.",
                               fix=f"finish the build first: rerun `branchwise index PATH --out {idx.path} --graph on`.")
    if llm is None and update_needs_llm(idx, op):
        why = "its summaries are written by an LLM" if idx.manifest.extra.get("tree", {}).get("summary_mode", "llm") == "llm" \
            else "its graph needs entity extraction of the new chunks"
        raise InputError(f"updating the index at {idx.path} needs an LLM: {why}.", fix="pass llm=... (--llm SPEC).")


@contextlib.contextmanager
def _update_lock(idx: Index) -> Iterator[None]:
    """One update of an index directory at a time (an advisory lock, POSIX only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(idx.path / UPDATE_LOCK, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another update of the index at {idx.path} is running.", fix="wait for it to finish.") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _mark_update(idx: Index, op: str, doc_ids: Sequence[str], *, sources: Sequence[Path] = (),
                 replace: Sequence[str] = ()) -> None:
    """Record the update before anything changes: what a rerun needs to finish it."""
    pending = {"op": op, "documents": list(doc_ids), "n_documents": len(doc_ids), "started": _now(),
               "sources": [str(p) for p in sources], "replace": list(replace)}
    idx.update_manifest(extra={**idx.manifest.extra, "update_in_progress": pending})


def _resume_pending(idx: Index) -> dict:
    """After an interrupted update: drop vectors of chunks never stored and rebuild BM25 (the
    tree and the graph are repaired by the update itself). Returns the interrupted update's
    record ({} when the last update finished)."""
    pending = dict(idx.manifest.extra.get("update_in_progress") or {})
    problems = {p.stage for p in idx.problems() if p.repairable}
    if pending:
        log.warning("finishing an interrupted update of %s (%s started %s)", idx.path, pending.get("op"),
                    pending.get("started"))
    if pending or "embeddings" in problems:
        from branchwise.retrieval.index import CHUNKS

        stored = set(idx.chunks.ids())
        orphans = [i for i in idx.store.ids(CHUNKS) if i not in stored]
        if orphans:
            idx.store.delete(CHUNKS, orphans)
    if pending or "bm25" in problems:
        idx.rebuild_bm25()
    from branchwise.retrieval.consistency import vectors_unreadable

    if why := vectors_unreadable(idx):  # e.g. a kill -9 while Chroma flushed its own files
        log.warning("index %s: %s", idx.path, why)
        from branchwise.indexing.chunk_stage import rebuild_vectors

        rebuild_vectors(idx)
    return pending


def _unextracted(idx: Index, llm: LLM | None, fresh: Sequence[Chunk]) -> list[Chunk]:
    """Chunks an interrupted update stored but never extracted into the graph."""
    if not idx.manifest.stage_done("graph"):
        return []
    from branchwise.graph.build import CACHE_FILE, ExtractionCache, GraphBuilder, load_failures

    builder = GraphBuilder.for_index(idx, llm)
    if builder.extractor is None:
        return []
    done = ExtractionCache(idx.graph_dir / CACHE_FILE, builder.extractor.fingerprint).chunk_ids()
    done |= {f.chunk_id for f in load_failures(idx.graph_dir)} | {c.id for c in fresh}
    return [c for c in idx.chunks if c.id not in done]


def _finish_update(idx: Index, report: UpdateReport, op: str) -> None:
    """Counts and the update record, in one atomic manifest write."""
    extra = {k: v for k, v in idx.manifest.extra.items() if k != "update_in_progress"}
    tree = idx.tree
    assert tree is not None
    extra["last_update"] = {"op": op, "at": _now(),
                            "documents": (report.added + report.replaced + report.deleted)[:20],
                            "summaries_refreshed": report.summaries_refreshed, "llm_calls": report.llm_calls}
    counts = {**idx.manifest.counts, "documents": len(idx.chunks.doc_ids()), "chunks": len(idx.chunks),
              "nodes": len(tree)}
    idx.update_manifest(extra=extra, counts=counts)
    report.counts = dict(counts)
    log.info("index %s updated (%s): %s", idx.path, op, report.format().replace("\n", "; "))


def _edit_tree(idx: Index, llm: LLM | None, report: UpdateReport, *, drop: Sequence[str], keep: set[str],
               expected: set[str], progress: bool) -> tuple[Tree, dict[str, np.ndarray]]:
    """The tree with leaves for exactly the chunks ``keep`` (``drop``: leaves to re-place or
    remove) and its stale summaries refreshed, plus the refreshed nodes' vectors. Writes
    nothing. Unplaced chunks not in ``expected`` and leaves of vanished chunks not in
    ``drop`` are what an interrupted update left: counted as ``repaired``."""
    from branchwise.indexing.tree_build import chunk_text
    from branchwise.indexing.cluster import normalize
    from branchwise.indexing.tree_update import refresh_stale, sync_leaves

    tree = Tree.load(idx.tree_path)  # a fresh copy: idx.tree stays as saved until save_tree
    info = idx.manifest.extra.get("tree", {})
    leaves = {n.chunk_id for n in tree.leaves()}
    report.repaired += len(leaves - keep - set(drop)) + len(keep - leaves - expected)
    if report.repaired:
        log.warning("repairing %d tree leaves left out of step with the chunks by an interrupted update", report.repaired)
    internal = [n.id for n in tree.nodes.values() if not n.is_leaf]
    node_vec = dict(zip(internal, idx.node_embeddings(internal)))
    res = sync_leaves(tree, [c for c in idx.chunks.ids() if c in keep], replace=drop, node_vectors=node_vec,
                      chunk_vectors=idx.chunk_embeddings, seed=int(info.get("seed", 0)))
    removed_leaves = len(leaves) + len(res.added) - sum(1 for _ in tree.leaves())
    report.leaves_added += len(res.added)
    report.leaves_removed += removed_leaves
    report.nodes_created += len(res.created)
    report.nodes_removed += len(res.removed) - removed_leaves
    summarizer = _update_summarizer(idx, llm, keep)
    centroid = info.get("node_vectors") == "centroid"
    refreshed = refresh_stale(tree, summarizer, None if centroid else idx.embedder,
                              leaf_text=lambda cid: chunk_text(idx.chunks.get(cid)), node_vectors=node_vec,
                              progress=progress)
    if centroid:  # the build's node vectors: normalised means of the leaf embeddings below
        for nid in refreshed:
            rows = idx.chunk_embeddings([leaf.chunk_id for leaf in tree.leaves_under(nid)])
            node_vec[nid] = normalize(rows.sum(axis=0, keepdims=True))[0]
    report.summaries_refreshed += len(refreshed)
    report.llm_calls += summarizer.usage.llm_calls
    tree.validate(keep)
    return tree, {nid: node_vec[nid] for nid in refreshed}


def _update_summarizer(idx: Index, llm: LLM | None, chunk_ids: set[str]) -> Summarizer:
    """A summarizer like the build's (mode and budgets from the manifest)."""
    from branchwise.indexing.summarize import ExtractiveSummarizer, LLMSummarizer, SummaryConfig

    info = idx.manifest.extra.get("tree", {})
    defaults = SummaryConfig()
    config = SummaryConfig(mode=info.get("summary_mode", "llm"),
                           summary_tokens=int(info.get("summary_tokens", defaults.summary_tokens)),
                           input_tokens=int(info.get("input_tokens", defaults.input_tokens)))
    if config.mode == "llm":
        if llm is None:
            raise InputError("refreshing LLM-written summaries needs an LLM.", fix="pass llm=... (--llm SPEC).")
        return LLMSummarizer(llm, config)
    return ExtractiveSummarizer.from_corpus((c.text for c in idx.chunks if c.id in chunk_ids), config)


def _update_graph(idx: Index, llm: LLM | None, report: UpdateReport, *, add: Sequence[Chunk], drop: Sequence[str],
                  progress: bool) -> None:
    """Keep the graph in step: drop removed chunks (and any the chunk store no longer has),
    extract and merge the added ones."""
    if not idx.manifest.stage_done("graph"):
        return
    from branchwise.graph.build import GraphBuildConfig, GraphBuilder
    from branchwise.graph.types import KnowledgeGraph

    graph = KnowledgeGraph.load(idx.graph_dir)
    builder = GraphBuilder.for_index(idx, llm, GraphBuildConfig(show_progress=progress))
    gone = (set(drop) | graph.chunk_ids()) - set(idx.chunks.ids())
    words = []
    if gone:
        rep = builder.delete_chunks(graph, sorted(gone))
        words.append(f"{len(rep.removed_entities)} entities removed")
    if add:
        added = builder.add(graph, list(add))
        words.append(f"{added.extracted} chunks extracted ({added.failed} failed)")
    report.graph = f"{', '.join(words) or 'unchanged'}; {len(graph)} entities, {graph.n_relations} relations"
