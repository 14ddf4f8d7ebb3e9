"""The composition root: the one place indexes, models, scorers, compressors and the agent
are put together, from one :class:`~branchwise.assembly.settings.Settings`.

Every entry point goes through here: the facade (``bw.build_index``, ``bw.ask``,
``bw.add_documents``), the CLI, the chat app, the LangGraph and HTTP servers, and the
evaluation systems that run the agent. What a variant changes is a setting, never wiring.

    index = build_index("docs/", "my-index", settings)          # chunks, tree, (graph)
    parts = Assembly(open_index("my-index"), settings)          # per-index parts, made once
    agent = parts.agent()                                       # an Agent over them
    agent = parts.agent(llm=session_llm)                        # the same, with another LLM object

:class:`Assembly` keeps what does not depend on the LLM object (tree resources, the graph
retriever, node vectors) so a server or an evaluation builds it once per index and makes a
cheap agent per question or session.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from branchwise.assembly.settings import Settings
from branchwise.config import redact
from branchwise.errors import InputError
from branchwise.models.base import LLM, Embedder

if TYPE_CHECKING:
    from branchwise.agents.agent import Agent
    from branchwise.agents.deps import AgentDeps
    from branchwise.compression.base import Compressor
    from branchwise.indexing.incremental import UpdateReport
    from branchwise.navigation.scorers import Scorer
    from branchwise.retrieval.index import Index

log = logging.getLogger(__name__)


# -- models -------------------------------------------------------------------------------
def load_embedder(settings: Settings, spec: str | None = None) -> Embedder:
    """The embedder ``spec`` (default: ``settings.embedder``)."""
    from branchwise.models.factory import make_embedder

    return make_embedder(spec or settings.embedder)


def load_llm(settings: Settings, *, recorded: str | None = None, cache_dir: Path | None = None) -> LLM:
    """The LLM of ``settings`` (else the index's ``recorded`` spec, else the embedded default).

    With ``cache_dir``, calls go through the sqlite call cache there (index builds and
    updates use the index's ``cache/``, so an interrupted build resumes for free).
    """
    from branchwise.models.factory import make_llm

    spec = settings.llm_spec(recorded)
    log.info("loading LLM %s", redact(spec))
    return make_llm(spec, config=_llm_config(settings, spec), cache_dir=cache_dir)


def _llm_config(settings: Settings, spec: str) -> Any:
    """The backend config carrying ``settings.n_ctx`` / ``request_timeout_s`` (None: defaults)."""
    from branchwise.models.registry import split_spec

    scheme = split_spec(spec)[0]
    if settings.n_ctx is not None:
        if settings.n_ctx < 256:
            raise InputError(f"n_ctx={settings.n_ctx} is too small.", fix="use at least 256 tokens (default 4096).")
        if scheme in ("default", "llamacpp"):
            from branchwise.models.llamacpp import LlamaCppConfig

            return LlamaCppConfig(n_ctx=settings.n_ctx)
        log.warning("n_ctx applies to llama.cpp models (default, llamacpp:); ignored for %s", scheme)
    if settings.request_timeout_s is not None:
        if scheme == "openai":
            from branchwise.models.openai_http import OpenAIConfig

            return OpenAIConfig(timeout_s=settings.request_timeout_s or OpenAIConfig().timeout_s)
        log.warning("request_timeout_s applies to openai: endpoints; ignored for %s", scheme)
    return None


# -- indexes ------------------------------------------------------------------------------
def open_index(path: str | Path, *, embedder: Embedder | None = None, check: bool = True) -> "Index":
    """Open an index directory (its embedder is recreated from the manifest when not given).

    ``check=False`` opens an index that is unfinished or needs repair (``Index.open``): for
    the updates, which repair it, and ``branchwise info``, which reports it."""
    from branchwise.retrieval.index import Index

    return Index.open(path, embedder=embedder, check=check, warn_unfinished=check)


def index_config(settings: Settings) -> Any:
    """``settings.index`` with the model specs to record in the manifest (credentials redacted)."""
    import dataclasses

    cfg = settings.index
    chunk = dataclasses.replace(cfg.chunk, store=settings.store, embedder_spec=redact(settings.embedder),
                                llm_spec=redact(settings.llm_spec()) if cfg.needs_llm() else None)
    return dataclasses.replace(cfg, chunk=chunk)


def build_index(
    source: str | Path,
    out: str | Path,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    llm: LLM | None = None,
    progress: bool = True,
) -> "Index":
    """Build (or resume) the index of ``source`` in ``out``; models not given come from
    ``settings``, and the LLM is loaded only when the build needs one."""
    from branchwise.indexing.pipeline import build_index as _build

    config = index_config(settings)
    specs = None
    if config.distributed:  # Dask workers rebuild the models this root would load, from their specs
        from branchwise.indexing.distributed import ModelSpecs

        specs = ModelSpecs(embedder=None if embedder is not None else settings.embedder,
                           llm=None if llm is not None else settings.llm_spec(),
                           llm_cache_dir=str(Path(out).resolve() / "cache"))
    embedder = embedder or load_embedder(settings)
    if llm is None and config.needs_llm():
        llm = load_llm(settings, cache_dir=Path(out) / "cache")
    return _build(source, out, embedder=embedder, llm=llm, config=config, progress=progress, specs=specs)


def plan_index(source: str | Path, settings: Settings, *, embedder: Embedder | None = None,
               llm: LLM | None = None, progress: bool = True) -> Any:
    """The dry run of :func:`build_index` (shape, LLM calls, tokens, time); writes nothing."""
    from branchwise.indexing.pipeline import plan_index as _plan

    config = index_config(settings)
    embedder = embedder or load_embedder(settings)
    if llm is None and config.needs_llm():
        llm = load_llm(settings)
    return _plan(source, embedder=embedder, llm=llm, config=config, progress=progress)


def ensure_tree(index: "Index", settings: Settings, *, llm: LLM | None = None, progress: bool = True) -> Any:
    """Build the tree stage of ``index`` if it has none (as ``build_index`` would); returns the
    build's usage, or None when the tree was already there."""
    from branchwise.indexing.pipeline import build_tree_stage

    if index.tree is not None:
        return None
    tree = settings.index.tree
    if llm is None and tree.summary.mode == "llm":
        llm = load_llm(settings, recorded=index.manifest.llm, cache_dir=index.cache_dir)
    return build_tree_stage(index, tree, llm=llm, progress=progress)


def update_llm(index: "Index", settings: Settings, op: Literal["add", "delete"]) -> LLM | None:
    """The LLM an incremental update needs (None when it needs none): the explicit one, else
    the one the index was built with, else the embedded default; calls are cached in the index."""
    from branchwise.indexing.incremental import update_needs_llm

    if not update_needs_llm(index, op):
        return None
    return load_llm(settings, recorded=index.manifest.llm, cache_dir=index.cache_dir)


def add_documents(index: "Index", sources: Any, settings: Settings, *, llm: LLM | None = None,
                  progress: bool = True) -> "UpdateReport":
    """Add (or replace changed) documents in a built index (see :mod:`branchwise.indexing.incremental`)."""
    from branchwise.indexing.incremental import add_documents as _add

    return _add(index, sources, llm=llm or update_llm(index, settings, "add"), ingest=settings.index.chunk.ingest,
                progress=progress)


def delete_documents(index: "Index", doc_ids: list[str], settings: Settings, *, llm: LLM | None = None,
                     progress: bool = True) -> "UpdateReport":
    """Delete documents by id from every part of a built index."""
    from branchwise.indexing.incremental import check_deletable
    from branchwise.indexing.incremental import delete_documents as _delete

    doc_ids = check_deletable(index, doc_ids)  # a typo fails before any model loads
    return _delete(index, doc_ids, llm=llm or update_llm(index, settings, "delete"), progress=progress)


# -- the agent ----------------------------------------------------------------------------
class Assembly:
    """The agent's parts over one index, assembled from ``settings``.

    Args:
        index: an opened index.
        settings: what to assemble.
        llm: the LLM object to use (default: loaded from ``settings`` on first use).
    """

    def __init__(self, index: "Index", settings: Settings | None = None, *, llm: LLM | None = None) -> None:
        self.index = index
        self.settings = settings or Settings.from_env()
        self._llm = llm
        self._reranker: tuple[Any] | None = None

    # models
    @property
    def llm(self) -> LLM:
        """The default LLM of this assembly (loaded on first use)."""
        if self._llm is None:
            self._llm = load_llm(self.settings, recorded=self.index.manifest.llm)
        return self._llm

    # per-index parts (made once)
    @cached_property
    def tree_resources(self) -> Any:
        """The tree, node texts and retrieval priors (None when the index has no tree)."""
        from branchwise.navigation.navigate import TreeResources

        return TreeResources.from_index(self.index) if self.index.tree is not None else None

    @cached_property
    def graph_search(self) -> Any:
        """The GRAG retriever when the index has a graph and ``settings.graph_route`` is on."""
        if not self.settings.graph_route or not self.index.manifest.stage_done("graph"):
            return None
        from branchwise.graph.retrieve import GraphRetriever
        from branchwise.graph.types import KnowledgeGraph

        graph = KnowledgeGraph.load(self.index.graph_dir)
        return GraphRetriever(graph, self.index.embedder, self.index.store, chunks=self.index.chunks)

    @cached_property
    def summary_search(self) -> Any:
        """The tree's summaries as evidence (RAPTOR's collapsed tree), when the settings ask for
        them (``agent.summaries``) and the index has a tree."""
        if not self.settings.agent.summaries or self.index.tree is None:
            return None
        from branchwise.navigation.collapsed import CollapsedTree

        return CollapsedTree.from_index(self.index)

    @cached_property
    def encoder(self) -> Embedder:
        """The extractive compressor's dual encoder: ``compression.encoder`` or the index's embedder."""
        spec = self.settings.compression.encoder
        return load_embedder(self.settings, spec) if spec else self.index.embedder

    # per-LLM parts
    def reranker(self, llm: LLM | None = None) -> Any:
        """The reranker named by ``settings.reranker`` (None for ``none``); LLM-free ones are made once."""
        from branchwise.relevance.factories import make_reranker
        from branchwise.relevance.registry import RERANKERS

        spec = self.settings.reranker
        if "llm" in RERANKERS.get(spec.partition(":")[0]).needs:
            return make_reranker(spec, llm=llm or self.llm, embedder=self.index.embedder)
        if self._reranker is None:
            self._reranker = (make_reranker(spec, embedder=self.index.embedder),)
        return self._reranker[0]

    def scorer(self, llm: LLM | None = None) -> "Scorer":
        """The navigator's slate scorer named by ``settings.scorer``."""
        from branchwise.navigation.registry import SCORERS

        entry = SCORERS.get(self.settings.scorer)
        if self.index.tree is None:
            raise InputError(f"the index at {self.index.path} has no tree.", fix="rebuild it with `branchwise index`.")
        kwargs: dict[str, Any] = {"llm": (llm or self.llm) if "llm" in entry.needs else llm}
        if "reranker" in entry.needs:
            kwargs["reranker"] = self.reranker(llm)
        return entry.load()(self.index, **kwargs)  # type: ignore[no-any-return]

    def tree_search(self, llm: LLM | None = None) -> Any:
        """The agent's tree route (None when the index has no tree)."""
        if self.tree_resources is None:
            return None
        from branchwise.agents.tree_search import NavigatorSearch

        return NavigatorSearch(self.tree_resources, self.scorer(llm), self.settings.navigator)

    def compressor(self, llm: LLM | None = None) -> "Compressor":
        """The context compressor named by ``settings.compression.mode``."""
        from branchwise.compression.base import make_compressor
        from branchwise.compression.registry import COMPRESSORS

        cfg = self.settings.compression
        needs = COMPRESSORS.get(cfg.mode).needs
        return make_compressor(cfg, llm=(llm or self.llm) if "llm" in needs else llm,
                               embedder=self.encoder if "encoder" in needs else None, reranker=self.reranker(llm))

    def provenance(self, llm: LLM | None = None) -> dict[str, Any]:
        """What produced a run, recorded in every trace (credentials redacted)."""
        llm_obj = llm or self._llm
        return {
            "index": str(self.index.path),
            "llm": redact(self.settings.llm_spec(self.index.manifest.llm)),
            "llm_name": redact(str(getattr(llm_obj, "name", ""))) if llm_obj is not None else "",
            "embedder": self.index.manifest.embedder.name,
            "settings": self.settings.to_dict(),
        }

    def deps(self, llm: LLM | None = None) -> "AgentDeps":
        """The agent's run-time dependencies (its LangGraph context)."""
        from branchwise.agents.deps import AgentDeps

        llm = llm or self.llm
        return AgentDeps(index=self.index, llm=llm, tree_search=self.tree_search(llm), graph_search=self.graph_search,
                         compressor=self.compressor(llm), provenance=self.provenance(llm), reranker=self.reranker(llm),
                         summary_search=self.summary_search)

    def agent(self, *, llm: LLM | None = None, checkpoint_path: str | Path | None = None) -> "Agent":
        """An :class:`~branchwise.agents.agent.Agent` over these parts."""
        from branchwise.agents.agent import Agent

        return Agent.from_deps(self.deps(llm), self.settings.agent, checkpoint_path=checkpoint_path,
                               deadline_s=self.settings.timeout_s)


def build_agent(index: "Index | str | Path", settings: Settings | None = None, *, llm: LLM | None = None,
                checkpoint_path: str | Path | None = None) -> "Agent":
    """``Assembly(index, settings, llm=llm).agent(checkpoint_path=...)`` (opening ``index`` if a path)."""
    if isinstance(index, (str, Path)):
        index = open_index(index)
    return Assembly(index, settings, llm=llm).agent(checkpoint_path=checkpoint_path)
