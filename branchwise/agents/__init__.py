"""The LangGraph agent: plan → retrieve (tree | hybrid | graph) → distill → feedback ↺ → answer.

Public surface: :class:`Agent` (``ask`` / ``stream`` / ``resume``), :class:`AgentConfig`,
:func:`build_graph` (the compiled ``StateGraph``, to inspect or extend), :class:`AgentDeps`
(the run-time context), :class:`NavigatorSearch` (the tree route), :class:`AgentEvent` and
:class:`AgentTrace`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy (PEP 562): ``branchwise.agents.config`` must stay importable without LangGraph.
_EXPORTS: dict[str, str] = {
    "Agent": "agent",
    "answer_from_state": "agent",
    "AgentConfig": "config",
    "AgentDeps": "deps",
    "GraphEnv": "deps",
    "TreeSearchResult": "deps",
    "AgentEvent": "events",
    "agent_builder": "graph",
    "build_graph": "graph",
    "AgentState": "state",
    "AgentTrace": "trace",
    "NavigatorSearch": "tree_search",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
