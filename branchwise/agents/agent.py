"""The ``Agent`` facade: ask a question, stream its progress, resume it from a checkpoint.

    agent = Agent(index, llm, AgentConfig(max_rounds=2), checkpoint_path="runs.sqlite")
    answer = agent.ask("Who wrote Dracula?")          # Answer(text, citations, trace, usage)
    answer = agent.ask("Where was he born?", history=[{"role": "user", "content": "Who wrote Dracula?"},
                       {"role": "assistant", "content": answer.text}])   # a follow-up
    for event in agent.stream("Who wrote Dracula?"):  # AgentEvent: step / progress / token / answer
        ...
    answer = agent.resume(thread_id)                  # continue a run that failed midway

Each question runs on a LangGraph thread (a fresh id unless one is given). With
``checkpoint_path`` every super-step is saved by LangGraph's ``SqliteSaver``, so a run that
died (a backend outage, a killed process) continues from its last completed step with
:meth:`Agent.resume`, without repeating the LLM calls already made.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver

from branchwise.agents.config import AgentConfig
from branchwise.agents.deps import AgentDeps, ChunkIndex, GraphSearch, TreeSearch
from branchwise.agents.events import AgentEvent, event_from_custom, step_summary
from branchwise.agents.graph import build_graph
from branchwise.agents.nodes_context import normalize_history
from branchwise.agents.state import AgentInput
from branchwise.agents.structured import fault_notes, question_scope
from branchwise.agents.trace import AgentTrace
from branchwise.errors import BranchwiseError, InputError
from branchwise.compression.base import Compressor
from branchwise.models.base import LLM
from branchwise.relevance.base import Reranker
from branchwise.models.retry import CallScope
from branchwise.types import Answer, Citation

log = logging.getLogger(__name__)


def answer_from_state(state: Mapping[str, Any], *, thread_id: str, config: AgentConfig) -> Answer:
    """The :class:`Answer` (with its :class:`AgentTrace`) of a finished run's state."""
    rec = state.get("answer")
    if rec is None:
        raise BranchwiseError(
            f"the run on thread {thread_id!r} has not produced an answer yet.",
            fix="resume it with agent.resume(thread_id), or ask again.",
        )
    trace = AgentTrace.from_state(state, thread_id=thread_id, config=asdict(config))
    return Answer(
        text=rec["text"],
        citations=[Citation(**c) for c in rec["citations"]],
        found=rec["found"],
        trace=trace,
        usage=trace.usage,
        context_tokens=rec["context_tokens"],
    )


def _with_faults(answer: Answer, scope: CallScope) -> Answer:
    """``answer`` with the endpoint faults of its question's scope added to the trace's notes."""
    if answer.trace is not None and scope.faults:
        answer.trace.notes.extend(fault_notes(scope.faults))
    return answer


