"""The served indexes: each opened once, with one :class:`~branchwise.assembly.root.Assembly`,
and the shared LLM every agent borrows.

Agents are assembled by the composition root only: ``Assembly(index, settings)`` per index
(its tree resources, graph retriever and node vectors made once), then
``assembly.agent(llm=shared_llm)`` per request. A request with options (scorer, budgets)
gets an Assembly of ``settings.replace(...)`` over the *same* opened index, kept in a small
per-index cache. Each index is opened on its own (its own embedder, store and caches), so
nothing of one index can surface in another's answers.

Updates (add / delete documents) go through ``assembly.root.add_documents`` /
``delete_documents`` under the index's write lock; questions hold its read lock. After an
update the index is reopened and its assemblies rebuilt.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Mapping, Sequence

from branchwise.assembly.root import (
    Assembly,
    add_documents,
    delete_documents,
    load_embedder,
    load_llm,
    open_index,
)
from branchwise.server.errors import NotFound
from branchwise.server.options import apply_options

if TYPE_CHECKING:
    from branchwise.agents.agent import Agent
    from branchwise.assembly.settings import Settings
    from branchwise.indexing.incremental import UpdateReport
    from branchwise.models.base import LLM, Embedder
    from branchwise.retrieval.index import Index
    from branchwise.server.config import ServedIndexSpec

log = logging.getLogger(__name__)


class ReadWriteLock:
    """Many readers or one writer (questions read an index, updates write it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and self._readers == 0)
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class SharedModels:
    """LLMs and embedders by spec, each loaded once and shared by every index that names it.

    Args:
        settings: the server's settings (``llm``; else each index's recorded LLM).
        llm: an LLM object to use for every index (tests, embedding the server).
    """

    def __init__(self, settings: "Settings", llm: "LLM | None" = None) -> None:
        self.settings = settings
        self._given = llm
        self._llms: dict[str, LLM] = {}
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def llm_for(self, index: "Index") -> "LLM":
        if self._given is not None:
            return self._given
        spec = self.settings.llm_spec(index.manifest.llm)
        with self._lock:
            if spec not in self._llms:
                self._llms[spec] = load_llm(self.settings, recorded=index.manifest.llm)
            return self._llms[spec]

    def embedder(self, spec: str) -> "Embedder":
        """The embedder ``spec`` (an index's spec given again, e.g. with its credentials)."""
        with self._lock:
            if spec not in self._embedders:
                self._embedders[spec] = load_embedder(self.settings, spec)
            return self._embedders[spec]


@dataclass
class ServedIndex:
    """One index served under ``name``: its opened index, its assemblies, its lock."""

    name: str
    path: Path
    index: "Index"
    settings: "Settings"
    variants_limit: int = 8
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    _assemblies: "OrderedDict[str, Assembly]" = field(default_factory=OrderedDict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def assembly(self, options: Mapping[str, Any] | None = None) -> Assembly:
        """The Assembly of the server settings with ``options`` applied (validated, cached)."""
        settings, key = apply_options(self.settings, options)
        with self._guard:
            parts = self._assemblies.get(key)
            if parts is None:
                parts = self._assemblies[key] = Assembly(self.index, settings)
                while len(self._assemblies) > self.variants_limit:
                    oldest = next(k for k in self._assemblies if k != "")  # the base assembly stays
                    del self._assemblies[oldest]
            self._assemblies.move_to_end(key)
            return parts

    def reopen(self) -> None:
        """Reopen the index after an update (same embedder) and drop its assemblies."""
        self.index = open_index(self.path, embedder=self.index.embedder)
        with self._guard:
            self._assemblies.clear()

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/indexes/{name}`` shows (no paths)."""
        m, index = self.index.manifest, self.index
        tree = index.tree.stats() if index.tree is not None else None
        return {
            "name": self.name, "object": "index", "documents": len(index.chunks.doc_ids()), "chunks": len(index.chunks),
            "tree": {"depth": tree["depth"], "internal_nodes": tree["internal"]} if tree else None,
            "graph": m.stage_done("graph"), "embedder": m.embedder.name,
            "summaries": m.extra.get("tree", {}).get("summary_mode"),
        }


class Catalog:
    """The served indexes by name, the shared models, and the agent factory.

    Args:
        specs: what to serve.
        settings: the server's :class:`branchwise.Settings` (every agent starts from them).
        llm: one LLM object for every index (default: loaded by spec, once).
        variants_per_index: option variants kept assembled per index.
    """

    def __init__(self, specs: Sequence["ServedIndexSpec"], settings: "Settings", *, llm: "LLM | None" = None,
                 variants_per_index: int = 8) -> None:
        self.settings = settings
        self.models = SharedModels(settings, llm)
        self._served: dict[str, ServedIndex] = {}
        for spec in specs:
            index = open_index(spec.path, embedder=self.models.embedder(spec.embedder) if spec.embedder else None)
            self._served[spec.name] = ServedIndex(spec.name, Path(spec.path).resolve(), index, settings,
                                                  variants_per_index)
            log.info("serving index %s (%d chunks)", spec.name, len(index.chunks))

    def names(self) -> list[str]:
        return list(self._served)

    def get(self, name: str) -> ServedIndex:
        try:
            return self._served[name]
        except KeyError:
            raise NotFound(f"there is no index named {name!r}.", fix="list the indexes with GET /v1/models.") from None

    def public_paths(self) -> dict[str, str]:
        """Server paths → public names (to scrub error messages)."""
        return {str(s.path): f"<index {s.name}>" for s in self._served.values()}

    def agent(self, name: str, options: Mapping[str, Any] | None = None) -> "Agent":
        """An agent over index ``name`` (the composition root's, with the shared LLM)."""
        served = self.get(name)
        parts = served.assembly(options)
        return parts.agent(llm=self.models.llm_for(served.index))

    def update(self, name: str, op: Literal["add", "delete"], what: Any) -> "UpdateReport":
        """Add sources (paths) or delete document ids, through the composition root; blocking."""
        from branchwise.indexing.incremental import update_needs_llm

        served = self.get(name)
        with served.lock.write():
            index = served.index
            llm = self.models.llm_for(index) if update_needs_llm(index, op) else None
            try:
                if op == "add":
                    return add_documents(index, what, self.settings, llm=llm, progress=False)
                return delete_documents(index, list(what), self.settings, llm=llm, progress=False)
            finally:
                served.reopen()
