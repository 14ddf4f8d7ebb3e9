"""The thin facade: open or build an index, assemble an agent, ask.

Everything here composes objects from the stage packages; no logic of its own beyond
choosing defaults. Strings name backends and scorers; they are resolved here (scorers) and
in :mod:`branchwise.models.factory` (models).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from branchwise.config import Settings
from branchwise.errors import InputError
from branchwise.models.base import LLM, Embedder
from branchwise.types import Answer

if TYPE_CHECKING:
    from branchwise.agents.agent import Agent
    from branchwise.agents.config import AgentConfig
    from branchwise.compression.base import CompressionConfig
    from branchwise.indexing.incremental import UpdateReport
    from branchwise.indexing.pipeline import IndexConfig
    from branchwise.retrieval.index import Index
    from branchwise.navigation.navigator import NavigatorConfig
    from branchwise.navigation.scorers import Scorer

ScorerName = Literal["embedding", "yesno", "llm"]
SCORERS: tuple[str, ...] = ("embedding", "yesno", "llm")


def load_models(settings: Settings | None = None, *, need_llm: bool = True) -> tuple[Embedder, LLM | None]:
    """The embedder and (optionally) LLM named by ``settings`` (env defaults), LLM cached."""
    from branchwise.models.factory import make_embedder, make_llm

    settings = settings or Settings.from_env()
    embedder = make_embedder(settings.embedder)
    llm = make_llm(settings.llm) if need_llm else None
    return embedder, llm


def build_index(
    source: str | Path,
    out: str | Path,
    *,
    embedder: Embedder | None = None,
    llm: LLM | None = None,
    config: "IndexConfig | None" = None,
    settings: Settings | None = None,
    progress: bool = True,
) -> "Index":
    """Build (or resume building) an index of ``source`` (folder, file or JSONL) in ``out``.

    Models not given are made from ``settings`` (by default the embedded models). The LLM is
    loaded only when the config needs one (LLM summaries or graph extraction).
    """
    from branchwise.indexing.pipeline import IndexConfig, build_index as _build

    config = config or IndexConfig()
    if embedder is None or (llm is None and config.needs_llm()):
        e, m = load_models(settings, need_llm=llm is None and config.needs_llm())
        embedder = embedder or e
        llm = llm or m
    return _build(source, out, embedder=embedder, llm=llm, config=config, progress=progress)


def open_index(path: str | Path, *, embedder: Embedder | None = None) -> "Index":
    """Open an index directory (the embedder is recreated from the manifest when not given)."""
    from branchwise.retrieval.index import Index

    return Index.open(path, embedder=embedder)


def make_scorer(name: str, index: "Index", llm: LLM | None = None) -> "Scorer":
    """Resolve a scorer name: ``embedding`` (no LLM calls), ``yesno`` (P("Yes") in one forward
    pass), ``llm`` (one JSON-scored slate per call)."""
    from branchwise.navigation.priors import IndexNodeVectors
    from branchwise.navigation.scorers import EmbeddingScorer, LLMSlateScorer, YesNoScorer

    if name == "embedding":
        if index.tree is None:
            raise InputError(f"the index at {index.path} has no tree.", fix="rebuild it with `branchwise index`.")
        return EmbeddingScorer(IndexNodeVectors(index, index.tree), index.embedder)
    if name in ("yesno", "llm"):
        if llm is None:
            raise InputError(f"scorer {name!r} needs an LLM.", fix="pass llm=..., or use scorer='embedding'.")
        return YesNoScorer(llm) if name == "yesno" else LLMSlateScorer(llm)
    raise InputError(f"unknown scorer {name!r}.", fix=f"use one of {', '.join(SCORERS)}.")


def build_agent(
    index: "Index | str | Path",
    *,
    llm: LLM | None = None,
    config: "AgentConfig | None" = None,
    scorer: str = "embedding",
    navigator: "NavigatorConfig | None" = None,
    compression: "CompressionConfig | None" = None,
    use_graph: bool = True,
    checkpoint_path: str | Path | None = None,
    settings: Settings | None = None,
) -> "Agent":
    """Assemble the LangGraph agent over ``index``.

    Args:
        index: an opened :class:`Index` or its directory.
        llm: the LLM (default: from ``settings``, i.e. the embedded model).
        config: agent settings (rounds, budgets, routes).
        scorer: tree-navigation scorer name (see :func:`make_scorer`).
        navigator: navigator settings (beam, iterations, α, calibration).
        compression: context compression settings (default: extractive RECOMP).
        use_graph: add the GRAG route when the index has a graph.
        checkpoint_path: SQLite file for LangGraph checkpoints (resumable threads).
    """
    from branchwise.agents.agent import Agent
    from branchwise.agents.config import AgentConfig
    from branchwise.agents.tree_search import NavigatorSearch
    from branchwise.compression.base import CompressionConfig, make_compressor
    from branchwise.navigation.navigator import NavigatorConfig

    if not hasattr(index, "search_hybrid"):
        index = open_index(index)  # type: ignore[arg-type]
    if llm is None:
        _, llm = load_models(settings, need_llm=True)
    assert llm is not None
    tree_search = None
    if index.tree is not None:  # type: ignore[union-attr]
        tree_search = NavigatorSearch(index, make_scorer(scorer, index, llm), navigator or NavigatorConfig())  # type: ignore[arg-type]
    graph_search = _graph_search(index) if use_graph else None
    compressor = make_compressor(compression or CompressionConfig(), llm=llm, embedder=index.embedder)  # type: ignore[union-attr]
    return Agent(index, llm, config or AgentConfig(), tree_search=tree_search, graph_search=graph_search,  # type: ignore[arg-type]
                 compressor=compressor, checkpoint_path=checkpoint_path)


def _graph_search(index: Any) -> Any:
    """A GraphRetriever when the index has a built graph, else None."""
    from branchwise.graph.types import KnowledgeGraph

    if not index.manifest.stage_done("graph"):
        return None
    from branchwise.graph.retrieve import GraphRetriever

    graph = KnowledgeGraph.load(index.graph_dir)
    return GraphRetriever(graph, index.embedder, index.store, chunks=index.chunks)


def ask(index: "Index | str | Path", question: str, **agent_kwargs: Any) -> Answer:
    """One-shot: build an agent over ``index`` and answer ``question``."""
    with build_agent(index, **agent_kwargs) as agent:
        return agent.ask(question)


def _index_and_llm(index: "Index | str | Path", op: Literal["add", "delete"], llm: LLM | None,
                   settings: Settings | None) -> tuple["Index", LLM | None]:
    from branchwise.indexing.incremental import update_needs_llm

    idx = open_index(index) if isinstance(index, (str, Path)) else index
    if llm is None and update_needs_llm(idx, op):
        _, llm = load_models(settings, need_llm=True)
    return idx, llm


def add_documents(index: "Index | str | Path", sources: "str | Path | list[str | Path]", *,
                  llm: LLM | None = None, settings: Settings | None = None, progress: bool = True) -> "UpdateReport":
    """Add (or replace changed) documents in a built index; returns an ``UpdateReport``.

    Only the tree summaries on the touched paths are rewritten; the LLM is loaded from
    ``settings`` only when the index needs one (LLM summaries, or a graph to extend).
    """
    from branchwise.indexing.incremental import add_documents as _add

    idx, llm = _index_and_llm(index, "add", llm, settings)
    return _add(idx, sources, llm=llm, progress=progress)


def delete_documents(index: "Index | str | Path", doc_ids: "list[str]", *, llm: LLM | None = None,
                     settings: Settings | None = None, progress: bool = True) -> "UpdateReport":
    """Delete documents (by id) from chunks, vectors, BM25, tree and graph; returns an ``UpdateReport``."""
    from branchwise.indexing.incremental import check_deletable
    from branchwise.indexing.incremental import delete_documents as _delete

    idx = open_index(index) if isinstance(index, (str, Path)) else index
    doc_ids = check_deletable(idx, doc_ids)  # fail on a typo before any model loads
    idx, llm = _index_and_llm(idx, "delete", llm, settings)
    return _delete(idx, doc_ids, llm=llm, progress=progress)
