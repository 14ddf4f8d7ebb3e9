"""The public functions of ``import branchwise as bw``: thin calls into the composition root.

Every function takes an optional :class:`~branchwise.assembly.settings.Settings` (default:
:meth:`Settings.from_env`); keyword shortcuts (``scorer=``, ``compression=``, ...) are folded
into it, so ``bw.ask`` runs exactly what ``branchwise ask``, the servers and the evaluations
run for the same settings (:mod:`branchwise.assembly.root`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwise.assembly import root
from branchwise.assembly.settings import Settings
from branchwise.models.base import LLM, Embedder
from branchwise.types import Answer

if TYPE_CHECKING:
    from branchwise.agents.agent import Agent
    from branchwise.agents.config import AgentConfig
    from branchwise.compression.base import CompressionConfig
    from branchwise.indexing.incremental import UpdateReport
    from branchwise.indexing.pipeline import IndexConfig
    from branchwise.navigation.navigator import NavigatorConfig
    from branchwise.navigation.scorers import Scorer
    from branchwise.retrieval.index import Index


def _settings(settings: Settings | None, **changes: Any) -> Settings:
    base = settings or Settings.from_env()
    changes = {k: v for k, v in changes.items() if v is not None}
    return base.replace(**changes) if changes else base


def _index(index: "Index | str | Path") -> "Index":
    return root.open_index(index) if isinstance(index, (str, Path)) else index


def load_models(settings: Settings | None = None, *, need_llm: bool = True) -> tuple[Embedder, LLM | None]:
    """The embedder and (optionally) the LLM named by ``settings`` (default: the environment)."""
    settings = _settings(settings)
    return root.load_embedder(settings), root.load_llm(settings) if need_llm else None


def build_index(
    source: str | Path,
    out: str | Path,
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    llm: LLM | None = None,
    config: "IndexConfig | None" = None,
    progress: bool = True,
) -> "Index":
    """Build (or resume building) an index of ``source`` (folder, file or JSONL) in ``out``.

    Models not given are made from ``settings`` (by default the embedded models); the LLM is
    loaded only when the build needs one (LLM summaries, LLM graph extraction).
    ``config`` replaces ``settings.index``.
    """
    return root.build_index(source, out, _settings(settings, index=config), embedder=embedder, llm=llm,
                            progress=progress)


def open_index(path: str | Path, *, embedder: Embedder | None = None) -> "Index":
    """Open an index directory (the embedder is recreated from the manifest when not given)."""
    return root.open_index(path, embedder=embedder)


def make_scorer(name: str, index: "Index", llm: LLM | None = None) -> "Scorer":
    """The navigator scorer ``name`` (see :data:`branchwise.navigation.registry.SCORERS`)."""
    return root.Assembly(index, _settings(None, scorer=name), llm=llm).scorer(llm)


def build_agent(
    index: "Index | str | Path",
    *,
    settings: Settings | None = None,
    llm: LLM | None = None,
    checkpoint_path: str | Path | None = None,
    config: "AgentConfig | None" = None,
    scorer: str | None = None,
    navigator: "NavigatorConfig | None" = None,
    compression: "CompressionConfig | None" = None,
    use_graph: bool | None = None,
) -> "Agent":
    """Assemble the LangGraph agent over ``index`` (an opened :class:`Index` or its directory).

    Args:
        settings: what to assemble (default: :meth:`Settings.from_env`).
        llm: an LLM object to use instead of loading ``settings.llm``.
        checkpoint_path: SQLite file for LangGraph checkpoints (resumable threads).
        config / scorer / navigator / compression / use_graph: shortcuts that replace
            ``settings.agent`` / ``.scorer`` / ``.navigator`` / ``.compression`` / ``.graph_route``.
    """
    s = _settings(settings, agent=config, scorer=scorer, navigator=navigator, compression=compression,
                  graph_route=use_graph)
    return root.build_agent(_index(index), s, llm=llm, checkpoint_path=checkpoint_path)


def ask(index: "Index | str | Path", question: str, **agent_kwargs: Any) -> Answer:
    """One-shot: build an agent over ``index`` (see :func:`build_agent`) and answer ``question``."""
    with build_agent(index, **agent_kwargs) as agent:
        return agent.ask(question)


def add_documents(index: "Index | str | Path", sources: "str | Path | list[str | Path]", *,
                  llm: LLM | None = None, settings: Settings | None = None, progress: bool = True) -> "UpdateReport":
    """Add (or replace changed) documents in a built index; returns an ``UpdateReport``.

    Only the tree summaries on the touched paths are rewritten; the LLM (when the index
    needs one) is ``settings.llm``, else the one the index was built with, else the default.
    """
    return root.add_documents(_index(index), sources, _settings(settings), llm=llm, progress=progress)


def delete_documents(index: "Index | str | Path", doc_ids: "list[str]", *, llm: LLM | None = None,
                     settings: Settings | None = None, progress: bool = True) -> "UpdateReport":
    """Delete documents (by id) from chunks, vectors, BM25, tree and graph; returns an ``UpdateReport``."""
    return root.delete_documents(_index(index), doc_ids, _settings(settings), llm=llm, progress=progress)


def demo_corpus_dir() -> Path:
    """The bundled demo corpus: branchwise's own user guide (Markdown)."""
    return Path(__file__).resolve().parent / "demo_corpus"


def load_trace(path: str | Path) -> Any:
    """A saved trace: an ``AgentTrace`` (``branchwise ask --trace``, ``answer.trace.save``) or a
    navigator's ``TraversalTrace``, by its schema."""
    import json

    from branchwise.agents.trace import AGENT_TRACE_SCHEMA, AgentTrace
    from branchwise.navigation.trace import TraversalTrace

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return AgentTrace.from_dict(data) if data.get("schema") == AGENT_TRACE_SCHEMA else TraversalTrace.from_dict(data)
