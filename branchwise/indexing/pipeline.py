"""The offline build: chunk stage → semantic tree → graph index, resumable, in one directory.

Each stage is recorded in the manifest (``chunks``, ``embeddings``, ``bm25``, ``tree``,
``graph``). Rerunning an interrupted build redoes only what is not done: the chunk stage
embeds only missing chunks, the tree build resumes from ``tree.build/`` checkpoints, and
graph extraction reuses per-chunk results cached in ``graph/``.

Incremental updates of a built index (``branchwise add`` / ``delete``) are
:func:`add_documents` and :func:`delete_documents`, from :mod:`branchwise.indexing.incremental`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from branchwise.errors import InputError
from branchwise.indexing.incremental import UpdateReport, add_documents, check_deletable, delete_documents, update_needs_llm
from branchwise.models.base import LLM, Embedder
from branchwise.indexing.chunk_stage import IndexBuildConfig, build_chunk_index
from branchwise.retrieval.index import Index
from branchwise.indexing.tree_build import TreeConfig
from branchwise.types import Usage

log = logging.getLogger(__name__)

__all__ = ["IndexConfig", "IndexPlan", "UpdateReport", "add_documents", "build_graph_stage", "build_index",
           "build_tree_stage", "check_deletable", "delete_documents", "plan_index", "update_needs_llm"]

TREE_CHECKPOINT_DIR = "tree.build"


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """Everything an index build decides.

    Attributes:
        chunk: ingestion, chunking, BM25 and vector-store settings of the chunk stage.
        tree: the semantic tree (strategy, branching ``M``, summaries).
        graph: build the entity graph: ``"auto"`` (the default: with the spaCy extractor,
            whenever spaCy and its English model are installed — they are part of the
            default install and extract tens of chunks per second on 2 cores; with the LLM
            extractor, when the build has an LLM anyway), ``"on"`` (always; fails when the
            extractor cannot run), or ``"off"``.
        graph_extractor: the extractor, a name in
            :data:`~branchwise.graph.registry.EXTRACTORS`: ``"spacy"`` (default; no LLM
            calls) or ``"llm"`` (one LLM call per chunk, ~30 s on 2 CPU cores with the
            embedded 1.5B model: asked for explicitly).
        graph_config: extraction and entity-resolution settings (``graph.build``); None
            uses the graph builder's defaults.
        workers: run the build on a Dask LocalCluster of this many worker processes
            (``--workers``); 0 runs in this process. See :mod:`branchwise.indexing.distributed`.
        cluster: address of a running Dask scheduler (``tcp://host:8786``; ``--cluster``);
            overrides ``workers``.
        partitions: partitions of the distributed build (0: ``2 × workers``).
    """

    chunk: IndexBuildConfig = field(default_factory=IndexBuildConfig)
    tree: TreeConfig = field(default_factory=TreeConfig)
    graph: Literal["auto", "on", "off"] = "auto"
    graph_extractor: str = "spacy"
    graph_config: object | None = None
    workers: int = 0
    cluster: str | None = None
    partitions: int = 0

    def __post_init__(self) -> None:
        from branchwise.graph.registry import EXTRACTORS

        if self.graph not in ("auto", "on", "off"):
            raise InputError(f"graph={self.graph!r} is not one of auto/on/off.", fix="use graph='auto', 'on' or 'off'.")
        EXTRACTORS.get(self.graph_extractor)  # an unknown name fails here, listing the registered ones
        if self.workers < 0 or self.partitions < 0:
            raise InputError("workers and partitions must be >= 0.", fix="use e.g. workers=2 (0: in-process).")

    @property
    def distributed(self) -> bool:
        """Whether the build runs on Dask (``workers`` > 0 or a ``cluster`` address)."""
        return bool(self.cluster) or self.workers > 0

    def graph_needs_llm(self) -> bool:
        from branchwise.graph.registry import extractor_needs_llm

        return extractor_needs_llm(self.graph_extractor)

    def wants_graph(self, llm: LLM | None) -> bool:
        """Whether this build makes the graph (see ``graph``)."""
        from branchwise.graph.registry import extractor_available

        if self.graph == "off":
            return False
        if self.graph_needs_llm():
            if self.graph == "on" and llm is None:
                raise InputError(f"graph='on' with the {self.graph_extractor!r} extractor needs an LLM.",
                                 fix="pass an LLM, use graph_extractor='spacy', or graph='off'.")
            return llm is not None
        if self.graph == "on":
            return True
        if not extractor_available(self.graph_extractor):
            log.info("no graph: the %r extractor is not installed (pip install 'branchwise[embedded]')",
                     self.graph_extractor)
            return False
        return True

    def needs_llm(self) -> bool:
        return self.tree.summary.mode == "llm" or (self.graph == "on" and self.graph_needs_llm())


def build_index(
    source: str | Path,
    out: str | Path,
    *,
    embedder: Embedder,
    llm: LLM | None = None,
    config: IndexConfig = IndexConfig(),
    progress: bool = True,
    specs: object | None = None,
) -> Index:
    """Build (or resume) the index of ``source`` in ``out`` and return it opened.

    With ``config.workers`` or ``config.cluster`` the build runs on Dask
    (:mod:`branchwise.indexing.distributed`; ``specs``, a ``ModelSpecs``, tells the workers
    how to load the models) and writes the same index.
    """
    if config.tree.summary.mode == "llm" and llm is None:
        raise InputError(
            "LLM summaries were asked for but no LLM was given.",
            fix="pass llm=..., or use extractive summaries (TreeConfig(summary=SummaryConfig(mode='extractive'))).",
        )
    if config.distributed:
        from branchwise.indexing.distributed import build_index_distributed

        return build_index_distributed(source, out, embedder=embedder, llm=llm, config=config, progress=progress,
                                       specs=specs)  # type: ignore[arg-type]
    idx = build_chunk_index(source, out, embedder, config.chunk, progress=progress)
    if not idx.manifest.stage_done("tree"):
        build_tree_stage(idx, config.tree, llm=llm, progress=progress)
    if config.wants_graph(llm) and not idx.manifest.stage_done("graph"):
        build_graph_stage(idx, llm, config.graph_config, extractor=config.graph_extractor, progress=progress)
    return idx


def build_tree_stage(idx: Index, config: TreeConfig, *, llm: LLM | None, progress: bool = True,
                     engine: object | None = None) -> "Usage":
    """Cluster and summarise the index's chunks into ``tree.json`` (resumable); returns the build's usage.

    ``engine`` (a :class:`~branchwise.indexing.distributed.DaskEngine`) runs the leaf
    clustering of partitions and the summaries on its workers; the tree is the same.
    """
    from branchwise.indexing.tree_build import build_tree
    from branchwise.indexing.checkpoint import BuildCheckpoint
    from branchwise.indexing.summarize import make_summarizer

    chunks = list(idx.chunks)
    embeddings = idx.chunk_embeddings([c.id for c in chunks])
    summarizer = make_summarizer(config.summary, llm=llm, corpus_texts=(c.text for c in chunks))
    grouper = None
    if engine is not None:
        summarizer = engine.summarizer(summarizer)  # type: ignore[attr-defined]
        grouper = engine.grouper()  # type: ignore[attr-defined]
    checkpoint = BuildCheckpoint(idx.path / TREE_CHECKPOINT_DIR)
    idx.set_stage("tree", "in_progress")
    result = build_tree(chunks, embeddings, config, summarizer=summarizer, embedder=idx.embedder,
                        checkpoint=checkpoint, progress=progress, grouper=grouper)
    idx.save_tree(result.tree, result.node_embeddings)
    tree_info = {"strategy": config.strategy, "max_children": config.max_children,
                 "summary_mode": config.summary.mode, "summary_tokens": config.summary.summary_tokens,
                 "input_tokens": config.summary.input_tokens, "node_vectors": config.node_vectors,
                 "seed": config.seed, **_usage_dict(result.usage)}
    idx.update_manifest(extra={**idx.manifest.extra, "tree": tree_info},
                        counts={**idx.manifest.counts, "nodes": len(result.tree)})
    idx.set_stage("tree", "done")
    checkpoint.discard()
    return result.usage


def build_graph_stage(idx: Index, llm: LLM | None, graph_config: object | None = None, *, extractor: object = "spacy",
                      progress: bool = True) -> None:
    """Extract entities and relations from every chunk into ``graph/`` (resumable).

    ``extractor``: a name in :data:`~branchwise.graph.registry.EXTRACTORS` (``llm`` uses
    ``llm``), or an object of the graph builder's ``Extractor`` protocol (e.g. the Dask
    extractor of a distributed build). The name is recorded in the manifest, so later
    ``branchwise add`` runs extract new chunks the same way.
    """
    from branchwise.graph.build import GraphBuildConfig, GraphBuilder
    from branchwise.graph.registry import make_extractor

    cfg = graph_config if isinstance(graph_config, GraphBuildConfig) else GraphBuildConfig(show_progress=progress)
    ext = make_extractor(extractor, llm=llm, config=cfg) if isinstance(extractor, str) else extractor
    name = extractor if isinstance(extractor, str) else str(getattr(ext, "name", type(ext).__name__))
    idx.set_stage("graph", "in_progress")
    builder = GraphBuilder(ext, idx.embedder, idx.graph_dir, store=idx.store, config=cfg)
    _graph, report = builder.build(list(idx.chunks))
    if report.failed:
        log.warning("graph extraction failed for %d chunks (recorded in %s; rerun to retry)", report.failed, idx.graph_dir)
    idx.update_manifest(extra={**idx.manifest.extra, "graph": {"extractor": name, "report": report.summary()}})
    idx.set_stage("graph", "done")


def _usage_dict(usage: object) -> dict[str, float]:
    return {k: getattr(usage, k) for k in ("llm_calls", "prompt_tokens", "completion_tokens", "embed_calls")}


@dataclass(slots=True)
class IndexPlan:
    """What ``build_index`` would do, computed without writing anything (``--dry-run``)."""

    documents: int
    chunks: int
    chunk_tokens: int
    tree: object  # trees.plan.BuildPlan
    graph: object | None  # graph.extract.ExtractionEstimate

    def format(self) -> str:
        lines = [f"Corpus: {self.documents:,} documents → {self.chunks:,} chunks ({self.chunk_tokens:,} tokens)",
                 self.tree.format()]  # type: ignore[attr-defined]
        lines.append(self.graph.describe() if self.graph is not None else "graph extraction: off")  # type: ignore[attr-defined]
        return "\n".join(lines)


def plan_index(
    source: str | Path,
    *,
    embedder: Embedder,
    llm: LLM | None = None,
    config: IndexConfig = IndexConfig(),
    measure_speed: bool = True,
    progress: bool = True,
) -> IndexPlan:
    """The dry run: ingest, chunk and embed in memory, then plan the tree and graph stages.

    The tree plan runs the same clustering the build will run, so its LLM call count is
    exact; token counts are estimates. With ``measure_speed`` and an LLM, two short calls
    time the backend so the plan can estimate the wall time.
    """
    from branchwise.retrieval.chunking import chunk_documents
    from branchwise.retrieval.index import embedding_text
    from branchwise.retrieval.ingest import load_documents
    from branchwise.indexing.plan import EMBEDDED_DEFAULT_SPEED, measure_backend_speed, plan_build

    docs = load_documents(source, config.chunk.ingest)
    chunks = chunk_documents(docs, config.chunk.chunking, progress=progress)
    embeddings = embedder.embed([embedding_text(c) for c in chunks])
    speed = None
    if llm is not None and config.tree.summary.mode == "llm":
        speed = measure_backend_speed(llm) if measure_speed else EMBEDDED_DEFAULT_SPEED
    tree_plan = plan_build(chunks, embeddings, config.tree, speed=speed)
    graph_plan = None
    if config.wants_graph(llm):
        from branchwise.graph.extract import estimate_extraction_cost, estimate_spacy_cost

        if not config.graph_needs_llm():
            graph_plan = estimate_spacy_cost(chunks)
        else:
            kwargs = {}
            if speed is not None:
                kwargs = {"prefill_tok_s": speed.prefill_tps, "decode_tok_s": speed.decode_tps}
            graph_plan = estimate_extraction_cost(chunks, **kwargs)
    return IndexPlan(len(docs), len(chunks), sum(c.n_tokens for c in chunks), tree_plan, graph_plan)
