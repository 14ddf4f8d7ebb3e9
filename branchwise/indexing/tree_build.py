"""Build the semantic tree over a corpus (the LATTICE offline phase).

Two strategies (LATTICE, Gupta et al. 2025, arXiv 2510.13217, §3.1; LATTICE reports
bottom-up better on StackExchange-like corpora, top-down on code/theorem-like ones):

* ``bottom_up`` (agglomerative, as RAPTOR, arXiv 2401.18059): group the leaves into
  clusters of at most ``M``, write a summary per cluster, embed the summaries, and repeat
  on the summary vectors until at most ``M`` nodes remain under one root. Each level has
  ``ceil(n / (M·fill))`` nodes, so depth is ``ceil(log_{M·fill} N)`` and the node count of
  every level is known in advance (the dry run counts LLM calls exactly).
* ``top_down`` (divisive): split the leaf vectors recursively from the root, each node
  into ≤ ``M`` clusters of ≤ ``M^(h-1)`` leaves, so depth ≤ ``ceil(log_M N)``; then write
  the summaries bottom-up, each from its children's summaries or passages.

Clustering is :mod:`branchwise.indexing.cluster` (balanced spherical k-means; see its
docstring for why and the measured figures). Summaries come from an injected
:class:`~branchwise.indexing.summarize.Summarizer`; node vectors are the embedded summaries
(``node_vectors="summary"``) or, for speed at scale, the normalised mean of the leaf
embeddings below (``"centroid"``). With a :class:`~branchwise.indexing.checkpoint.BuildCheckpoint`
every finished clustering, summary batch and level of vectors is persisted, and a rerun
resumes where a killed build stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from branchwise.errors import InputError
from branchwise.models.base import Embedder
from branchwise.indexing.checkpoint import BuildCheckpoint
from branchwise.indexing.cluster import ClusterConfig, Split, balanced_groups, divisive_hierarchy, iter_levels, n_groups, normalize
from branchwise.indexing.summarize import Summarizer, SummaryConfig, SummaryRequest
from branchwise.retrieval.tree import Node, Tree
from branchwise.types import Chunk, Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TreeConfig:
    """Settings of the tree builder.

    Attributes:
        strategy: ``"bottom_up"`` (agglomerative) or ``"top_down"`` (divisive).
        max_children: the maximum branching factor ``M`` (LATTICE used 10-20): the size
            of the slates the navigator scores in one LLM call.
        fill: target mean fraction of ``M`` used per node; below 1 leaves the clustering
            room to follow the data instead of packing every node full (more nodes, at
            most one extra level).
        min_fill: bottom-up clusters get at least ``max(1, min_fill·M)`` members, so
            outliers do not become single-child nodes.
        seed: seeds every clustering step (no global RNG state is used).
        node_vectors: ``"summary"`` embeds each summary with the embedder (RAPTOR-style;
            used to cluster the next bottom-up level and to place new leaves), or
            ``"centroid"``: the normalised mean of the leaf embeddings below (no embedder
            calls; for very large builds).
        summary_batch: requests per summarizer call; also how often progress is
            checkpointed.
        embed_batch: texts per embedder call.
        summary: how summaries are written (used by the dry run and
            :func:`~branchwise.indexing.summarize.make_summarizer`; pass a summarizer built
            from the same settings to :func:`build_tree`).
        clustering: balanced k-means settings.
    """

    strategy: Literal["bottom_up", "top_down"] = "bottom_up"
    max_children: int = 12
    fill: float = 0.8
    min_fill: float = 0.25
    seed: int = 0
    node_vectors: Literal["summary", "centroid"] = "summary"
    summary_batch: int = 8
    embed_batch: int = 512
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    clustering: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        if self.strategy not in ("bottom_up", "top_down"):
            raise InputError(f"unknown tree strategy {self.strategy!r}.", fix="use 'bottom_up' or 'top_down'.")
        if self.max_children < 2:
            raise InputError(f"max_children={self.max_children} is too small.", fix="use max_children >= 2 (10-20 is typical).")
        if not (0.0 < self.fill <= 1.0) or not (0.0 <= self.min_fill <= self.fill):
            raise InputError("fill must be in (0, 1] and min_fill in [0, fill].", fix="e.g. fill=0.8, min_fill=0.25.")
        if self.max_children * self.fill < 2:
            raise InputError("max_children * fill must be at least 2.", fix="raise fill or max_children.")
        if self.node_vectors not in ("summary", "centroid"):
            raise InputError(f"unknown node_vectors {self.node_vectors!r}.", fix="use 'summary' or 'centroid'.")

    @property
    def min_size(self) -> int:
        return max(1, math.ceil(self.min_fill * self.max_children))


@dataclass(slots=True)
class TreeBuildResult:
    """A built tree, its internal nodes' vectors (by node id) and what the build cost."""

    tree: Tree
    node_embeddings: dict[str, np.ndarray]
    usage: Usage


