"""The LangGraph agent: plan → retrieve (tree | hybrid | graph) → distill → feedback ↺ → answer.

Public surface: :class:`Agent` (``ask`` / ``stream`` / ``resume``), :class:`AgentConfig`,
:func:`build_graph` (the compiled ``StateGraph``, to inspect or extend), :class:`AgentDeps`
(the run-time context), :class:`NavigatorSearch` (the tree route), :class:`AgentEvent` and
:class:`AgentTrace`.
"""

from branchwise.agents.agent import Agent, answer_from_state
from branchwise.agents.config import AgentConfig
from branchwise.agents.deps import AgentDeps, GraphEnv, TreeSearchResult
from branchwise.agents.events import AgentEvent
from branchwise.agents.graph import agent_builder, build_graph, make_graph
from branchwise.agents.state import AgentState
from branchwise.agents.trace import AgentTrace
from branchwise.agents.tree_search import NavigatorSearch

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentDeps",
    "AgentEvent",
    "AgentState",
    "AgentTrace",
    "GraphEnv",
    "NavigatorSearch",
    "TreeSearchResult",
    "agent_builder",
    "answer_from_state",
    "build_graph",
    "make_graph",
]
