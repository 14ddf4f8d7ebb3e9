"""The branchwise navigator and agent in the comparison, assembled by the composition root.

Registered names:

* ``navigator:<scorer>`` for every scorer in :data:`branchwise.navigation.registry.SCORERS`
  (``navigator:embedding``, ``navigator:yesno``, ``navigator:llm``, ...) — LATTICE-style tree
  navigation with that scorer; retrieval only.
* the agent and its variants (:data:`AGENT_VARIANTS`), each a change of
  :class:`branchwise.Settings` over the run's settings, never separate wiring: every one is
  built by :class:`branchwise.assembly.root.Assembly`, exactly as ``bw.ask`` builds it.
"""

from __future__ import annotations

from typing import Any

from branchwise.assembly.root import Assembly
from branchwise.errors import InputError
from branchwise.evals.systems import (
    Stopwatch,
    SystemContext,
    SystemOutput,
    SystemSpec,
    register_system,
    usage_from_meter,
)
from branchwise.navigation.navigate import navigate
from branchwise.navigation.registry import SCORERS
from branchwise.relevance.base import passage_text
from branchwise.types import ScoredChunk, Usage

#: agent variants: name -> (Settings.replace(...) changes, description, needs a tree)
AGENT_VARIANTS: dict[str, tuple[dict[str, Any], str, bool]] = {
    "agent": ({}, "branchwise agent with the default settings (what bw.ask runs)", True),
    "agent_tight": ({"agent": {"context_budget_tokens": 100}},
                    "the agent compressed to 100 tokens (~15% of naive RAG's context)", True),
    "agent_nocompress": ({"compression": {"mode": "none"}}, "the agent without compression (truncation)", True),
    "agent_hybrid": ({"agent": {"retrieval": "hybrid"}}, "the agent on hybrid retrieval (no tree)", False),
    "agent_graph": ({"agent": {"graph": "always"}}, "the agent with the graph route always on", True),
    # ablations of the cascade (issue "agent answers better"): one part changed at a time
    "agent_norerank": ({"reranker": "none"}, "the agent without a reranker (the routes' own scores)", True),
    "agent_onehop": ({"agent": {"max_rounds": 1}}, "the agent without the second hop", True),
    "agent_keep3": ({"agent": {"keep": 3}}, "the agent reading its 3 best passages (no compression when they fit)",
                    True),
    "agent_256": ({"agent": {"context_budget_tokens": 256}}, "the agent compressed to 256 tokens", True),
    "agent_read5": ({"agent": {"keep": 5, "context_budget_tokens": 1024}},
                    "the agent reading its 5 best passages whole (hybrid_rag's amount, the agent's selection)", True),
    "agent_summaries": ({"agent": {"summaries": 4}}, "the agent with the tree's summaries as candidates", True),
    "agent_rfm": ({"agent": {"plan": True, "feedback": "logprob", "gap_query": "template", "support": "none"}},
                  "the LLM-judged RFM-RAG loop (plan, P(Yes) sufficiency, LLM gap queries)", True),
}


# ------------------------------------------------------------------------------- navigator
class NavigatorSystem:
    """Tree navigation with one scorer; the ranked leaves are the retrieval result."""

    def __init__(self, ctx: SystemContext, scorer: str) -> None:
        self.name = f"navigator:{scorer}"
        self._ctx = ctx
        self._needs_llm = "llm" in SCORERS.get(scorer).needs
        self._assembly = Assembly(ctx.index, ctx.settings.replace(scorer=scorer))

    def run(self, question: str) -> SystemOutput:
        parts = self._assembly
        if not self._needs_llm:
            with Stopwatch() as sw:
                result = navigate(parts.tree_resources, parts.scorer(), question, parts.settings.navigator)
            usage = result.usage
        else:
            with self._ctx.session_llm() as llm, Stopwatch() as sw:
                result = navigate(parts.tree_resources, parts.scorer(llm), question, parts.settings.navigator)
            usage = usage_from_meter(llm.meter, sw.seconds)
        usage.latency_s = sw.seconds
        trace = result.trace
        info = {"iterations": len(getattr(trace, "steps", []) or []), "stop": getattr(trace, "stop_reason", "")}
        return SystemOutput(retrieved=list(result.ranked[: self._ctx.k]), usage=usage, info=info)


