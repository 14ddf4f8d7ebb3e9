"""Links between the semantic tree and the knowledge graph, through chunk ids.

Tree leaves stand for chunks (``Node.chunk_id``), entities and relations record the chunks
they come from, so the two indices are joined without storing anything extra:

* entity → leaves: its mention chunks, each mapped by ``Tree.leaf_for_chunk``;
* leaf → entities: the entities the leaf's chunk mentions;
* :meth:`TreeGraphLink.jump`: from a leaf the navigator reached, to its entities' k-hop
  neighbourhood, to the chunks that support that neighbourhood, and back to their leaves
  (with root paths, so navigation can resume there). This is how the agent follows a
  bridge entity into another branch of the tree, where the tree's topical clustering
  separated two facts a multi-hop question needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from branchwise.graph.types import KnowledgeGraph
from branchwise.retrieval.tree import Tree


@dataclass(slots=True)
class LeafJump:
    """The result of jumping from a leaf through the graph.

    Attributes:
        origin: the leaf jumped from.
        entities: the origin leaf's entities.
        neighbours: entity id → hop distance from the origin's entities (1..hops).
        leaves: other leaves supporting the neighbourhood, ``(leaf id, score in (0, 1])``,
            best first. Score: relations count 1/hop, mentions 0.5/hop, divided by the max.
        paths: leaf id → node ids up to the root (to resume tree navigation there).
    """

    origin: str
    entities: list[str]
    neighbours: dict[str, int] = field(default_factory=dict)
    leaves: list[tuple[str, float]] = field(default_factory=list)
    paths: dict[str, list[str]] = field(default_factory=dict)


class TreeGraphLink:
    """Bidirectional entity ↔ leaf lookup over a graph and a tree (both read-only here)."""

    def __init__(self, graph: KnowledgeGraph, tree: Tree) -> None:
        self.graph, self.tree = graph, tree

    def leaves_of_entity(self, entity_id: str) -> list[str]:
        """Leaf ids whose chunks mention the entity."""
        out = []
        for cid in self.graph.entity(entity_id).chunk_ids:
            leaf = self.tree.leaf_for_chunk(cid)
            if leaf is not None:
                out.append(leaf.id)
        return out

    def entities_of_leaf(self, leaf_id: str) -> list[str]:
        """Entity ids mentioned by the leaf's chunk ([] for internal nodes)."""
        cid = self.tree[leaf_id].chunk_id
        return self.graph.entities_for_chunk(cid) if cid is not None else []

    def neighbourhood(self, entity_ids: Iterable[str], hops: int = 1) -> dict[str, int]:
        """Entities within ``hops`` edges (either direction) of ``entity_ids``, with distance."""
        dist = {e: 0 for e in entity_ids if e in self.graph}
        frontier = list(dist)
        for hop in range(1, hops + 1):
            nxt = []
            for u in frontier:
                for v in sorted(set(self.graph.g.successors(u)) | set(self.graph.g.predecessors(u))):
                    if v not in dist:
                        dist[v] = hop
                        nxt.append(v)
            frontier = nxt
        return dist

    def jump(self, leaf_id: str, hops: int = 1, max_leaves: int = 10) -> LeafJump:
        """From a leaf to its entities' neighbourhood and back to the leaves that support it."""
        ents = self.entities_of_leaf(leaf_id)
        dist = self.neighbourhood(ents, hops)
        score: dict[str, float] = {}
        origin_chunk = self.tree[leaf_id].chunk_id

        def credit(chunk_id: str, w: float) -> None:
            leaf = self.tree.leaf_for_chunk(chunk_id)
            if leaf is not None and chunk_id != origin_chunk:
                score[leaf.id] = score.get(leaf.id, 0.0) + w

        for u, du in dist.items():
            for rel in self.graph.incident(u):  # each relation once: from its subject
                if rel.subject == u and rel.object in dist:
                    credit(rel.chunk_id, 1.0 / max(1, du, dist[rel.object]))
            if du > 0:
                for cid in self.graph.entity(u).chunk_ids:
                    credit(cid, 0.5 / du)
        top = max(score.values(), default=1.0)
        ranked = sorted(((lid, s / top) for lid, s in score.items()), key=lambda t: (-t[1], t[0]))[:max_leaves]
        return LeafJump(leaf_id, ents, {e: d for e, d in dist.items() if d > 0}, ranked,
                        {lid: self.tree.path_to_root(lid) for lid, _ in ranked})

    def unlinked_chunks(self) -> list[str]:
        """Graph chunk ids with no tree leaf (non-empty means the two indices diverged)."""
        return sorted(c for c in self.graph.chunk_ids() if self.tree.leaf_for_chunk(c) is None)