class Agent:
    """Agentic RAG over one index: plan → retrieve → distill → feedback ↺ → compress → answer.

    Args:
        index: the index (``retrieval.index.Index`` or anything with its search surface).
        llm: the LLM for planning, distillation, feedback and answers.
        config: see :class:`AgentConfig`.
        tree_search: tree navigation (e.g. :class:`~branchwise.agents.tree_search.NavigatorSearch`);
            required by ``retrieval="tree"``.
        graph_search: GRAG graph retrieval (e.g. ``graph.retrieve.GraphRetriever``).
        compressor: a context compressor (``compression.base.make_compressor(...)``).
        reranker: orders the evidence pool and picks the second hop's bridge sentence
            (:mod:`branchwise.relevance`); None keeps the routes' order.
        checkpoint_path: SQLite file for LangGraph checkpoints (None: no checkpoints,
            :meth:`resume` unavailable).
        provenance: what assembled this agent, recorded in every trace (see
            :class:`~branchwise.agents.deps.AgentDeps`).
        deadline_s: per-question deadline in seconds (None: none). Every backend call of a
            question bounds its waits and retries by the time left, so a question against an
            endpoint that stops answering fails with a ``BackendError`` soon after the deadline
            instead of hanging (see :class:`~branchwise.models.retry.CallScope`). Endpoint
            faults met on the way are added to the trace's notes.

    Assemble it from settings with :func:`branchwise.assembly.root.build_agent` (what
    ``bw.ask``, the CLI, the servers and the evaluations do), or from parts with this
    constructor / :meth:`from_deps`.
    """

    def __init__(
        self,
        index: ChunkIndex,
        llm: LLM,
        config: AgentConfig = AgentConfig(),
        *,
        tree_search: TreeSearch | None = None,
        graph_search: GraphSearch | None = None,
        compressor: Compressor | None = None,
        checkpoint_path: str | Path | None = None,
        provenance: Mapping[str, Any] | None = None,
        deadline_s: float | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        if config.retrieval in ("tree", "tree+hybrid") and tree_search is None:
            raise InputError(
                f"retrieval={config.retrieval!r} needs a tree search, and none was given.",
                fix="pass tree_search=NavigatorSearch(...), or use retrieval='auto' / 'hybrid'.",
            )
        self.config = config
        self.deadline_s = deadline_s
        self.deps = AgentDeps(
            index=index, llm=llm, tree_search=tree_search, graph_search=graph_search, compressor=compressor,
            provenance=dict(provenance or {}), reranker=reranker,
        )
        self._conn: sqlite3.Connection | None = None
        checkpointer = None
        if checkpoint_path is not None:
            Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(checkpoint_path), check_same_thread=False)
            checkpointer = SqliteSaver(self._conn)
        self.graph = build_graph(config, checkpointer)
        self.last_thread_id: str | None = None

    @classmethod
    def from_deps(cls, deps: AgentDeps, config: AgentConfig = AgentConfig(), *,
                  checkpoint_path: str | Path | None = None, deadline_s: float | None = None) -> "Agent":
        """An agent over ready :class:`AgentDeps` (what the composition root assembles), all of them."""
        agent = cls(deps.index, deps.llm, config, tree_search=deps.tree_search, checkpoint_path=checkpoint_path,
                    deadline_s=deadline_s)
        agent.deps = deps
        return agent

    # -- running --------------------------------------------------------------------------
    def _run_config(self, thread_id: str) -> RunnableConfig:
        return {"recursion_limit": self.config.recursion_limit, "configurable": {"thread_id": thread_id}}

    def _thread(self, thread_id: str | None) -> str:
        self.last_thread_id = thread_id or uuid.uuid4().hex
        return self.last_thread_id

    @staticmethod
    def _inputs(question: str, history: Sequence[Mapping[str, Any]] | None) -> AgentInput:
        if not question or not question.strip():
            raise InputError("the question is empty.", fix="pass a non-empty question.")
        # always sent (empty for a first question), so a reused thread never keeps an old conversation
        return {"question": question, "history": normalize_history(history)}

    def ask(self, question: str, *, history: Sequence[Mapping[str, Any]] | None = None,
            thread_id: str | None = None) -> Answer:
        """Answer ``question``; the answer carries citations, usage and the :class:`AgentTrace`.

        ``history``: the conversation before ``question`` (``[{"role": "user" | "assistant",
        "content": ...}, ...]``, oldest first). A follow-up is then rewritten into a
        standalone question first (see :mod:`~branchwise.agents.nodes_context`); the trace
        records both.
        """
        inputs = self._inputs(question, history)
        tid = self._thread(thread_id)
        scope = question_scope(self.deadline_s)
        state = scope.run(self.graph.invoke, inputs, self._run_config(tid), context=self.deps)
        return _with_faults(answer_from_state(state, thread_id=tid, config=self.config), scope)

    def stream(self, question: str, *, history: Sequence[Mapping[str, Any]] | None = None,
               thread_id: str | None = None) -> Iterator[AgentEvent]:
        """Run ``question`` (a follow-up of ``history``, as in :meth:`ask`) and yield its
        events; the last one is the ``"answer"`` event."""
        inputs = self._inputs(question, history)
        tid = self._thread(thread_id)
        yield from self._stream(inputs, tid)

    def resume(self, thread_id: str) -> Answer:
        """Continue the run of ``thread_id`` from its last checkpoint and return its answer."""
        if self._conn is None:
            raise InputError("resume needs checkpoints.", fix="create the Agent with checkpoint_path=...")
        config = self._run_config(thread_id)
        snapshot = self.graph.get_state(config)
        if not snapshot.values:
            raise InputError(f"no checkpointed run for thread {thread_id!r}.", fix="check the thread id.")
        self.last_thread_id = thread_id
        scope = question_scope(self.deadline_s)
        state = snapshot.values if not snapshot.next else scope.run(self.graph.invoke, None, config, context=self.deps)
        return _with_faults(answer_from_state(state, thread_id=thread_id, config=self.config), scope)

    def _stream(self, inputs: AgentInput | None, thread_id: str) -> Iterator[AgentEvent]:
        final: Mapping[str, Any] = {}
        mode: str
        data: Any
        scope = question_scope(self.deadline_s)  # each step runs in it, whichever thread drives the stream
        for mode, data in scope.iterate(self.graph.stream(
            inputs, self._run_config(thread_id), context=self.deps, stream_mode=["updates", "custom", "values"]
        )):
            if mode == "values":
                final = data
            elif mode == "custom":
                if (event := event_from_custom(data)) is not None:
                    yield event
            else:
                for node, update in data.items():
                    if not node.startswith("__"):
                        yield step_summary(node, update)
        answer = _with_faults(answer_from_state(final, thread_id=thread_id, config=self.config), scope)
        yield AgentEvent(kind="answer", node="", message=answer.text, data={"found": answer.found}, answer=answer)

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the checkpoint database (the index and LLM belong to the caller)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Agent":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
