"""The agent's tree route: LATTICE navigation (:func:`branchwise.navigation.navigate.navigate`).

:class:`NavigatorSearch` adapts the navigator driver to the agent's
:class:`~branchwise.agents.deps.TreeSearch` protocol: it returns the top-k leaves by path
relevance, the full ``TraversalTrace`` (embedded in the agent trace) and the scorer's usage,
and reports progress ("navigating level 2") by wrapping the scorer, so the navigator itself
stays free of callbacks and I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from branchwise.agents.deps import TreeSearchResult
from branchwise.navigation.navigate import TreeResources, navigate
from branchwise.navigation.navigator import NavigatorConfig
from branchwise.navigation.priors import IndexNodeVectors
from branchwise.navigation.scorers import EmbeddingScorer, Scorer
from branchwise.navigation.slates import SlateRequest, SlateScores
from branchwise.retrieval.tree import Tree


@dataclass(slots=True)
class ProgressScorer:
    """A :class:`Scorer` that reports each batch of slates before delegating to ``inner``.

    The trace records the inner scorer's ``name``, since this wrapper passes it through.
    """

    inner: Scorer
    tree: Tree
    on_progress: Callable[[str], None]
    name: str = field(default="", init=False)
    batches: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.name = getattr(self.inner, "name", type(self.inner).__name__)

    def score_batch(self, requests: Sequence[SlateRequest]) -> list[SlateScores]:
        self.batches += 1
        levels = sorted({self.tree[r.parent_id].level for r in requests}, reverse=True)
        where = ", ".join(str(lv) for lv in levels) or "?"
        self.on_progress(f"navigating level {where} (iteration {self.batches}, {len(requests)} slate(s))")
        return self.inner.score_batch(requests)


class NavigatorSearch:
    """Tree search by LATTICE navigation with a pluggable scorer.

    Args:
        resources: the tree, node texts and retrieval priors (``TreeResources``), or an
            index with a tree (``TreeResources.from_index`` is applied).
        scorer: the slate scorer (embedding, yes/no or LLM slate scorer).
        config: the navigator settings (beam, iterations, α, calibration, budgets).
    """

    def __init__(
        self, resources: TreeResources | Any, scorer: Scorer, config: NavigatorConfig = NavigatorConfig()
    ) -> None:
        self.resources = resources if isinstance(resources, TreeResources) else TreeResources.from_index(resources)
        self.scorer = scorer
        self.config = config

    @classmethod
    def embedding(cls, index: Any, config: NavigatorConfig = NavigatorConfig()) -> "NavigatorSearch":
        """Navigation scored by embedding cosine: zero LLM calls, the default for small models."""
        resources = TreeResources.from_index(index)
        scorer = EmbeddingScorer(IndexNodeVectors(index, resources.tree), index.embedder)
        return cls(resources, scorer, config)

    def search(self, query: str, k: int, on_progress: Callable[[str], None] | None = None) -> TreeSearchResult:
        """Navigate for ``query``; the ``k`` best leaves by path relevance."""
        scorer: Scorer = self.scorer
        if on_progress is not None:
            scorer = ProgressScorer(self.scorer, self.resources.tree, on_progress)
        result = navigate(self.resources, scorer, query, self.config)
        if on_progress is not None:
            on_progress(f"navigation done: {result.trace.iterations} iterations ({result.trace.stop_reason})")
        return TreeSearchResult(hits=result.ranked[:k], trace=result.trace.to_dict(), usage=result.usage)
