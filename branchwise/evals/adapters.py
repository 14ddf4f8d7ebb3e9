"""Adapters that put the branchwise navigator and agent into the comparison.

Registered names:

* ``navigator:embedding`` / ``navigator:yes_no`` / ``navigator:llm_slate`` — LATTICE-style
  tree navigation (``branchwise.navigation.navigate.navigate``) with each scorer; retrieval only.
* ``agent`` — the LangGraph agent with its default configuration: tree navigation (embedding
  scorer) and extractive compression to the agent's context budget;
* ``agent_tight`` — the agent compressed to 100 evidence tokens, about 15% of naive RAG's
  five chunks: the operating point of the tracked target (F1 ≥ naive RAG + 5 points with
  ≤ 15% of its context tokens);
* ``agent_nocompress`` — the same agent without compression (truncation to the budget);
* ``agent_hybrid`` — the agent retrieving with hybrid search instead of the tree;
* ``agent_graph`` — the agent with the GRAG graph route always on (needs ``graph/``).

Every adapter imports its module only when built, so the runner works with whatever part of
branchwise is present; a missing part is an :class:`~branchwise.errors.InputError` naming it.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

from branchwise.errors import InputError
from branchwise.evals.systems import (
    Stopwatch,
    SystemContext,
    SystemOutput,
    SystemSpec,
    register_system,
    usage_from_meter,
)
from branchwise.types import ScoredChunk


def _require(module: str, system: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise InputError(
            f"system {system!r} needs {module}, which is not part of this build ({e.name} is missing).",
            fix="choose another system (see `branchwise eval --list-systems`).",
        ) from e


# ------------------------------------------------------------------------------- navigator
class NavigatorSystem:
    """Tree navigation with one scorer; the ranked leaves are the retrieval result."""

    def __init__(self, ctx: SystemContext, scorer: str) -> None:
        self.name = f"navigator:{scorer}"
        self._ctx = ctx
        self._scorer = scorer
        self._navigate = _require("branchwise.navigation.navigate", self.name)
        self._resources = self._navigate.TreeResources.from_index(ctx.index)

    def _make_scorer(self, llm: Any) -> Any:
        scorers = _require("branchwise.navigation.scorers", self.name)
        if self._scorer == "embedding":
            priors = _require("branchwise.navigation.priors", self.name)
            vectors = priors.IndexNodeVectors(self._ctx.index, self._resources.tree)
            return scorers.EmbeddingScorer(vectors, self._ctx.embedder)
        if self._scorer == "yes_no":
            return scorers.YesNoScorer(llm)
        return scorers.LLMSlateScorer(llm)

    def run(self, question: str) -> SystemOutput:
        if self._scorer == "embedding":
            with Stopwatch() as sw:
                result = self._navigate.navigate(self._resources, self._make_scorer(None), question)
            usage = result.usage
        else:
            with self._ctx.session_llm() as llm, Stopwatch() as sw:
                result = self._navigate.navigate(self._resources, self._make_scorer(llm), question)
            usage = usage_from_meter(llm.meter, sw.seconds)
        usage.latency_s = sw.seconds
        trace = result.trace
        info = {"iterations": len(getattr(trace, "steps", []) or []), "stop": getattr(trace, "stop_reason", "")}
        return SystemOutput(retrieved=list(result.ranked[: self._ctx.k]), usage=usage, info=info)


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
    """The branchwise agent answering with citations (one Agent per question)."""

    def __init__(self, ctx: SystemContext, name: str, *, compress: bool = True, route: str | None = None,
                 graph: bool = False, budget_tokens: int | None = None) -> None:
        self.name = name
        self._ctx = ctx
        self._agents = _require("branchwise.agents", name)
        self._compress = compress
        self._graph_search = self._load_graph(ctx) if graph else None
        config = self._agents.AgentConfig(answer_style=ctx.answer_style)
        if compress:
            # The agent's compress node fits the pool into AgentConfig.context_budget_tokens;
            # with a compressor that budget is the compressor's (RECOMP default, or the variant's).
            default = _require("branchwise.compression.base", name).CompressionConfig().budget_tokens
            config = replace(config, context_budget_tokens=budget_tokens or default)
        if route is not None:
            config = replace(config, retrieval=route)
        if graph:
            config = replace(config, graph="always")
        self._config = config
        # The tree route navigates with the embedding scorer: zero LLM calls per slate, the
        # agent's recommended setting for small local models (agents.tree_search).
        self._tree_search = None
        if route is None and ctx.index.tree is not None:
            self._tree_search = _require("branchwise.agents.tree_search", name).NavigatorSearch.embedding(ctx.index)

    def _load_graph(self, ctx: SystemContext) -> Any:
        graph_retrieve = _require("branchwise.graph.retrieve", self.name)
        graph_types = _require("branchwise.graph.types", self.name)
        if not (ctx.index.graph_dir / "entities.jsonl").exists():
            raise InputError(f"system {self.name!r} needs a graph and {ctx.index.graph_dir} has none.",
                             fix="build the graph stage of the index first (`branchwise index ... --graph`).")
        graph = graph_types.KnowledgeGraph.load(ctx.index.graph_dir)
        return graph_retrieve.GraphRetriever(graph, ctx.embedder, ctx.index.store, chunks=ctx.index.chunks)

    def run(self, question: str) -> SystemOutput:
        compress = _require("branchwise.compression.base", self.name)
        with self._ctx.session_llm() as llm, Stopwatch() as sw:
            compressor = None
            if self._compress:
                cfg = compress.CompressionConfig(budget_tokens=self._config.context_budget_tokens)
                compressor = compress.make_compressor(cfg, llm=llm, embedder=self._ctx.embedder)
            agent = self._agents.Agent(self._ctx.index, llm, self._config, tree_search=self._tree_search,
                                       graph_search=self._graph_search, compressor=compressor)
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
    for scorer, needs_llm, what in (
        ("embedding", False, "tree navigation, cosine scorer (no LLM)"),
        ("yes_no", True, "tree navigation, P(Yes) scorer (one forward pass per item)"),
        ("llm_slate", True, "tree navigation, LATTICE listwise JSON scorer"),
    ):
        register_system(SystemSpec(f"navigator:{scorer}", lambda ctx, s=scorer: NavigatorSystem(ctx, s), what,
                                   needs_llm=needs_llm, needs_tree=True))
    register_system(SystemSpec("agent", lambda ctx: AgentSystem(ctx, "agent"),
                               "branchwise agent (tree navigation, extractive compression)", needs_llm=True,
                               needs_tree=True))
    register_system(SystemSpec("agent_tight", lambda ctx: AgentSystem(ctx, "agent_tight", budget_tokens=100),
                               "branchwise agent compressed to 100 tokens (~15% of naive RAG's context)",
                               needs_llm=True, needs_tree=True))
    register_system(SystemSpec("agent_nocompress", lambda ctx: AgentSystem(ctx, "agent_nocompress", compress=False),
                               "branchwise agent without compression", needs_llm=True, needs_tree=True))
    register_system(SystemSpec("agent_hybrid", lambda ctx: AgentSystem(ctx, "agent_hybrid", route="hybrid"),
                               "branchwise agent on hybrid retrieval (no tree)", needs_llm=True))
    register_system(SystemSpec("agent_graph", lambda ctx: AgentSystem(ctx, "agent_graph", graph=True),
                               "branchwise agent with the graph route always on", needs_llm=True, needs_tree=True))


_register()
