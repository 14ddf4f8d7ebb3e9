"""RAPTOR's collapsed tree (Sarthi et al. 2024, arXiv 2401.18059): every tree node in one flat index.

Leaf chunks and internal-node summaries sit side by side and a query takes the top nodes by
cosine, ignoring the hierarchy. The ``raptor`` evaluation baselines use :meth:`CollapsedTree.retrieve`;
the agent's summary route uses :meth:`CollapsedTree.summaries` (the tree's internal summaries as
evidence, for long documents and questions about a whole story or topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from branchwise.types import Evidence, ScoredChunk


@dataclass(slots=True)
class CollapsedTree:
    """RAPTOR's collapsed-tree view of an index: all node vectors in one matrix.

    Built once per run: leaf vectors come from the chunk collection, summary vectors from
    the node collection; search is one matrix-vector product (exact, no HNSW).
    """

    index: Any
    node_ids: list[str]
    matrix: np.ndarray

    @classmethod
    def from_index(cls, index: Any) -> "CollapsedTree":
        tree = index.tree
        leaves = [n for n in tree.nodes.values() if n.is_leaf]
        internal = [n.id for n in tree.nodes.values() if not n.is_leaf]
        parts = [np.asarray(index.chunk_embeddings([n.chunk_id for n in leaves]), dtype=np.float32)]
        if internal:
            parts.append(np.asarray(index.node_embeddings(internal), dtype=np.float32))
        return cls(index, [n.id for n in leaves] + internal, np.vstack(parts))

    def _scores(self, question: str) -> np.ndarray:
        return self.matrix @ np.asarray(self.index.embedder.embed_query(question), dtype=np.float32)

    def top_nodes(self, question: str, n: int) -> tuple[list[tuple[str, float]], np.ndarray]:
        sims = self._scores(question)
        order = np.argsort(-sims)[:n]
        return [(self.node_ids[i], float(sims[i])) for i in order], sims

    def _leaf_sims(self, node_id: str, sims: np.ndarray, pos: dict[str, int]) -> list[tuple[str, float]]:
        tree = self.index.tree
        leaves = tree.leaves_under(node_id)
        scored = [(str(lf.chunk_id), float(sims[pos[lf.id]])) for lf in leaves]
        return sorted(scored, key=lambda t: -t[1])

    def search(self, question: str, k: int) -> list[ScoredChunk]:
        """Top nodes, summaries expanded to their leaves, first ``k`` distinct chunks."""
        ranked, _ = self.retrieve(question, k, k)
        return ranked

    def summaries(self, question: str, n: int, source: str = "summary") -> list[Evidence]:
        """The ``n`` internal nodes most similar to ``question`` as evidence: each summary's
        text, cited through its best-matching leaf (so citations point at real chunks)."""
        tree = self.index.tree
        pos = {nid: i for i, nid in enumerate(self.node_ids)}
        sims = self._scores(question)
        internal = [i for i, nid in enumerate(self.node_ids) if not tree[nid].is_leaf]
        out: list[Evidence] = []
        for i in sorted(internal, key=lambda i: -sims[i])[:n]:
            nid = self.node_ids[i]
            leaves = self._leaf_sims(nid, sims, pos)
            if leaves and tree[nid].summary:
                out.append(Evidence(chunk_id=leaves[0][0], text=tree[nid].summary, score=float(sims[i]), source=source,
                                    title=f"summary of {len(leaves)} passages ({nid})"))
        return out

    def retrieve(self, question: str, n_nodes: int, k: int) -> tuple[list[ScoredChunk], list[Evidence]]:
        """Ranked chunks (for metrics) and node evidence (for generation) of the top nodes.

        Each evidence item cites a distinct chunk: a summary cites its best-matching leaf not
        already cited, and a summary whose leaves are all cited already adds nothing and is
        skipped in favour of the next node.
        """
        top, sims = self.top_nodes(question, len(self.node_ids))
        pos = {nid: i for i, nid in enumerate(self.node_ids)}
        tree = self.index.tree
        ranked: list[ScoredChunk] = []
        seen: set[str] = set()
        evidence: list[Evidence] = []
        cited: set[str] = set()
        for nid, score in top:
            if len(ranked) >= k and len(evidence) >= n_nodes:
                break
            node = tree[nid]
            leaves = [(str(node.chunk_id), score)] if node.is_leaf else self._leaf_sims(nid, sims, pos)
            for cid, _ in leaves:
                if cid not in seen and len(ranked) < k:
                    seen.add(cid)
                    ranked.append(ScoredChunk(cid, score, "raptor"))
            free = [cid for cid, _ in leaves if cid not in cited]
            if len(evidence) >= n_nodes or not free:
                continue
            cited.add(free[0])
            if node.is_leaf:
                c = self.index.chunks.get(free[0])
                evidence.append(Evidence(chunk_id=free[0], text=c.text, score=score, source="raptor", title=c.title))
            else:
                evidence.append(Evidence(chunk_id=free[0], text=node.summary, score=score, source="raptor",
                                         title=f"summary of {len(leaves)} passages"))
        return ranked, evidence
