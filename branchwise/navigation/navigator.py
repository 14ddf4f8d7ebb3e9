"""The navigator: LATTICE's online phase (arXiv 2510.13217, §3.2-3.4) as a step machine.

    nav = Navigator(tree, texts, NavigatorConfig(beam=2, iterations=10, alpha=0.5))
    state = nav.start(question, prior=query_prior)
    while not state.done:
        scores = scorer.score_batch(nav.pending(state))   # the only model work
        state = nav.update(state, scores)
    ranked, trace = nav.result(state)

The machine emits :class:`SlateRequest` s and consumes :class:`SlateScores`; it holds no
model and does no I/O, so many questions' slates can be scored in one batched call and the
logic is tested with plain dicts. Each iteration:

1. expand the top-B frontier nodes by path relevance (the frontier starts at the root);
2. slate = the node's children + calibration items: when the children are leaves, up to ℓ
   leaves sampled from the prediction set (seeded per question, favouring high scores);
   otherwise the best explored node at the expanded node's depth (as the reference code);
3. after scoring, refit the latent scores over *all* slates so far
   (:mod:`branchwise.navigation.calibration`), fusing the retrieval priors as extra
   observations with trust ``dense_prior_weight`` / ``bm25_prior_weight``;
4. path relevance ``p(v) = α·p(parent) + (1−α)·ŝ(v)`` (``p(root) = 1``); nodes with
   ``ŝ ≤ prune_threshold`` keep ``p = ŝ`` and are not expanded;
5. stop after N iterations, when the call or token budget is spent, when nothing is left to
   expand, or (optionally) when the top-k leaves stop changing. Budgets never raise: the
   stop reason is recorded and the leaves scored so far are returned.

Why priors get a configured trust rather than a learned one: with one latent per item and
no relevance labels, two raters that disagree on an item fit equally well for any split of
the disagreement (each source's residual shrinks as its weight grows), so estimating each
source's noise from the residuals collapses onto one source. The trust is therefore a
hyperparameter, to be chosen on judged queries (``benchmarks/retrieval_quality.py
--prior-weight``).
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from branchwise.errors import InputError
from branchwise.navigation.calibration import (
    CalibrationConfig,
    ObservationLog,
    prior_mix,
    sample_calibration_items,
)
from branchwise.navigation.priors import QueryPrior
from branchwise.navigation.slates import SlateItem, SlateRequest, SlateScores
from branchwise.navigation.trace import TraversalStep, TraversalTrace
from branchwise.retrieval.tree import Tree
from branchwise.types import ScoredChunk

log = logging.getLogger(__name__)

#: Node id → the text a scorer judges: summary for internal nodes, chunk text for leaves.
NodeTextSource = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class NavigatorConfig:
    """Settings (and ablation switches) of the navigator.

    Attributes:
        beam: B, frontier nodes expanded per iteration (LATTICE: 2).
        iterations: N, the maximum number of iterations. LATTICE uses 20 (~40 slates per
            query); 10 keeps a query at ≤ 19 slate calls whatever the corpus size, and
            ``benchmarks/retrieval_quality.py`` reports what N = 20 adds.
        alpha: α, weight of the parent's path relevance (0: local scores only).
        calibration: fit latent scores across slates (off: mean raw score, mixed with the
            priors by their weights; LATTICE reports −2.2 nDCG@10 without calibration).
        leaf_calibration: ℓ, prediction-set leaves added to leaf slates (0 disables
            calibration items altogether).
        prune_threshold: nodes whose local score is at or below this are not expanded.
        max_calls: slate budget per query (None: unlimited); checked before each beam.
        max_tokens: prompt + completion token budget per query (None: unlimited).
        patience: stop when the top ``converge_k`` leaves are unchanged for this many
            iterations (None: off).
        converge_k: leaves compared by ``patience``.
        dense_prior_weight: trust of the embedding prior relative to one scorer judgement.
        bm25_prior_weight: trust of the BM25 prior (leaves only).
        seed: seeds the calibration-leaf sampling (combined with the question text).
        keep_prompts: keep the scorers' prompt texts in the trace (on by default; hashes and
            token counts are always kept).
        calib: the calibration fit settings.
    """

    beam: int = 2
    iterations: int = 10
    alpha: float = 0.5
    calibration: bool = True
    leaf_calibration: int = 10
    prune_threshold: float = 0.1
    max_calls: int | None = None
    max_tokens: int | None = None
    patience: int | None = None
    converge_k: int = 10
    dense_prior_weight: float = 1.0
    bm25_prior_weight: float = 1.0
    seed: int = 0
    keep_prompts: bool = True
    calib: CalibrationConfig = field(default_factory=CalibrationConfig)

    def __post_init__(self) -> None:
        problems = []
        if self.beam < 1 or self.iterations < 1:
            problems.append("beam and iterations must be >= 1")
        if not 0.0 <= self.alpha <= 1.0:
            problems.append("alpha must be in [0, 1]")
        if self.leaf_calibration < 0 or self.dense_prior_weight < 0 or self.bm25_prior_weight < 0:
            problems.append("leaf_calibration and prior weights must be >= 0")
        if (self.max_calls is not None and self.max_calls < 1) or (self.patience is not None and self.patience < 1):
            problems.append("max_calls and patience must be >= 1 when set")
        if problems:
            raise InputError(f"invalid NavigatorConfig: {'; '.join(problems)}.", fix="see the NavigatorConfig docstring.")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def for_embedding_scorer(cls, **overrides: object) -> NavigatorConfig:
        """Settings for :class:`~branchwise.navigation.scorers.EmbeddingScorer`.

        Its cosines are already on one scale per query (unlike an LLM's slate-relative
        judgements), so slate offsets are pinned near 0 (``offset_l2=100``), and the dense
        prior is off because the scorer *is* the dense signal. On Vaswani this moved
        nDCG@10 from 0.442 to 0.466; Cranfield was unchanged (0.399 / 0.398).
        """
        base = cls(dense_prior_weight=0.0, calib=CalibrationConfig(offset_l2=100.0))
        return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@dataclass(slots=True)
class NavState:
    """The navigation state of one question (owned by the caller; ``update`` mutates it)."""

    query_id: str
    question: str
    prior: QueryPrior | None
    path: dict[str, float] = field(default_factory=dict)
    local: dict[str, float] = field(default_factory=dict)
    raw: dict[str, list[float]] = field(default_factory=dict)
    priors: dict[str, dict[str, float]] = field(default_factory=dict)
    expanded: list[str] = field(default_factory=list)
    pruned: set[str] = field(default_factory=set)
    scored_leaves: set[str] = field(default_factory=set)
    obs: ObservationLog = field(default_factory=ObservationLog)
    pending: list[SlateRequest] = field(default_factory=list)
    steps: list[TraversalStep] = field(default_factory=list)
    iteration: int = 0
    slates: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stable: int = 0
    last_top: tuple[str, ...] = ()
    done: bool = False
    stop_reason: str = ""


class Navigator:
    """LATTICE traversal over one tree (see the module docstring).

    Args:
        tree: the semantic tree.
        texts: node id → text shown to the scorer.
        config: the navigator settings.
    """

    def __init__(self, tree: Tree, texts: NodeTextSource, config: NavigatorConfig = NavigatorConfig()):
        self.tree = tree
        self.texts = texts
        self.config = config
        self._depth: dict[str, int] = {tree.root: 0}  # filled lazily: only explored nodes

    def depth(self, node_id: str) -> int:
        """Edges from the root to ``node_id`` (memoised along the path)."""
        path = []
        nid: str | None = node_id
        while nid is not None and nid not in self._depth:
            path.append(nid)
            nid = self.tree[nid].parent
        d = self._depth[nid] if nid is not None else -1
        for n in reversed(path):
            d += 1
            self._depth[n] = d
        return self._depth[node_id]

    # -- the step machine ---------------------------------------------------------------
    def start(self, question: str, prior: QueryPrior | None = None, query_id: str | None = None) -> NavState:
        """A fresh state for ``question`` with its first beam (the root) pending."""
        if not question.strip():
            raise InputError("the question is empty.", fix="pass a non-empty question.")
        qid = query_id if query_id is not None else f"q{zlib.crc32(question.encode()):08x}"
        state = NavState(query_id=qid, question=question, prior=prior)
        state.path[self.tree.root] = 1.0
        state.local[self.tree.root] = 1.0
        if self.tree[self.tree.root].is_leaf:
            state.scored_leaves.add(self.tree.root)
        self._plan(state)
        return state

    def pending(self, state: NavState) -> list[SlateRequest]:
        """The slates to score next (empty once ``state.done``)."""
        return list(state.pending)

    def update(self, state: NavState, scores: Sequence[SlateScores]) -> NavState:
        """Consume the scores of ``pending(state)``: calibrate, propagate, plan the next beam."""
        if state.done:
            raise InputError("update() called on a finished navigation.", fix="check state.done before scoring.")
        if len(scores) != len(state.pending):
            raise InputError(
                f"got {len(scores)} slate scores for {len(state.pending)} pending slates.",
                fix="pass exactly one SlateScores per request from pending(state), in order.",
            )
        state.iteration += 1
        new_steps = [self._record(state, req, sc) for req, sc in zip(state.pending, scores)]
        self._refresh(state)
        for step in new_steps:
            step.calibrated = [round(state.local.get(n, 0.0), 6) for n in step.items]
            step.path_scores = [round(state.path.get(n, 0.0), 6) for n in step.items]
            step.pruned = [n for n, r in zip(step.items, step.roles) if r == "child" and n in state.pruned]
        if self.config.patience is not None:
            top = tuple(n for _, n in heapq.nsmallest(
                self.config.converge_k, ((-state.path.get(n, 0.0), n) for n in state.scored_leaves)))
            state.stable = state.stable + 1 if top and top == state.last_top else 0
            state.last_top = top
        self._plan(state)
        return state

    def result(self, state: NavState) -> tuple[list[ScoredChunk], TraversalTrace]:
        """Scored leaves, best first (unscored leaves are absent), and the trace."""
        order = self._ranked_ids(state)
        ranked = [ScoredChunk(chunk_id=str(self.tree[n].chunk_id), score=float(state.path[n]), source="tree") for n in order]
        trace = TraversalTrace(
            question=state.question,
            config=self.config.to_dict(),
            steps=list(state.steps),
            iterations=state.iteration,
            stop_reason=state.stop_reason,
            ranked=[[n, str(self.tree[n].chunk_id), round(state.path[n], 6)] for n in order],
            llm_calls=state.llm_calls,
            prompt_tokens=state.prompt_tokens,
            completion_tokens=state.completion_tokens,
        )
        return ranked, trace

    # -- internals ----------------------------------------------------------------------
    def _ranked_ids(self, state: NavState) -> list[str]:
        return sorted(state.scored_leaves, key=lambda n: (-state.path.get(n, 0.0), n))

    def _frontier(self, state: NavState) -> list[str]:
        done = set(state.expanded)
        return [
            n
            for n in state.path
            if n not in done and n not in state.pruned and not self.tree[n].is_leaf
        ]

    def _stop(self, state: NavState, reason: str) -> None:
        state.done, state.stop_reason, state.pending = True, reason, []
        log.debug("navigation of %s stopped after %d iterations: %s", state.query_id, state.iteration, reason)

    def _plan(self, state: NavState) -> None:
        cfg = self.config
        frontier = self._frontier(state)
        if state.iteration >= cfg.iterations:
            return self._stop(state, "iterations")
        if cfg.max_tokens is not None and state.prompt_tokens + state.completion_tokens >= cfg.max_tokens:
            return self._stop(state, "token_budget")
        if cfg.max_calls is not None and state.slates >= cfg.max_calls:
            return self._stop(state, "call_budget")
        if cfg.patience is not None and state.stable >= cfg.patience:
            return self._stop(state, "converged")
        if not frontier:
            return self._stop(state, "exhausted")
        k = cfg.beam if cfg.max_calls is None else min(cfg.beam, cfg.max_calls - state.slates)
        beam = sorted(frontier, key=lambda n: (-state.path[n], n))[:k]
        calib_leaves = self._sample_calibration_leaves(state)
        state.pending = [self._slate(state, node, i, calib_leaves) for i, node in enumerate(beam)]

    def _sample_calibration_leaves(self, state: NavState) -> list[str]:
        if self.config.leaf_calibration == 0 or not self.config.calibration:
            return []
        rng = np.random.default_rng([self.config.seed, zlib.crc32(state.question.encode()), state.iteration])
        return sample_calibration_items(state.local, state.scored_leaves, self.config.leaf_calibration, rng)

    def _item(self, node_id: str, role: str) -> SlateItem:
        node = self.tree[node_id]
        return SlateItem(node_id, self.texts(node_id), node.is_leaf, node.chunk_id, role)  # type: ignore[arg-type]

    def _slate(self, state: NavState, node_id: str, offset: int, calib_leaves: list[str]) -> SlateRequest:
        children = self.tree[node_id].children
        leaf_slate = all(self.tree[c].is_leaf for c in children)
        items = [self._item(c, "child") for c in children]
        if self.config.calibration and self.config.leaf_calibration > 0:
            if leaf_slate:
                items += [self._item(n, "calibration") for n in calib_leaves if n not in children]
            elif (d := self.depth(node_id)) > 0:
                at_depth = [n for n in state.path if self.depth(n) == d]
                best = min(at_depth, key=lambda n: (-state.path[n], n))
                items.append(self._item(best, "calibration"))
        prior = state.prior.scores(items) if state.prior is not None else {}
        return SlateRequest(
            query_id=state.query_id,
            question=state.question,
            slate_id=state.slates + offset,
            parent_id=node_id,
            items=tuple(items),
            leaf_slate=leaf_slate,
            prior={k: tuple(v) for k, v in prior.items()},
        )

    def _weights(self) -> dict[str, float]:
        return {"dense": self.config.dense_prior_weight, "bm25": self.config.bm25_prior_weight}

    def _record(self, state: NavState, req: SlateRequest, sc: SlateScores) -> TraversalStep:
        fallback = sc.fallback
        values = [float(v) for v in sc.scores]
        if len(values) != len(req.items) or not all(np.isfinite(values)):
            fallback = f"scorer returned {len(values)} scores (or non-finite ones) for {len(req.items)} items"
            log.warning("slate %d of %s: %s; using the priors", req.slate_id, req.query_id, fallback)
            values = [v if v is not None else 0.5 for v in req.prior_mean()]
        values = [min(1.0, max(0.0, v)) for v in values]
        state.slates += 1
        state.llm_calls += sc.llm_calls
        state.prompt_tokens += sc.prompt_tokens
        state.completion_tokens += sc.completion_tokens
        if req.parent_id not in state.expanded:
            state.expanded.append(req.parent_id)
        group = state.obs.new_group()
        weights = self._weights()
        for i, (item, v) in enumerate(zip(req.items, values)):
            state.obs.add(item.node_id, group, v)
            state.raw.setdefault(item.node_id, []).append(v)
            if item.role == "child":
                state.path.setdefault(item.node_id, 0.0)
                if item.is_leaf:
                    state.scored_leaves.add(item.node_id)
            seen = state.priors.setdefault(item.node_id, {})
            for src, vals in req.prior.items():
                pv = vals[i]
                if pv is None or src in seen:
                    continue
                seen[src] = float(pv)
                if weights.get(src, 0.0) > 0:
                    kind = "leaf" if item.is_leaf else "node"
                    state.obs.add(item.node_id, state.obs.new_group(f"{src}:{kind}"), float(pv), weights[src])
        step = TraversalStep(
            iteration=state.iteration,
            expanded=req.parent_id,
            items=[it.node_id for it in req.items],
            roles=[it.role for it in req.items],
            raw_scores=[round(v, 6) for v in values],
            priors={src: [None if v is None else round(v, 6) for v in vals] for src, vals in req.prior.items()},
            reasoning=sc.reasoning,
            prompt_hash=sc.prompt_hash,
            prompt=sc.prompt if self.config.keep_prompts else "",
            prompt_tokens=sc.prompt_tokens,
            completion_tokens=sc.completion_tokens,
            llm_calls=sc.llm_calls,
            latency_s=sc.latency_s,
            fallback=fallback,
        )
        state.steps.append(step)
        return step

    def _refresh(self, state: NavState) -> None:
        """Refit local scores, then recompute path relevance and pruning top-down."""
        cfg = self.config
        if cfg.calibration:
            local = state.obs.calibrated(cfg.calib)
        else:  # mean raw score mixed with the priors by their trust weights
            local = {n: prior_mix(float(np.mean(r)), state.priors.get(n, {}), self._weights()) for n, r in state.raw.items()}
        local[self.tree.root] = 1.0
        state.local = local
        state.pruned = set()
        expanded = set(state.expanded)
        stack = [self.tree.root]
        while stack:
            u = stack.pop()
            if u not in expanded:
                continue
            for c in self.tree[u].children:
                s = local.get(c, 0.0)
                if s <= cfg.prune_threshold:
                    state.path[c] = s
                    state.pruned.add(c)
                else:
                    state.path[c] = cfg.alpha * state.path[u] + (1 - cfg.alpha) * s
                stack.append(c)