# ------------------------------------------------------------------------------- reranked hybrid
class RerankedSystem:
    """Hybrid search's top ``candidates`` reordered by the run's reranker (``Settings.reranker``):
    the cascade's precision stage alone, a flat retrieval baseline for the navigator and agent."""

    def __init__(self, ctx: SystemContext, candidates: int = 50) -> None:
        self.name = "hybrid_rerank"
        self._ctx = ctx
        self._candidates = candidates
        self._reranker = Assembly(ctx.index, ctx.settings).reranker()
        if self._reranker is None:
            raise InputError("system 'hybrid_rerank' needs a reranker.", fix="set --reranker (e.g. default).")

    def run(self, question: str) -> SystemOutput:
        from branchwise.relevance.base import rank

        with Stopwatch() as sw:
            hits = self._ctx.index.search_hybrid(question, self._candidates)
            chunks = [self._ctx.index.chunks.get(h.chunk_id) for h in hits]
            scores = self._reranker.score(question, [passage_text(c.title, c.text) for c in chunks])
            ranked = [ScoredChunk(hits[i].chunk_id, scores[i], "hybrid_rerank") for i in rank(scores)]
        return SystemOutput(retrieved=ranked[: self._ctx.k], usage=Usage(embed_calls=1, latency_s=sw.seconds),
                            info={"candidates": len(hits)})


# ------------------------------------------------------------------------------- agent
def _agent_ranking(trace: Any) -> list[ScoredChunk]:
    """The agent's evidence in order of discovery (round by round, each call's ranking)."""
    out: list[ScoredChunk] = []
    seen: set[str] = set()
    for rec in getattr(trace, "retrievals", []) or []:
        for cid, score in zip(rec["chunk_ids"], rec["scores"]):
            if cid not in seen:
                seen.add(cid)
                out.append(ScoredChunk(cid, float(score), f"agent:{rec['source']}"))
    return out


class AgentSystem:
    """The branchwise agent answering with citations, assembled from the run's settings plus
    the variant's changes (a fresh agent per question over parts built once)."""

    def __init__(self, ctx: SystemContext, name: str, changes: dict[str, Any] | None = None) -> None:
        self.name = name
        self._ctx = ctx
        settings = ctx.settings.replace(agent={"answer_style": ctx.answer_style}).replace(**(changes or {}))
        self.assembly = Assembly(ctx.index, settings)
        if settings.agent.graph == "always" and self.assembly.graph_search is None:
            raise InputError(f"system {name!r} needs a graph and {ctx.index.graph_dir} has none.",
                             fix="build the graph stage of the index first (`branchwise index ... --graph on`).")

    def run(self, question: str) -> SystemOutput:
        with self._ctx.session_llm() as llm, Stopwatch() as sw:
            with self.assembly.agent(llm=llm) as agent:
                answer = agent.ask(question)
        usage = usage_from_meter(llm.meter, sw.seconds)
        answer.usage = usage
        trace = answer.trace
        info = {"rounds": len(getattr(trace, "rounds", []) or []), "stop": getattr(trace, "stop_reason", "")}
        comp = getattr(trace, "compression", None)
        if comp:
            info["compression_ratio"] = comp.get("ratio")
            info["tokens_before_compression"] = comp.get("tokens_before")
        return SystemOutput(retrieved=_agent_ranking(trace)[: max(self._ctx.k, 1)], answer=answer, usage=usage,
                            context_tokens=answer.context_tokens, info=info)


def _register() -> None:
    for entry in SCORERS:
        register_system(SystemSpec(f"navigator:{entry.name}", lambda ctx, s=entry.name: NavigatorSystem(ctx, s),
                                   f"tree navigation, {entry.description}", needs_llm="llm" in entry.needs,
                                   needs_tree=True))
    register_system(SystemSpec("hybrid_rerank", RerankedSystem,
                               "hybrid top-50 reordered by the reranker (Settings.reranker)"))
    for name, (changes, what, needs_tree) in AGENT_VARIANTS.items():
        register_system(SystemSpec(name, lambda ctx, n=name, c=changes: AgentSystem(ctx, n, c), what, needs_llm=True,
                                   needs_tree=needs_tree))


_register()
