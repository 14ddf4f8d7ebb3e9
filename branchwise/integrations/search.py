"""The retrieval the framework adapters share: top-k chunks of an index by the agent's route.

:class:`IndexSearch` holds one :class:`~branchwise.assembly.root.Assembly` (made once), so the
tree resources, the scorer and node vectors are built once per retriever. The route is
``settings.agent.retrieval`` (default ``"auto"``: LATTICE tree navigation when the index has
a tree, else hybrid search), or any flat retriever of
:data:`~branchwise.retrieval.registry.RETRIEVERS`. The LLM is loaded only if the scorer needs
one (the default ``embedding`` scorer does not).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwise.assembly.root import Assembly, open_index
from branchwise.errors import InputError
from branchwise.types import Chunk

if TYPE_CHECKING:
    from branchwise.agents.agent import Agent
    from branchwise.assembly.settings import Settings
    from branchwise.models.base import LLM
    from branchwise.retrieval.index import Index

log = logging.getLogger(__name__)

_TREE_ROUTES = ("auto", "tree", "tree+hybrid")


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk: the chunk, its score (higher is better) and the route that found it."""

    chunk: Chunk
    score: float
    source: str


class IndexSearch:
    """Top-k search over a branchwise index, assembled by the composition root.

    Args:
        index: an opened index, or its directory.
        settings: what to assemble (default: ``Settings.from_env()``).
        llm: the LLM object to use where one is needed (default: loaded from settings on use).
    """

    def __init__(self, index: "Index | str | Path", settings: "Settings | None" = None, *,
                 llm: "LLM | None" = None) -> None:
        from branchwise.assembly.settings import Settings

        opened = open_index(index) if isinstance(index, (str, Path)) else index
        self.assembly = Assembly(opened, settings or Settings.from_env(), llm=llm)
        self.llm = llm
        self._tree: Any = None

    @property
    def index(self) -> "Index":
        return self.assembly.index

    @property
    def route(self) -> str:
        """The route searched: the tree when asked for (or ``auto`` with a tree), else a flat retriever."""
        want = self.assembly.settings.agent.retrieval
        if want in _TREE_ROUTES:
            return want if self.index.tree is not None else "hybrid"
        return want

    def search(self, query: str, k: int = 4) -> list[Hit]:
        """The ``k`` best chunks for ``query``."""
        if not query or not query.strip():
            raise InputError("the query is empty.", fix="pass a non-empty query.")
        route = self.route
        scored = []
        if route in _TREE_ROUTES:
            if self._tree is None:
                self._tree = self.assembly.tree_search(self.llm)
            scored = list(self._tree.search(query, k).hits)
        if route not in _TREE_ROUTES or route == "tree+hybrid":
            from branchwise.retrieval.registry import RETRIEVERS

            flat = "hybrid" if route in _TREE_ROUTES else route
            seen = {s.chunk_id for s in scored}
            scored += [s for s in RETRIEVERS.create(flat, self.index)(query, k) if s.chunk_id not in seen]
        hits = []
        for s in scored[:k]:
            try:
                hits.append(Hit(self.index.chunks.get(s.chunk_id), float(s.score), s.source or route))
            except KeyError:  # a stale tree leaf
                log.debug("skipping chunk %s: not in the index", s.chunk_id)
        return hits

    def agent(self) -> "Agent":
        """The full agent over this index (plan, retrieve, feedback, compress, cited answer)."""
        return self.assembly.agent(llm=self.llm)
