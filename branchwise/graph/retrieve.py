"""GRAG-style retrieval (Hu et al., 2024, arXiv 2405.16506), training-free.

GRAG retrieves *subgraphs*, not isolated nodes: it ranks k-hop ego-graphs against the query,
**soft-prunes** the nodes and edges that are irrelevant to the query (a learned scaling of
each element from its distance to the query), and gives the LLM a **hierarchical text
description** of the pruned subgraph so the model sees its topology, not a bag of triples.
Without GRAG's trained MLP/GNN we keep the structure and replace the learned parts:

1. **Seeds.** Entities whose alias occurs in the query (1.0; a partial name 0.8 × the
   fraction of its words) united with the nearest entity profiles in the ``entities``
   collection (cosine). ``score = max`` of both; ``min_seed_score`` filters.
2. **Ego-graphs.** Around each seed, breadth-first over edges in both directions up to
   ``hops`` (2), keeping at most ``max_ego_nodes`` per graph, the most query-relevant
   neighbours first (hubs would otherwise flood it). Ego-graphs are ranked by
   ``(seed score + mean of the top-3 element relevances) / 2`` and the best ``seed_k`` kept.
3. **Soft pruning.** Every node (its profile) and edge (``subject predicate object:
   description``) gets a relevance ``r`` = cosine to the query, and a scale
   ``α = r / r_best`` (nodes and edges normalised separately, clipped to [0, 1]). Elements
   with ``α < prune_ratio`` are dropped, the rest are down-weighted by ``α``. The pruning is
   path-aware: a kept element keeps its breadth-first path back to the seed ("bridge"
   entities of multi-hop questions rarely resemble the query themselves).
4. **Chunks.** A kept edge supports its source chunk with weight
   ``α · seed score · hop_decay^(hop-1)``, a kept entity its mention chunks with half that
   (a mention is weaker evidence than a relevant fact); a chunk's score is the noisy-OR
   ``1 - Π(1 - w)`` of its supports, in [0, 1].
5. **Description** (:func:`describe_subgraph`): for each ego-graph the seed, then its kept
   relations indented by hop, each with its source chunk id; an entity met again is
   referenced, not re-expanded, and edges outside the breadth-first trees are listed under
   "Other links", so every kept edge appears exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from branchwise.graph.build import ENTITY_COLLECTION
from branchwise.graph.resolve import NameIndex
from branchwise.graph.types import KnowledgeGraph, Relation
from branchwise.models.base import Embedder
from branchwise.retrieval.store import VectorStore
from branchwise.types import Chunk, Evidence

log = logging.getLogger(__name__)

Scores = dict[str, float]


class ChunkLookup(Protocol):
    """Anything with ``get(chunk_id)`` returning the chunk, or None / KeyError when absent
    (a dict, the index's ChunkStore)."""

    def get(self, chunk_id: str) -> Chunk | None: ...


@dataclass(frozen=True, slots=True)
class GraphRetrievalConfig:
    """GRAG retrieval settings (see the module docstring for how each is used)."""

    seed_k: int = 4
    seed_candidates: int = 12
    min_seed_score: float = 0.35
    hops: int = 2
    max_ego_nodes: int = 40
    prune_ratio: float = 0.5
    hop_decay: float = 0.8
    node_weight: float = 0.5
    max_description_lines: int = 40
    collection: str = ENTITY_COLLECTION


@dataclass(slots=True)
class EgoGraph:
    """A seed's k-hop neighbourhood as a breadth-first tree (``parent`` = (node, relation id))."""

    seed: str
    seed_score: float
    depth: dict[str, int] = field(default_factory=dict)
    parent: dict[str, tuple[str, str]] = field(default_factory=dict)
    edges: set[str] = field(default_factory=set)
    score: float = 0.0


@dataclass(slots=True)
class PrunedSubgraph:
    """The ranked ego-graphs after soft pruning: kept elements and their scales α."""

    egos: list[EgoGraph]
    nodes: dict[str, float]
    edges: dict[str, float]


@dataclass(slots=True)
class GraphSearchResult:
    """Evidence (one item per supporting chunk), the prompt description and the subgraph."""

    evidence: list[Evidence]
    description: str
    subgraph: PrunedSubgraph


def triple_text(graph: KnowledgeGraph, rel: Relation) -> str:
    """``"Subject predicate Object"`` with entity display names."""
    return f"{graph.entity(rel.subject).name} {rel.predicate} {graph.entity(rel.object).name}"


def relation_text(graph: KnowledgeGraph, rel: Relation) -> str:
    """The text embedded for an edge: the triple, then its description."""
    return triple_text(graph, rel) + (f": {rel.description}" if rel.description else "")


class GraphRetriever:
    """``retrieve(query, k) -> list[Evidence]`` over a :class:`KnowledgeGraph`.

    Args:
        graph: the knowledge graph.
        embedder: the index's embedder (queries, and profiles missing from the store).
        store: vector store holding entity profile vectors (collection ``entities``); None
            keeps them in memory (computed on first use).
        config: retrieval settings.
        chunks: optional chunk lookup; when given, evidence text is the chunk text (with the
            graph facts in ``Evidence.facts``), otherwise the facts themselves.
    """

    def __init__(self, graph: KnowledgeGraph, embedder: Embedder, store: VectorStore | None = None,
                 config: GraphRetrievalConfig = GraphRetrievalConfig(), *, chunks: ChunkLookup | None = None) -> None:
        self.graph, self.embedder, self.store, self.config, self.chunks = graph, embedder, store, config, chunks
        self.refresh()

    @classmethod
    def from_index(cls, index: Any, config: GraphRetrievalConfig = GraphRetrievalConfig()) -> "GraphRetriever":
        """The retriever of a ``branchwise.retrieval.index.Index`` (its graph, embedder, store, chunks)."""
        graph = KnowledgeGraph.load(index.graph_dir)
        return cls(graph, index.embedder, index.store, config, chunks=index.chunks)

    def refresh(self) -> None:
        """Re-read the graph after it changed (names and cached vectors)."""
        self.names = NameIndex()
        for ent in self.graph.entities():
            self.names.add(ent.id, ent.aliases)
        self._node_vec: dict[str, np.ndarray] = {}
        self._edge_vec: dict[str, np.ndarray] = {}

    # -- vectors ----------------------------------------------------------------------------
    def _node_vecs(self, ids: Sequence[str]) -> None:
        todo = [i for i in dict.fromkeys(ids) if i not in self._node_vec]
        if todo and self.store is not None:
            try:
                self._node_vec.update(zip(todo, self.store.get_embeddings(self.config.collection, todo), strict=True))
            except Exception as e:  # noqa: BLE001 - vectors not synced: embed them instead
                log.debug("entity vectors missing from the store (%s); embedding profiles", e)
            todo = [i for i in todo if i not in self._node_vec]
        if todo:
            self._node_vec.update(zip(todo, self.embedder.embed([self.graph.entity(i).profile() for i in todo])))

    def _edge_vecs(self, ids: Sequence[str]) -> None:
        todo = [i for i in dict.fromkeys(ids) if i not in self._edge_vec]
        if todo:
            texts = [relation_text(self.graph, self.graph.relation(i)) for i in todo]
            self._edge_vec.update(zip(todo, self.embedder.embed(texts), strict=True))

    # -- 1. seeds ---------------------------------------------------------------------------
    def seeds(self, query: str, q: np.ndarray) -> list[tuple[str, float]]:
        """Seed entities with scores, best first."""
        c = self.config
        scores = {e: s for e, s in self.names.find_in_text(query).items() if e in self.graph}
        if self.store is not None:
            hits = self.store.query(c.collection, q, c.seed_candidates)
        else:
            ids = [e.id for e in self.graph.entities()]
            self._node_vecs(ids)
            sims = np.stack([self._node_vec[i] for i in ids]) @ q if ids else np.zeros(0)
            hits = [(ids[i], float(sims[i])) for i in np.argsort(-sims, kind="stable")[: c.seed_candidates]]
        for eid, sim in hits:
            if eid in self.graph:
                scores[eid] = max(scores.get(eid, 0.0), sim)
        ranked = sorted(((e, s) for e, s in scores.items() if s >= c.min_seed_score), key=lambda t: (-t[1], t[0]))
        return ranked[: c.seed_candidates]

    # -- 2. ego-graphs ----------------------------------------------------------------------
    def _relevance(self, q: np.ndarray, nodes: Sequence[str], edges: Sequence[str]) -> tuple[Scores, Scores]:
        self._node_vecs(nodes)
        self._edge_vecs(edges)
        return ({n: float(self._node_vec[n] @ q) for n in nodes}, {e: float(self._edge_vec[e] @ q) for e in edges})

    def ego_graph(self, seed: str, seed_score: float, q: np.ndarray) -> tuple[EgoGraph, Scores, Scores]:
        """Relevance-guided BFS around ``seed``; returns the ego-graph and element relevances."""
        ego = EgoGraph(seed, seed_score, depth={seed: 0})
        node_rel, edge_rel = self._relevance(q, [seed], [])
        frontier = [seed]
        for hop in range(1, self.config.hops + 1):
            cand: dict[str, tuple[str, str]] = {}
            for u in frontier:
                for rel in self.graph.incident(u):
                    v = rel.object if rel.subject == u else rel.subject
                    if v not in ego.depth and v not in cand:
                        cand[v] = (u, rel.id)
            if not cand:
                break
            nr, er = self._relevance(q, list(cand), [r for _, r in cand.values()])
            node_rel.update(nr)
            edge_rel.update(er)
            room = self.config.max_ego_nodes - len(ego.depth)
            best = sorted(cand, key=lambda v: (-max(nr[v], er[cand[v][1]]), v))[: max(0, room)]
            for v in best:
                ego.depth[v], ego.parent[v] = hop, cand[v]
            frontier = best
        inside = set(ego.depth)
        ego.edges = {r.id for n in inside for r in self.graph.incident(n) if r.subject in inside and r.object in inside}
        _, er = self._relevance(q, [], sorted(ego.edges))
        edge_rel.update(er)
        others = [v for n, v in node_rel.items() if n != seed and n in inside] + list(er.values())
        top = sorted(others, reverse=True)[:3]
        ego.score = (seed_score + (float(np.mean(top)) if top else 0.0)) / 2
        return ego, node_rel, edge_rel

    # -- 3. soft pruning --------------------------------------------------------------------
    def prune(self, egos: list[EgoGraph], node_rel: Scores, edge_rel: Scores) -> PrunedSubgraph:
        ratio = self.config.prune_ratio
        nodes_in = {n for ego in egos for n in ego.depth}
        edges_in = {e for ego in egos for e in ego.edges}
        best_n = max([node_rel[n] for n in nodes_in] + [1e-6])
        best_e = max([edge_rel[e] for e in edges_in] + [1e-6])
        alpha_n = {n: min(1.0, max(0.0, node_rel[n] / best_n)) for n in nodes_in}
        alpha_e = {e: min(1.0, max(0.0, edge_rel[e] / best_e)) for e in edges_in}
        keep_n = {n for n, a in alpha_n.items() if a >= ratio} | {ego.seed for ego in egos}
        keep_e = {e for e, a in alpha_e.items() if a >= ratio}
        for e in keep_e:
            rel = self.graph.relation(e)
            keep_n |= {rel.subject, rel.object}
        for ego in egos:  # path-aware: keep the BFS path from each kept node back to the seed
            for n in [n for n in ego.depth if n in keep_n]:
                while n in ego.parent:
                    n, e = ego.parent[n]
                    keep_n.add(n)
                    keep_e.add(e)
        return PrunedSubgraph(egos, {n: alpha_n[n] for n in keep_n}, {e: alpha_e[e] for e in keep_e})

    # -- 4./5. search -----------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> GraphSearchResult:
        """Seeds → ego-graphs → soft pruning → chunk evidence + hierarchical description."""
        c = self.config
        q = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
        node_rel: dict[str, float] = {}
        edge_rel: dict[str, float] = {}
        egos = []
        for seed, score in self.seeds(query, q):
            ego, nr, er = self.ego_graph(seed, score, q)
            egos.append(ego)
            node_rel.update(nr)
            edge_rel.update(er)
        egos = sorted(egos, key=lambda g: (-g.score, g.seed))[: c.seed_k]
        sub = self.prune(egos, node_rel, edge_rel)
        edge_w: Scores = {}  # an element in several ego-graphs counts once, at its best weight
        node_w: Scores = {}
        for ego in egos:
            for e in ego.edges & sub.edges.keys():
                rel = self.graph.relation(e)
                hop = max(ego.depth[rel.subject], ego.depth[rel.object])
                w = sub.edges[e] * ego.seed_score * c.hop_decay ** (hop - 1)
                edge_w[e] = max(w, edge_w.get(e, 0.0))
            for n in ego.depth.keys() & sub.nodes.keys():
                w = c.node_weight * sub.nodes[n] * ego.seed_score * c.hop_decay ** ego.depth[n]
                node_w[n] = max(w, node_w.get(n, 0.0))
        support: dict[str, list[float]] = {}
        facts: dict[str, list[str]] = {}
        for e, w in sorted(edge_w.items()):
            support.setdefault(self.graph.relation(e).chunk_id, []).append(w)
        for n, w in sorted(node_w.items()):
            for cid in self.graph.entity(n).chunk_ids:
                support.setdefault(cid, []).append(w)
        for e in sorted(sub.edges):
            rel = self.graph.relation(e)
            facts.setdefault(rel.chunk_id, []).append(rel.description or triple_text(self.graph, rel))
        scored = sorted(((1.0 - float(np.prod([1.0 - min(w, 1.0) for w in ws])), cid) for cid, ws in support.items()),
                        key=lambda t: (-t[0], t[1]))[:k]
        evidence = [self._evidence(cid, score, facts.get(cid, []), query) for score, cid in scored]
        return GraphSearchResult(evidence, describe_subgraph(self.graph, sub, c.max_description_lines), sub)

    def _evidence(self, chunk_id: str, score: float, facts: list[str], query: str) -> Evidence:
        try:
            chunk = self.chunks.get(chunk_id) if self.chunks is not None else None
        except KeyError:  # the graph is ahead of the chunk store (e.g. mid-update)
            chunk = None
        if chunk is None:
            profiles = (self.graph.entity(e).profile() for e in self.graph.entities_for_chunk(chunk_id))
            text = "\n".join(facts) or "; ".join(profiles)
            return Evidence(chunk_id, text, score, "graph", query=query, facts=list(facts))
        return Evidence(chunk_id, chunk.text, score, "graph", query=query, facts=list(facts), title=chunk.title)

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]:
        """The top-``k`` supporting chunks as graph evidence."""
        return self.search(query, k).evidence

    def describe(self, query: str) -> str:
        """The hierarchical text description of the query's pruned subgraph (for prompts)."""
        return self.search(query, k=0).description


