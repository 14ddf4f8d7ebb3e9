"""The semantic tree: nodes, invariants, JSON persistence, networkx view.

Format (``tree.json`` in the index directory, schema ``branchwise.tree/1``)::

    {
      "schema": "branchwise.tree/1",
      "root": "n0",
      "strategy": "bottom_up" | "top_down",
      "max_children": 12,
      "nodes": [
        {"id": "n0", "level": 2, "parent": null, "children": ["n1", ...],
         "summary": "...", "stale": false, "chunk_id": null},
        {"id": "l17", "level": 0, "parent": "n4", "children": [],
         "summary": "", "stale": false, "chunk_id": "doc.md#3"},
        ...
      ]
    }

Levels count up from the leaves (level 0) so that leaves added later never renumber the
internal nodes. A leaf's text is its chunk's text (kept in ``chunks.jsonl``, not here).
Node summary embeddings live in the Chroma collection ``nodes`` under the node id.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from branchwise.errors import IndexFormatError

TREE_SCHEMA = "branchwise.tree/1"


@dataclass(slots=True)
class Node:
    """A tree node.

    Attributes:
        id: unique node id (leaves ``l*``, internal ``n*`` by convention; not relied upon).
        level: 0 for leaves, parent level = 1 + max child level.
        parent: parent id, None for the root.
        children: ordered child ids (empty for leaves).
        summary: what the subtree covers (internal nodes); empty for leaves.
        stale: True when the summary no longer reflects the subtree (after an update).
        chunk_id: for leaves, the chunk the leaf stands for; None for internal nodes.
    """

    id: str
    level: int
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    summary: str = ""
    stale: bool = False
    chunk_id: str | None = None

    @property
    def is_leaf(self) -> bool:
        return self.chunk_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "level": self.level,
            "parent": self.parent,
            "children": list(self.children),
            "summary": self.summary,
            "stale": self.stale,
            "chunk_id": self.chunk_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Node:
        return cls(
            id=str(d["id"]),
            level=int(d["level"]),
            parent=d.get("parent"),
            children=list(d.get("children", [])),
            summary=str(d.get("summary", "")),
            stale=bool(d.get("stale", False)),
            chunk_id=d.get("chunk_id"),
        )


@dataclass(slots=True)
class Tree:
    """A rooted tree over chunks. Mutable (incremental updates edit it in place)."""

    nodes: dict[str, Node]
    root: str
    strategy: str = "bottom_up"
    max_children: int = 12
    _leaf_by_chunk: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    # -- access -------------------------------------------------------------------------
    def reindex(self) -> None:
        """Rebuild the chunk → leaf lookup (call after structural edits)."""
        self._leaf_by_chunk = {n.chunk_id: n.id for n in self.nodes.values() if n.chunk_id is not None}

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def __len__(self) -> int:
        return len(self.nodes)

    def children(self, node_id: str) -> list[Node]:
        return [self.nodes[c] for c in self.nodes[node_id].children]

    def leaves(self) -> Iterator[Node]:
        return (n for n in self.nodes.values() if n.is_leaf)

    def leaf_for_chunk(self, chunk_id: str) -> Node | None:
        nid = self._leaf_by_chunk.get(chunk_id)
        return self.nodes[nid] if nid is not None else None

    def path_to_root(self, node_id: str) -> list[str]:
        """Node ids from ``node_id`` up to and including the root."""
        path = [node_id]
        while (p := self.nodes[path[-1]].parent) is not None:
            path.append(p)
        return path

    def leaves_under(self, node_id: str) -> list[Node]:
        out, stack = [], [node_id]
        while stack:
            n = self.nodes[stack.pop()]
            if n.is_leaf:
                out.append(n)
            else:
                stack.extend(reversed(n.children))
        return out

    @property
    def depth(self) -> int:
        """Number of edges from the root to the deepest leaf."""
        return self.nodes[self.root].level

    # -- invariants ---------------------------------------------------------------------
    def validate(self, chunk_ids: set[str] | None = None) -> None:
        """Raise :class:`IndexFormatError` unless the tree is valid.

        Checks: the root exists and has no parent; parent/child links agree; every node is
        reachable from the root exactly once; branching ≤ ``max_children``; levels are
        consistent; leaves are exactly the internal-childless nodes; if ``chunk_ids`` is
        given, every chunk has exactly one leaf.
        """
        if self.root not in self.nodes:
            raise IndexFormatError(f"tree root {self.root!r} is not a node.", fix="rebuild the tree")
        if self.nodes[self.root].parent is not None:
            raise IndexFormatError("tree root has a parent.", fix="rebuild the tree")
        seen: set[str] = set()
        stack = [self.root]
        while stack:
            nid = stack.pop()
            if nid in seen:
                raise IndexFormatError(f"node {nid!r} is reachable twice.", fix="rebuild the tree")
            seen.add(nid)
            node = self.nodes[nid]
            if node.is_leaf:
                if node.children or node.level != 0:
                    raise IndexFormatError(f"leaf {nid!r} has children or level != 0.", fix="rebuild the tree")
                continue
            if not node.children:
                raise IndexFormatError(f"internal node {nid!r} has no children.", fix="rebuild the tree")
            if len(node.children) > self.max_children:
                raise IndexFormatError(
                    f"node {nid!r} has {len(node.children)} children > max {self.max_children}.",
                    fix="rebuild the tree",
                )
            for c in node.children:
                if c not in self.nodes:
                    raise IndexFormatError(f"node {nid!r} names missing child {c!r}.", fix="rebuild the tree")
                if self.nodes[c].parent != nid:
                    raise IndexFormatError(f"child {c!r} does not point back to {nid!r}.", fix="rebuild the tree")
            if node.level != 1 + max(self.nodes[c].level for c in node.children):
                raise IndexFormatError(f"node {nid!r} has an inconsistent level.", fix="rebuild the tree")
            stack.extend(node.children)
        if seen != set(self.nodes):
            orphans = sorted(set(self.nodes) - seen)[:5]
            raise IndexFormatError(f"{len(self.nodes) - len(seen)} nodes unreachable, e.g. {orphans}.", fix="rebuild the tree")
        if chunk_ids is not None:
            leaf_chunks = Counter(n.chunk_id for n in self.leaves())
            dup = [c for c, k in leaf_chunks.items() if k > 1]
            missing = chunk_ids - set(leaf_chunks)
            extra = set(leaf_chunks) - chunk_ids
            if dup or missing or extra:
                raise IndexFormatError(
                    f"tree leaves do not match the chunks: {len(dup)} duplicated, {len(missing)} missing, {len(extra)} unknown.",
                    fix="rebuild the tree",
                )

    def stats(self) -> dict[str, Any]:
        """Depth, node counts and the branching histogram (for ``branchwise info``)."""
        internal = [n for n in self.nodes.values() if not n.is_leaf]
        return {
            "strategy": self.strategy,
            "depth": self.depth,
            "nodes": len(self.nodes),
            "leaves": sum(1 for _ in self.leaves()),
            "internal": len(internal),
            "max_children": self.max_children,
            "branching_histogram": dict(sorted(Counter(len(n.children) for n in internal).items())),
            "nodes_per_level": dict(sorted(Counter(n.level for n in self.nodes.values()).items())),
            "stale": sum(1 for n in internal if n.stale),
        }

    # -- views and persistence ------------------------------------------------------------
    def to_networkx(self) -> nx.DiGraph:
        """A DiGraph with parent → child edges and node attributes from :class:`Node`."""
        g = nx.DiGraph()
        for n in self.nodes.values():
            g.add_node(n.id, **{k: v for k, v in n.to_dict().items() if k not in ("id", "children")})
        for n in self.nodes.values():
            for c in n.children:
                g.add_edge(n.id, c)
        g.graph.update(root=self.root, strategy=self.strategy, max_children=self.max_children)
        return g

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": TREE_SCHEMA,
            "root": self.root,
            "strategy": self.strategy,
            "max_children": self.max_children,
            "nodes": [n.to_dict() for n in self.nodes.values()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tree:
        if d.get("schema") != TREE_SCHEMA:
            raise IndexFormatError(
                f"tree schema {d.get('schema')!r} is not {TREE_SCHEMA!r}.",
                fix="rebuild the index with this version of branchwise (branchwise index ...).",
            )
        nodes = {n["id"]: Node.from_dict(n) for n in d["nodes"]}
        return cls(nodes=nodes, root=d["root"], strategy=d.get("strategy", "bottom_up"), max_children=int(d["max_children"]))

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename)."""
        from branchwise.files import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Tree:
        path = Path(path)
        if not path.exists():
            raise IndexFormatError(f"no tree at {path}.", fix="build one with `branchwise index PATH --out DIR`.")
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise IndexFormatError(f"tree file {path} is corrupt: {e}.", fix="rebuild the tree (branchwise index ... --rebuild-tree).") from e
