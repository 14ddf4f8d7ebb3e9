"""Baseline systems over the shared index: BM25, dense, hybrid, naive RAG, RAPTOR.

* ``bm25`` / ``dense`` / ``hybrid`` — the index's own retrievers (hybrid = reciprocal rank
  fusion of the two, k = 60; Cormack et al. 2009).
* ``naive_rag`` — dense top-``rag_k`` chunks straight into the cited-answer generator
  (:class:`branchwise.generation.answer.AnswerWriter`): the "retrieve once, then read"
  baseline every agentic system must beat; ``hybrid_rag`` is the same with hybrid search,
  the stronger flat baseline, ``bm25_rag`` with BM25 (one RAG baseline per registered flat
  retriever).
* ``raptor`` / ``raptor_rag`` — RAPTOR's *collapsed tree* retrieval (Sarthi et al. 2024,
  arXiv 2401.18059): every node of the tree (leaf chunks and summaries) sits in one flat
  dense index and the query takes the top nodes by cosine, ignoring the hierarchy. For
  the chunk-level metrics a summary node expands to the leaves under it, ranked by their
  own similarity to the query; for generation a summary is given as its text, cited
  through the best-matching leaf under it (so citations still point at real chunks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from branchwise.evals.systems import (
    Stopwatch,
    SystemContext,
    SystemOutput,
    SystemSpec,
    register_system,
    usage_from_meter,
)
from branchwise.retrieval.registry import RETRIEVERS
from branchwise.types import Answer, Evidence, ScoredChunk, Usage

Search = Callable[[str, int], list[ScoredChunk]]

#: RAG baselines named by custom rather than "<retriever>_rag"
RAG_NAMES = {"dense": "naive_rag"}


class RetrievalSystem:
    """A retriever evaluated on its ranking alone (no LLM)."""

    def __init__(self, name: str, search: Search, k: int) -> None:
        self.name = name
        self._search = search
        self._k = k

    def run(self, question: str) -> SystemOutput:
        with Stopwatch() as sw:
            hits = self._search(question, self._k)
        return SystemOutput(retrieved=hits, usage=Usage(embed_calls=1, latency_s=sw.seconds))


def evidence_from_chunks(index: Any, hits: list[ScoredChunk]) -> list[Evidence]:
    """Evidence items (text and title from the index's chunk store) for ranked chunks."""
    out = []
    for h in hits:
        c = index.chunks.get(h.chunk_id)
        out.append(Evidence(chunk_id=c.id, text=c.text, score=h.score, source=h.source, title=c.title))
    return out


def answer_from_evidence(ctx: SystemContext, question: str, evidence: list[Evidence]) -> tuple[Answer, Usage, int]:
    """Write a cited answer from ``evidence`` with a per-question LLM; returns answer, usage, context tokens."""
    from branchwise.generation.answer import AnswerConfig, AnswerWriter
    from branchwise.compression.base import count_tokens

    with ctx.session_llm() as llm, Stopwatch() as sw:
        written = AnswerWriter(llm, AnswerConfig(style=ctx.answer_style)).write(question, evidence)
    context = sum(count_tokens(e.text) for e in evidence)
    usage = usage_from_meter(llm.meter, sw.seconds)
    answer = Answer(text=written.text, citations=written.citations, found=written.found, usage=usage,
                    context_tokens=context)
    return answer, usage, context


class RAGSystem:
    """Retrieve ``rag_k`` items once, then answer from them (naive RAG)."""

    def __init__(self, name: str, ctx: SystemContext, retrieve: Callable[[str], tuple[list[ScoredChunk], list[Evidence]]]):
        self.name = name
        self._ctx = ctx
        self._retrieve = retrieve

    def run(self, question: str) -> SystemOutput:
        with Stopwatch() as sw:
            ranked, evidence = self._retrieve(question)
        answer, usage, context = answer_from_evidence(self._ctx, question, evidence)
        usage.latency_s += sw.seconds
        usage.embed_calls += 1
        return SystemOutput(retrieved=ranked, answer=answer, usage=usage, context_tokens=context,
                            context_ids=[e.chunk_id for e in evidence])


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


def _register() -> None:
    def retrieval(kind: str) -> Callable[[SystemContext], RetrievalSystem]:
        def make(ctx: SystemContext) -> RetrievalSystem:
            return RetrievalSystem(kind, RETRIEVERS.create(kind, ctx.index), ctx.k)

        return make

    def flat_rag(name: str, kind: str) -> Callable[[SystemContext], RAGSystem]:
        def make(ctx: SystemContext) -> RAGSystem:
            search = RETRIEVERS.create(kind, ctx.index)

            def retrieve(q: str) -> tuple[list[ScoredChunk], list[Evidence]]:
                hits = search(q, max(ctx.k, ctx.rag_k))
                return hits[: ctx.k], evidence_from_chunks(ctx.index, hits[: ctx.rag_k])

            return RAGSystem(name, ctx, retrieve)

        return make

    # every flat retriever is a retrieval-only system and a "read its top 5" RAG system; the dense
    # one keeps its customary name, naive_rag
    for entry in RETRIEVERS:
        register_system(SystemSpec(entry.name, retrieval(entry.name), entry.description))
        rag = RAG_NAMES.get(entry.name, f"{entry.name}_rag")
        register_system(SystemSpec(rag, flat_rag(rag, entry.name),
                                   f"{entry.name} top-5 chunks into the cited-answer generator", needs_llm=True))

    def raptor(ctx: SystemContext) -> RetrievalSystem:
        return RetrievalSystem("raptor", CollapsedTree.from_index(ctx.index).search, ctx.k)

    def raptor_rag(ctx: SystemContext) -> RAGSystem:
        ct = CollapsedTree.from_index(ctx.index)
        return RAGSystem("raptor_rag", ctx, lambda q: ct.retrieve(q, ctx.rag_k, ctx.k))

    register_system(SystemSpec("raptor", raptor, "RAPTOR collapsed tree: all tree nodes in one flat dense index",
                               needs_tree=True))
    register_system(SystemSpec("raptor_rag", raptor_rag, "RAPTOR collapsed tree, top-5 nodes into the generator",
                               needs_llm=True, needs_tree=True))


_register()