def describe_subgraph(graph: KnowledgeGraph, sub: PrunedSubgraph, max_lines: int = 40) -> str:
    """Render the pruned subgraph hierarchically (see the module docstring, step 5)."""
    lines = ["Knowledge graph (A → p → B: A p B; ← p ← B: B p A; [chunk id] = source):"]
    shown: set[str] = set()
    printed: set[str] = set()

    def label(n: str, expand: bool) -> str:
        ent = graph.entity(n)
        if not expand:
            return f"{ent.name} (see above)"
        desc = ent.descriptions[0] if ent.descriptions else ""
        return f"{ent.name} ({ent.type})" + (f": {desc}" if desc else "")

    def walk(ego: EgoGraph, u: str, indent: int) -> None:
        kids = [(v, pe) for v, (p, pe) in ego.parent.items() if p == u and v in sub.nodes and pe in sub.edges]
        for v, _ in sorted(kids, key=lambda t: (-sub.nodes[t[0]], t[0])):
            rels = sorted(e for e in ego.edges & sub.edges.keys() - printed
                           if {graph.relation(e).subject, graph.relation(e).object} == {u, v})
            if not rels:  # its links were already printed under an earlier seed
                continue
            expand = v not in shown
            shown.add(v)
            for i, e in enumerate(rels):
                rel = graph.relation(e)
                arrow = f"→ {rel.predicate} →" if rel.subject == u else f"← {rel.predicate} ←"
                target = label(v, expand) if i == 0 else graph.entity(v).name
                lines.append(f"{'  ' * indent}{arrow} {target} [{rel.chunk_id}]")
                printed.add(e)
            if expand:
                walk(ego, v, indent + 1)

    for ego in sub.egos:
        start, seen_before = len(lines), ego.seed in shown
        shown.add(ego.seed)
        walk(ego, ego.seed, 1)
        if not seen_before or len(lines) > start:  # skip a seed already shown that adds nothing
            lines.insert(start, f"{sum(ln[:1].isdigit() for ln in lines) + 1}. {label(ego.seed, not seen_before)}")
    other = sorted(sub.edges.keys() - printed)
    if other:
        lines.append("Other links:")
        for e in other:
            rel = graph.relation(e)
            s, o = graph.entity(rel.subject).name, graph.entity(rel.object).name
            lines.append(f"  {s} → {rel.predicate} → {o} [{rel.chunk_id}]")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"… ({len(lines) - max_lines} more lines omitted)"]
    return "\n".join(lines)
