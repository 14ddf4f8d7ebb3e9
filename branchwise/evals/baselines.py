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

from typing import Any, Callable


from branchwise.evals.systems import (
    Stopwatch,
    SystemContext,
    SystemOutput,
    SystemSpec,
    register_system,
    usage_from_meter,
)
from branchwise.navigation.collapsed import CollapsedTree
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