def chunk_text(chunk: Chunk) -> str:
    """The text a leaf contributes to its parent's summary request."""
    return f"{chunk.title}: {chunk.text}" if chunk.title and not chunk.text.startswith(chunk.title) else chunk.text


def node_request(nodes: Mapping[str, Node], node_id: str, leaf_text: Callable[[str], str]) -> SummaryRequest:
    """The summary request of an internal node from its current children."""
    node = nodes[node_id]
    kids = [nodes[c] for c in node.children]
    texts = tuple(leaf_text(k.chunk_id) if k.chunk_id is not None else k.summary for k in kids)
    return SummaryRequest(node_id, node.level, texts, all(k.is_leaf for k in kids))


def fingerprint(chunks: Sequence[Chunk], embeddings: np.ndarray, config: TreeConfig, summarizer: Summarizer, embedder: Embedder | None) -> str:
    """Hash of everything a build's output depends on (keys the checkpoint)."""
    h = hashlib.sha256()
    h.update(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    h.update(f"\x00{summarizer.name}\x00{getattr(embedder, 'name', '')}\x00".encode())
    for c in chunks:
        h.update(c.id.encode("utf-8") + b"\x00" + hashlib.sha256(chunk_text(c).encode("utf-8")).digest())
    h.update(np.ascontiguousarray(embeddings, dtype=np.float32).data)
    return h.hexdigest()


class _Builder:
    """One build's state: nodes, vectors, accounting."""

    def __init__(self, chunks: Sequence[Chunk], embeddings: np.ndarray, config: TreeConfig, summarizer: Summarizer,
                 embedder: Embedder | None, checkpoint: BuildCheckpoint | None, progress: bool,
                 grouper: Callable[..., list[np.ndarray]] | None = None):
        self.config, self.summarizer, self.embedder = config, summarizer, embedder
        self.grouper = grouper or balanced_groups
        self.ckpt, self.progress = checkpoint, progress
        self.leaf_vecs = normalize(embeddings)
        self.nodes: dict[str, Node] = {
            f"l{i}": Node(id=f"l{i}", level=0, chunk_id=c.id) for i, c in enumerate(chunks)
        }
        self.leaf_row = {f"l{i}": i for i in range(len(chunks))}
        self.text_by_chunk = {c.id: chunk_text(c) for c in chunks}
        self.vectors: dict[str, np.ndarray] = {}
        self._sums: dict[str, np.ndarray] = {}
        self.embed_calls = 0

    # -- shared steps -------------------------------------------------------------------------
    def add_internal(self, node_id: str, children: Sequence[str]) -> None:
        level = 1 + max(self.nodes[c].level for c in children)
        self.nodes[node_id] = Node(id=node_id, level=level, children=list(children))
        for c in children:
            self.nodes[c].parent = node_id

    def summarize(self, node_ids: Sequence[str], label: str) -> None:
        """Write the summaries of ``node_ids`` (their children must be done)."""
        requests = [node_request(self.nodes, n, self.text_by_chunk.__getitem__) for n in node_ids]
        keys = [r.key(self.summarizer.name) for r in requests]
        todo = []
        for r, k in zip(requests, keys):
            done = self.ckpt.summary(k) if self.ckpt is not None else None
            if done is None:
                todo.append((r, k))
            else:
                self.nodes[r.node_id].summary = done
        step = max(1, self.config.summary_batch)
        batches = [todo[i : i + step] for i in range(0, len(todo), step)]
        # a summarizer with ``map_batches`` (the Dask one) runs all batches at once and yields
        # (batch number, texts) as they finish; each is checkpointed on arrival either way
        mapper = getattr(self.summarizer, "map_batches", None)
        results = (mapper([[r for r, _ in b] for b in batches]) if mapper is not None else
                   ((i, self.summarizer.summarize_batch([r for r, _ in b])) for i, b in enumerate(batches)))
        with tqdm(total=len(todo), desc=f"summaries {label}", unit="node", disable=not self.progress or not todo) as bar:
            for i, texts in results:
                batch = batches[i]
                for (r, _), text in zip(batch, texts):
                    self.nodes[r.node_id].summary = text
                if self.ckpt is not None:
                    self.ckpt.add_summaries([(k, r.node_id, t) for (r, k), t in zip(batch, texts)])
                bar.update(len(batch))

    def node_vectors(self, node_ids: Sequence[str], name: str) -> np.ndarray:
        """Vectors of freshly summarised nodes (checkpointed per level)."""
        stored = self.ckpt.load_vectors(name) if self.ckpt is not None else None
        reused = stored is not None and stored[0] == list(node_ids)
        if stored is not None and reused:
            vecs = stored[1]
        elif self.config.node_vectors == "centroid":
            vecs = normalize(np.stack([self.centroid_sum(n) for n in node_ids]))
        else:
            assert self.embedder is not None
            texts = [self.nodes[n].summary for n in node_ids]
            step = max(1, self.config.embed_batch)
            parts = []
            for i in tqdm(range(0, len(texts), step), desc=f"embed {name}", disable=not self.progress or len(texts) <= step):
                parts.append(self.embedder.embed(texts[i : i + step]))
                self.embed_calls += 1
            vecs = normalize(np.concatenate(parts))
        if self.ckpt is not None and not reused:
            self.ckpt.save_vectors(name, node_ids, vecs)
        for n, v in zip(node_ids, vecs):
            self.vectors[n] = v
        return vecs

    def centroid_sum(self, node_id: str) -> np.ndarray:
        """Sum of the leaf embeddings under ``node_id`` (children's sums are cached)."""
        node = self.nodes[node_id]
        if node.is_leaf:
            return self.leaf_vecs[self.leaf_row[node_id]]
        cached = self._sums.get(node_id)
        if cached is None:
            cached = np.sum([self.centroid_sum(c) for c in node.children], axis=0)
            self._sums[node_id] = cached
        return cached

    # -- strategies -----------------------------------------------------------------------------
    def bottom_up(self) -> str:
        cfg = self.config
        ids = list(self.nodes)
        vecs = self.leaf_vecs
        counter, level = 0, 1
        while True:
            if len(ids) <= cfg.max_children:
                groups = [list(ids)]
            else:
                recorded = self.ckpt.load_json(f"level-{level}") if self.ckpt is not None else None
                if recorded is not None:
                    groups = recorded["groups"]
                else:
                    t0 = time.perf_counter()
                    rows = self.grouper(vecs, n_groups(len(ids), cfg.max_children, cfg.fill), cfg.max_children,
                                           min_size=cfg.min_size, seed=cfg.seed + level, config=cfg.clustering,
                                           progress=self.progress)
                    groups = [[ids[r] for r in g] for g in rows]
                    log.info("level %d: %d nodes -> %d clusters in %.1fs", level, len(ids), len(groups), time.perf_counter() - t0)
                    if self.ckpt is not None:
                        self.ckpt.save_json(f"level-{level}", {"groups": groups})
            parents = []
            for g in groups:
                parents.append(f"n{counter}")
                self.add_internal(parents[-1], g)
                counter += 1
            self.summarize(parents, f"L{level}")
            vecs = self.node_vectors(parents, f"vectors-{level}")
            if len(parents) == 1:
                return parents[0]
            ids, level = parents, level + 1

    def top_down(self) -> str:
        cfg = self.config
        recorded = self.ckpt.load_json("hierarchy") if self.ckpt is not None else None
        if recorded is not None:
            splits = [Split(leaves=s[0], children=s[1]) for s in recorded]
        else:
            t0 = time.perf_counter()
            splits = divisive_hierarchy(self.leaf_vecs, cfg.max_children, cfg.fill, seed=cfg.seed, config=cfg.clustering,
                                        progress=self.progress)
            log.info("top-down: %d internal nodes in %.1fs", len(splits), time.perf_counter() - t0)
            if self.ckpt is not None:
                self.ckpt.save_json("hierarchy", [[s.leaves, s.children] for s in splits])
        for i in reversed(range(len(splits))):  # children (later in pre-order) first
            self.add_internal(f"n{i}", [f"n{c}" for c in splits[i].children] + [f"l{r}" for r in splits[i].leaves])
        by_level: dict[int, list[str]] = {}
        for i, level in iter_levels(splits):
            by_level.setdefault(level, []).append(f"n{i}")
        for level in sorted(by_level):
            self.summarize(by_level[level], f"L{level}")
            self.node_vectors(by_level[level], f"vectors-{level}")
        return "n0"


def build_tree(
    chunks: Sequence[Chunk],
    embeddings: np.ndarray,
    config: TreeConfig = TreeConfig(),
    *,
    summarizer: Summarizer,
    embedder: Embedder | None = None,
    checkpoint: BuildCheckpoint | None = None,
    progress: bool = True,
    grouper: Callable[..., list[np.ndarray]] | None = None,
) -> TreeBuildResult:
    """Build the tree over ``chunks`` whose (L2-normalised) embeddings are ``embeddings``.

    Args:
        chunks: the corpus chunks; leaf ``l{i}`` stands for ``chunks[i]``.
        embeddings: shape (len(chunks), dim), from ``embedder``'s model.
        config: strategy, branching, clustering and summary settings.
        summarizer: writes internal-node summaries (LLM or extractive).
        embedder: embeds summaries; required when ``config.node_vectors == "summary"``.
        checkpoint: makes the build resumable; call ``checkpoint.discard()`` after saving.
        progress: show tqdm bars.
        grouper: replaces :func:`~branchwise.indexing.cluster.balanced_groups` in the
            bottom-up levels (same signature and result; the distributed build passes one
            that clusters the partitions on Dask workers).

    Returns:
        the tree (validated), internal-node vectors, and LLM/embedder usage of this build.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if not chunks:
        raise InputError("cannot build a tree over zero chunks.", fix="ingest some documents first.")
    if embeddings.ndim != 2 or embeddings.shape[0] != len(chunks):
        raise InputError(f"embeddings shape {embeddings.shape} does not match {len(chunks)} chunks.", fix="embed every chunk once, in order.")
    if len({c.id for c in chunks}) != len(chunks):
        raise InputError("chunk ids are not unique.", fix="give every chunk a distinct id.")
    if config.node_vectors == "summary":
        if embedder is None:
            raise InputError("node_vectors='summary' needs an embedder.", fix="pass embedder=..., or use node_vectors='centroid'.")
        if embedder.dim != embeddings.shape[1]:
            raise InputError(f"embedder dim {embedder.dim} != embeddings dim {embeddings.shape[1]}.", fix="use the embedder that embedded the chunks.")
    if checkpoint is not None:
        checkpoint.open(fingerprint(chunks, embeddings, config, summarizer, embedder))
    before = dataclasses.replace(summarizer.usage)
    t0 = time.perf_counter()
    b = _Builder(chunks, embeddings, config, summarizer, embedder, checkpoint, progress, grouper)
    root = b.bottom_up() if config.strategy == "bottom_up" else b.top_down()
    tree = Tree(nodes=b.nodes, root=root, strategy=config.strategy, max_children=config.max_children)
    tree.validate({c.id for c in chunks})
    after = summarizer.usage
    usage = Usage(
        llm_calls=after.llm_calls - before.llm_calls,
        prompt_tokens=after.prompt_tokens - before.prompt_tokens,
        completion_tokens=after.completion_tokens - before.completion_tokens,
        embed_calls=b.embed_calls,
        latency_s=time.perf_counter() - t0,
    )
    log.info("built %s tree: %s", config.strategy, {k: v for k, v in tree.stats().items() if k != "branching_histogram"})
    return TreeBuildResult(tree=tree, node_embeddings=b.vectors, usage=usage)
