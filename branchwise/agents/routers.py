"""Routers: the agent graph's conditional edges, each returning node names as ``Literal``s.

* :func:`route_retrieval` — after planning and after each gap query: which retrieval
  routes run this round (one or several, in parallel), or straight to the answer when
  there is nothing new to search;
* :func:`after_feedback` — loop (``gap_query``) or answer (``compress``), as decided and
  recorded by the feedback node. The loop bound (``max_rounds``) and the budget are
  enforced there, so the graph ends on its own terms, never by LangGraph's recursion limit.
"""

from __future__ import annotations

import logging
from typing import Literal

from langgraph.runtime import Runtime

from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.state import AgentState

log = logging.getLogger(__name__)

RetrievalNode = Literal["retrieve_tree", "retrieve_index", "retrieve_summaries", "graph_retrieve", "compress"]
FeedbackNext = Literal["gap_query", "compress"]


def route_retrieval(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> list[RetrievalNode]:
    """The retrieval nodes for this round.

    ``retrieval="auto"`` takes the tree and hybrid search together when a tree search is
    configured, else hybrid search. A configured graph route joins for relational / multi-hop questions
    (``graph="auto"``) or always (``"always"``). A tree route without a tree search falls
    back to the flat index (logged), so a run never ends with no route.
    """
    if not state.get("pending_queries"):
        return ["compress"]
    deps, cfg = env.deps(runtime.context), env.config
    has_tree = deps.tree_search is not None
    want = cfg.retrieval
    if want == "auto":
        want = "tree+hybrid" if has_tree else "hybrid"
    routes: list[RetrievalNode] = []
    if want in ("tree", "tree+hybrid"):
        if has_tree:
            routes.append("retrieve_tree")
        else:
            log.warning("retrieval=%r but no tree search is configured: using hybrid search", cfg.retrieval)
    if want != "tree" or not has_tree:
        routes.append("retrieve_index")
    if cfg.summaries and deps.summary_search is not None:
        routes.append("retrieve_summaries")
    use_graph = cfg.graph == "always" or (cfg.graph == "auto" and state.get("relational", False))
    if deps.graph_search is not None and use_graph:
        routes.append("graph_retrieve")
    return routes


def after_feedback(state: AgentState) -> FeedbackNext:
    """``gap_query`` when the feedback node decided to continue, else ``compress``."""
    rounds = state.get("rounds", [])
    return "gap_query" if rounds and rounds[-1]["decision"] == "continue" else "compress"
