"""The driver loop: run the navigator step machine against a scorer.

:func:`navigate` answers one question; :func:`navigate_many` runs many questions in
lock-step so every round's slates (B per unfinished question) go to the scorer in *one*
``score_batch`` call — what a GPU server or an HTTP backend with concurrency wants.

Time accounting: the framework's own time (planning, calibration fits, prior lookups) is
measured per question around the step machine's calls; scorer time is the wall time of
``score_batch``, shared among the questions of a batch in proportion to their slates'
reported latency. ``trace.total_s - trace.scorer_s`` is thus the per-query overhead that
``benchmarks/query_cost.py`` checks against its 5 % target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from branchwise.errors import IndexFormatError
from branchwise.models.base import Embedder
from branchwise.navigation.navigator import (
    Navigator,
    NavigatorConfig,
    NavState,
    NodeTextSource,
)
from branchwise.navigation.priors import (
    IndexNodeVectors,
    RetrievalPrior,
    RetrievalPriorConfig,
)
from branchwise.navigation.scorers import Scorer
from branchwise.navigation.trace import TraversalTrace
from branchwise.retrieval.tree import Tree
from branchwise.types import ScoredChunk, Usage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TreeTextSource:
    """:data:`NodeTextSource` over a tree: summaries for internal nodes, chunk text for leaves.

    Args:
        tree: the tree.
        chunk_text: chunk id → text (e.g. ``lambda c: index.chunks.get(c).text``).
    """

    tree: Tree
    chunk_text: Callable[[str], str]

    def __call__(self, node_id: str) -> str:
        node = self.tree[node_id]
        return self.chunk_text(node.chunk_id) if node.chunk_id is not None else node.summary


@dataclass(slots=True)
class TreeResources:
    """What navigation needs besides the scorer: the tree, node texts and the priors.

    Build it from an index with :meth:`from_index`, or by hand in tests.
    """

    tree: Tree
    texts: NodeTextSource
    prior: RetrievalPrior | None = None

    @classmethod
    def from_index(
        cls, index: Any, embedder: Embedder | None = None, prior_config: RetrievalPriorConfig = RetrievalPriorConfig()
    ) -> TreeResources:
        """Resources of a ``branchwise.retrieval.index.Index`` (tree, chunks, embeddings, BM25)."""
        tree = index.tree
        if tree is None:
            raise IndexFormatError(
                f"the index at {getattr(index, 'path', '?')} has no tree.",
                fix="build one with `branchwise index PATH --out DIR` (the tree stage).",
            )
        emb = embedder if embedder is not None else getattr(index, "embedder", None)
        prior = RetrievalPrior(
            vectors=IndexNodeVectors(index, tree), embedder=emb, bm25=index.search_bm25, config=prior_config, tree=tree
        )
        return cls(tree=tree, texts=TreeTextSource(tree, lambda c: index.chunks.get(c).text), prior=prior)


@dataclass(slots=True)
class NavigationResult:
    """Ranked leaves (as chunks, best first), the traversal trace and the query's usage."""

    ranked: list[ScoredChunk]
    trace: TraversalTrace
    usage: Usage = field(default_factory=Usage)


def _resources(source: TreeResources | Any) -> TreeResources:
    return source if isinstance(source, TreeResources) else TreeResources.from_index(source)


def navigate(
    source: TreeResources | Any, scorer: Scorer, question: str, config: NavigatorConfig = NavigatorConfig()
) -> NavigationResult:
    """Navigate ``source`` (an index or :class:`TreeResources`) for one question."""
    return navigate_many(source, scorer, [question], config, progress=False)[0]


def navigate_many(
    source: TreeResources | Any,
    scorer: Scorer,
    questions: Sequence[str],
    config: NavigatorConfig = NavigatorConfig(),
    *,
    progress: bool = True,
) -> list[NavigationResult]:
    """Navigate all ``questions`` in lock-step, one ``score_batch`` call per round."""
    res = _resources(source)
    nav = Navigator(res.tree, res.texts, config)
    n = len(questions)
    own = [0.0] * n
    scorer_s = [0.0] * n
    states: list[NavState] = []
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        prior = res.prior.for_query(q) if res.prior is not None else None
        states.append(nav.start(q, prior=prior, query_id=f"q{i}"))
        own[i] += time.perf_counter() - t0
    bar = tqdm(total=n, desc="navigating", unit="q", disable=not progress or n < 2)
    bar.update(sum(s.done for s in states))
    while active := [i for i, s in enumerate(states) if not s.done]:
        requests, owner = [], []
        for i in active:
            t0 = time.perf_counter()
            reqs = nav.pending(states[i])
            own[i] += time.perf_counter() - t0
            requests += reqs
            owner += [i] * len(reqs)
        t0 = time.perf_counter()
        scores = scorer.score_batch(requests)
        wall = time.perf_counter() - t0
        reported = sum(s.latency_s for s in scores)
        for i in active:
            mine = [sc for sc, o in zip(scores, owner) if o == i]
            share = sum(s.latency_s for s in mine) / reported if reported > 0 else len(mine) / len(scores)
            scorer_s[i] += wall * share
            t0 = time.perf_counter()
            nav.update(states[i], mine)
            own[i] += time.perf_counter() - t0
            bar.update(int(states[i].done))
    bar.close()
    results = []
    for i, state in enumerate(states):
        t0 = time.perf_counter()
        ranked, trace = nav.result(state)
        own[i] += time.perf_counter() - t0
        trace.scorer = getattr(scorer, "name", type(scorer).__name__)
        trace.scorer_s = scorer_s[i]
        trace.total_s = scorer_s[i] + own[i]
        usage = Usage(
            llm_calls=trace.llm_calls,
            prompt_tokens=trace.prompt_tokens,
            completion_tokens=trace.completion_tokens,
            embed_calls=int(state.prior is not None),
            latency_s=trace.total_s,
        )
        results.append(NavigationResult(ranked=ranked, trace=trace, usage=usage))
    return results
