"""The one place the agent's LangGraph ``StateGraph`` is assembled and compiled.

Topology (RFM-RAG loop, arXiv 2508.17862, over LATTICE / hybrid / GRAG retrieval)::

    START → contextualize → plan ─route_retrieval─▶ retrieve_tree | retrieve_index | graph_retrieve ─▶ rerank
                               ▲                        (one or several, in parallel)                  │
                               │                                                                     distill
                               └── route_retrieval ◀── gap_query ◀─continue─ feedback ◀────────────────┘
                                                                               │ answer
                                                                               ▼
                                                        compress ─▶ generate ─▶ verify ─▶ END

With the defaults for small local readers no LLM call happens before ``generate``: the routes
fetch a wide candidate list, ``rerank`` orders it with the trained cross-encoder, ``feedback``
decides the second hop by the reranker's scores and ``gap_query`` writes it from the best
passage's best sentence (``nodes_rank``); ``verify`` withholds an answer its cited text does
not support (``nodes_verify``).

``contextualize`` turns a follow-up into a standalone question from the run's ``history``
(no LLM call when there is none; see ``nodes_context``).

Nodes are small functions ``(state, runtime, env) -> partial update`` (see ``nodes_context``,
``nodes_reason``, ``nodes_retrieve``, ``nodes_rank``, ``nodes_answer``, ``nodes_verify``); ``env`` (the :class:`AgentConfig`
and optional default deps) is bound here with :func:`functools.partial`, while the run-time
dependencies (index, LLM, retrievers, compressor) arrive per run as the LangGraph context
(``graph.invoke(inputs, config, context=AgentDeps(...))``). Inspect the graph with
``build_graph(AgentConfig()).get_graph().draw_mermaid()``.

Extending it — two LangGraph-native ways:

* replace or wrap a node inside the loop (same name, same edges), e.g. expand the queries
  of the flat retrieval route::

      from branchwise.agents import nodes_retrieve
      from branchwise.agents.graph import build_graph

      def expanded_search(state, runtime, env):            # returns a partial update
          queries = [f"{q} {expand(q)}" for q in state["pending_queries"]]
          return nodes_retrieve.retrieve_index({**state, "pending_queries": queries}, runtime, env)

      graph = build_graph(config, overrides={"retrieve_index": expanded_search})

* add nodes around the whole agent by using the compiled graph as a subgraph::

      parent = StateGraph(AgentState, context_schema=AgentDeps)
      parent.add_node("rewrite", rewrite_question)         # e.g. returns {"question": ...}
      parent.add_node("agent", build_graph(config))
      parent.add_edge(START, "rewrite"); parent.add_edge("rewrite", "agent"); parent.add_edge("agent", END)

``agent_builder`` returns the builder before compilation (add interrupts, inspect it);
:func:`build_graph` is ``agent_builder(...).compile(...)``. ``langgraph.json`` registers
:func:`branchwise.server.langgraph_app.make_graph` (which assembles the deps through the
composition root) for ``langgraph dev``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Mapping, get_args

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from branchwise.agents import nodes_answer, nodes_context, nodes_rank, nodes_reason, nodes_retrieve, nodes_verify, routers
from branchwise.agents.config import AgentConfig
from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.state import AgentInput, AgentState
from branchwise.errors import BranchwiseError, InputError, OutputParseError

log = logging.getLogger(__name__)

#: The nodes, in topological order; each is ``fn(state, runtime, env)``.
NODES: dict[str, Callable[..., dict[str, Any]]] = {
    "contextualize": nodes_context.contextualize,
    "plan": nodes_reason.plan,
    "retrieve_tree": nodes_retrieve.retrieve_tree,
    "retrieve_index": nodes_retrieve.retrieve_index,
    "retrieve_summaries": nodes_retrieve.retrieve_summaries,
    "graph_retrieve": nodes_retrieve.graph_retrieve,
    "rerank": nodes_rank.rerank,
    "distill": nodes_retrieve.distill,
    "feedback": nodes_reason.feedback,
    "gap_query": nodes_reason.gap_query,
    "compress": nodes_answer.compress,
    "generate": nodes_answer.generate,
    "verify": nodes_verify.verify,
}


def is_transient(exc: Exception) -> bool:
    """Retry a node on transient backend failures only (timeouts, 429/5xx).

    Malformed LLM output is handled inside the nodes (repair, retry, fallback), so
    :class:`OutputParseError` is not retried here.
    """
    return isinstance(exc, BranchwiseError) and exc.retryable and not isinstance(exc, OutputParseError)


RETRY = RetryPolicy(initial_interval=1.0, backoff_factor=2.0, max_attempts=3, retry_on=is_transient)


NodeFn = Callable[..., dict[str, Any]]


def agent_builder(
    config: AgentConfig = AgentConfig(),
    *,
    deps: AgentDeps | Callable[[], AgentDeps] | None = None,
    overrides: Mapping[str, NodeFn] | None = None,
) -> StateGraph[AgentState, AgentDeps, AgentInput, AgentState]:
    """The uncompiled agent graph (see :func:`build_graph` for the arguments)."""
    unknown = sorted(set(overrides or {}) - set(NODES))
    if unknown:
        raise InputError(f"cannot override unknown agent nodes {unknown}.", fix=f"override one of {sorted(NODES)}.")
    env = GraphEnv(config, deps)
    builder: StateGraph[AgentState, AgentDeps, AgentInput, AgentState] = StateGraph(
        AgentState, context_schema=AgentDeps, input_schema=AgentInput, output_schema=AgentState
    )
    for name, fn in {**NODES, **(overrides or {})}.items():
        builder.add_node(name, functools.partial(fn, env=env), retry_policy=RETRY)
    route = functools.partial(routers.route_retrieval, env=env)
    retrieval_targets = list(get_args(routers.RetrievalNode))
    builder.add_edge(START, "contextualize")
    builder.add_edge("contextualize", "plan")
    builder.add_conditional_edges("plan", route, retrieval_targets)
    for name in ("retrieve_tree", "retrieve_index", "retrieve_summaries", "graph_retrieve"):
        builder.add_edge(name, "rerank")
    builder.add_edge("rerank", "distill")
    builder.add_edge("distill", "feedback")
    builder.add_conditional_edges("feedback", routers.after_feedback, list(get_args(routers.FeedbackNext)))
    builder.add_conditional_edges("gap_query", route, retrieval_targets)
    builder.add_edge("compress", "generate")
    builder.add_edge("generate", "verify")
    builder.add_edge("verify", END)
    return builder


def build_graph(
    config: AgentConfig = AgentConfig(),
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    *,
    deps: AgentDeps | Callable[[], AgentDeps] | None = None,
    overrides: Mapping[str, NodeFn] | None = None,
) -> CompiledStateGraph[AgentState, AgentDeps, AgentInput, AgentState]:
    """Compile the agent graph.

    Args:
        config: the agent configuration (loop bound, budgets, routes, modes).
        checkpointer: e.g. ``SqliteSaver`` for resumable runs (pass a ``thread_id``).
        deps: dependencies to use when a run passes no ``context`` (or a provider of them);
            a run's own ``context=AgentDeps(...)`` always wins.
        overrides: replacement node functions by node name (``fn(state, runtime, env)``),
            keeping the topology; see the module docstring.

    Run it with ``config={"recursion_limit": config.recursion_limit}`` (the
    :class:`~branchwise.agents.agent.Agent` facade does).
    """
    builder = agent_builder(config, deps=deps, overrides=overrides)
    return builder.compile(checkpointer=checkpointer, name="branchwise-agent")
