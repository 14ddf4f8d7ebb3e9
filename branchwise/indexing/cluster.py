"""Balanced clustering with a hard cap on cluster size, scaling to millions of vectors.

Both tree builders split L2-normalised vectors into groups that are semantically coherent
and never larger than a cap (``M`` children, or ``M**h`` leaves for a subtree of height
``h``); the cap keeps the navigator's slates small and the depth at ``ceil(log_M N)``.

Why hierarchical, capacity-constrained spherical k-means:

* LATTICE (arXiv 2510.13217) used spectral clustering, RAPTOR (arXiv 2401.18059) UMAP +
  Gaussian mixtures (reported to run out of memory at ~93k chunks). Spectral and
  agglomerative clustering need O(n²) memory and do not cap cluster size. Measured here
  (``benchmarks/tree_build.py --baselines``: 2 cores, real all-MiniLM-L6-v2 embeddings of
  Vaswani abstracts, one flat clustering into n/10 groups; time, peak RSS, group sizes):

  ====  =======================  ======================  =========================
  n     sklearn Spectral          sklearn Ward            this module (M=12)
  ====  =======================  ======================  =========================
  1k    0.5 s, 231 MB, 3..22     0.2 s, 196 MB, 2..35    0.7 s, 189 MB, 3..12
  5k    64.2 s, 1020 MB, 1..29   2.9 s, 387 MB, 2..30    1.9 s, 200 MB, 3..12
  ====  =======================  ======================  =========================

  Spectral grows ~n³ in time (eigenvectors) and Ward ~n² in memory (~40 GB at 100k).
* k-means with small ``k`` is O(n·k·d) per iteration; ``MiniBatchKMeans`` handles the top
  splits of a million points. Applied recursively (hierarchical k-means, Nistér &
  Stewénius 2006) it yields ``n/M`` groups in O(n·d·M·log_M n): close to N log N.
* Balance comes from a capacity-constrained assignment after each fit (balanced k-means,
  Malinen & Fränti 2014, done greedily instead of with the Hungarian method): a cluster
  keeps the points that prefer it most up to its capacity, overflow moves to each point's
  next-best cluster, lower bounds are repaired by moving the points that lose least. When
  the natural clusters fit, the constraint is inactive: plain k-means.

Full builds with this clustering (``benchmarks/tree_build.py``, reports/benchmarks.md): the
clustering itself takes 9.9 s at 100k chunks and 96.6 s at 1M (3.2 GB peak for the whole 1M
build, 2.5 min); a 100k build with summary embeddings takes 2.2 min and 1.25 GB. Everything is
deterministic given ``seed`` (passed as ``random_state``; no global RNG state).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans, MiniBatchKMeans
from tqdm.auto import tqdm

from branchwise.errors import InputError


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Settings of the balanced k-means used by both tree builders.

    Attributes:
        minibatch_threshold: fit ``MiniBatchKMeans`` instead of ``KMeans`` above this size.
        small_threshold: below this size, a light numpy Lloyd loop seeded by k-means++
            replaces sklearn (whose per-call overhead dominates the many small splits).
        kmeans_max_iter: Lloyd iterations of sklearn's unconstrained fit.
        small_max_iter: Lloyd iterations of the light loop.
        small_n_init: k-means++ restarts of the light loop (the best fit is kept).
        balance_iters: rounds of (capacity-constrained assignment, centroid update).
        minibatch_size: batch size of ``MiniBatchKMeans``.
        init_sample: k-means++ seeds large fits from a random sample of this many points.
        fanout: how many parts each recursive step of :func:`balanced_groups` splits into
            (None: the tree's ``max_children``).
    """

    minibatch_threshold: int = 50_000
    small_threshold: int = 2_000
    kmeans_max_iter: int = 30
    small_max_iter: int = 10
    small_n_init: int = 3
    balance_iters: int = 4
    minibatch_size: int = 4096
    init_sample: int = 20_000
    fanout: int | None = None


def derive_seed(seed: int, *path: int) -> int:
    """A 31-bit seed for one split, derived from the build seed and the split's position."""
    return int(np.random.SeedSequence(entropy=seed, spawn_key=tuple(path)).generate_state(1)[0] >> 1)


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero.

    Rows that are already unit length are returned as they are, without a copy (1M × 384
    embeddings are 1.5 GB); ``einsum`` avoids ``linalg.norm``'s full-size temporary.
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    if np.all(np.abs(norms - 1.0) < 1e-5):
        return x
    return x / np.where(norms == 0.0, 1.0, norms)


def capacitated_assign(sim: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Assign each row of ``sim`` (n × k similarities) to a column under size bounds.

    Greedy deferred acceptance, vectorised: every unassigned point proposes to its most
    similar open cluster; a cluster accepts its most similar proposers up to its remaining
    capacity and closes when full. Each round closes a cluster or finishes, so at most k
    rounds. Then clusters under their ``lower`` bound take the points of clusters above
    theirs that lose the least similarity by moving.

    Requires ``sum(lower) <= n <= sum(upper)``.
    """
    n, k = sim.shape
    lower = np.asarray(lower, dtype=np.int64)
    upper = np.asarray(upper, dtype=np.int64)
    if lower.sum() > n or upper.sum() < n or np.any(lower > upper):
        raise InputError(
            f"infeasible cluster bounds for {n} points: lower sum {lower.sum()}, upper sum {upper.sum()}.",
            fix="this is a bug in the caller's capacities; please report it.",
        )
    labels = np.full(n, -1, dtype=np.int64)
    counts = np.zeros(k, dtype=np.int64)
    open_ = upper > 0
    pending = np.arange(n)
    while pending.size:
        masked = np.where(open_[None, :], sim[pending], -np.inf)
        choice = masked.argmax(axis=1)
        for j in np.unique(choice):
            props = pending[choice == j]
            room = int(upper[j] - counts[j])
            if props.size > room:
                order = np.argsort(-sim[props, j], kind="stable")
                props = props[order[:room]]
            labels[props] = j
            counts[j] += props.size
            if counts[j] >= upper[j]:
                open_[j] = False
        pending = pending[labels[pending] == -1]
    _repair_lower(sim, labels, counts, lower)
    return labels


def _repair_lower(sim: np.ndarray, labels: np.ndarray, counts: np.ndarray, lower: np.ndarray) -> None:
    """Move the cheapest points into clusters below their lower bound (in place)."""
    for j in np.flatnonzero(counts < lower):
        need = int(lower[j] - counts[j])
        surplus = counts - lower
        donors = np.flatnonzero((surplus[labels] > 0) & (labels != j))
        cost = sim[donors, labels[donors]] - sim[donors, j]
        donors = donors[np.argsort(cost, kind="stable")]
        # rank of each candidate within its donor cluster, so no donor drops below its bound
        by_donor = np.argsort(labels[donors], kind="stable")
        grouped = labels[donors][by_donor]
        rank = np.empty(donors.size, dtype=np.int64)
        rank[by_donor] = np.arange(donors.size) - np.searchsorted(grouped, grouped, side="left")
        take = donors[rank < surplus[labels[donors]]][:need]
        np.subtract.at(counts, labels[take], 1)
        labels[take] = j
        counts[j] += take.size


def _centroids(x: np.ndarray, labels: np.ndarray, k: int, previous: np.ndarray) -> np.ndarray:
    onehot = sp.csr_matrix((np.ones(labels.size, dtype=np.float32), (labels, np.arange(labels.size))), shape=(k, labels.size))
    sums = np.asarray(onehot @ x, dtype=np.float32)
    empty = np.asarray(onehot.sum(axis=1)).ravel() == 0
    sums[empty] = previous[empty]
    return normalize(sums)


def _initial_centers(x: np.ndarray, k: int, seed: int, cfg: ClusterConfig) -> np.ndarray:
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    if n > cfg.small_threshold:
        # k-means++ on a sample: sklearn's own init upcasts the full set to float64
        sample = x if n <= cfg.init_sample else x[np.sort(rng.choice(n, cfg.init_sample, replace=False))]
        init = _kmeans_plusplus(sample, k, rng)
        km: KMeans | MiniBatchKMeans
        if n > cfg.minibatch_threshold:
            km = MiniBatchKMeans(
                n_clusters=k, init=init, n_init=1, batch_size=cfg.minibatch_size, random_state=seed, max_iter=cfg.kmeans_max_iter
            )
        else:
            km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=cfg.kmeans_max_iter, random_state=seed)
        return normalize(km.fit(x).cluster_centers_)
    best, best_fit = None, -np.inf
    for _ in range(max(1, cfg.small_n_init)):  # a few restarts: local optima are common at small n
        centers = _kmeans_plusplus(x, k, rng)
        labels = np.full(n, -1)
        for _ in range(cfg.small_max_iter):  # spherical Lloyd: cheap at this size
            sim = x @ centers.T
            new = sim.argmax(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            centers = _centroids(x, labels, k, centers)
        fit = float((x @ centers.T).max(axis=1).sum())
        if fit > best_fit:
            best, best_fit = centers, fit
    assert best is not None
    return best


def _kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) in float32 on unit vectors.

    sklearn's version upcasts to float64 and tries ``2 + log k`` candidates per step; on
    the thousands of small splits near the leaves this lighter one is ~5x faster.
    """
    n = x.shape[0]
    chosen = [int(rng.integers(n))]
    d2 = np.maximum(2.0 - 2.0 * (x @ x[chosen[0]]), 0.0)
    for _ in range(1, k):
        p = d2.astype(np.float64)
        total = p.sum()
        nxt = int(rng.choice(n, p=p / total)) if total > 0 else int(rng.integers(n))
        chosen.append(nxt)
        d2 = np.minimum(d2, np.maximum(2.0 - 2.0 * (x @ x[nxt]), 0.0))
    return x[chosen].copy()


def balanced_kmeans(
    x: np.ndarray, k: int, lower: Sequence[int] | np.ndarray, upper: Sequence[int] | np.ndarray, *, seed: int, config: ClusterConfig
) -> np.ndarray:
    """Labels in ``[0, k)`` of spherical k-means on unit rows ``x``, where cluster ``j`` gets
    between ``lower[j]`` and ``upper[j]`` points (``sum(lower) <= n <= sum(upper)``)."""
    n = x.shape[0]
    lo, up = np.asarray(lower, dtype=np.int64), np.asarray(upper, dtype=np.int64)
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    if n <= k:  # each point its own cluster, in the first n clusters (bounds allow it)
        return capacitated_assign(np.eye(n, k, dtype=np.float32), lo, up)
    return _balance(x, _initial_centers(x, k, seed, config), lo, up, config.balance_iters)


def _balance(x: np.ndarray, centers: np.ndarray, lower: np.ndarray, upper: np.ndarray, iters: int) -> np.ndarray:
    """Rounds of (capacity-constrained assignment, centroid update) from ``centers``."""
    labels = np.full(x.shape[0], -1, dtype=np.int64)
    for _ in range(max(1, iters)):
        new = capacitated_assign(x @ centers.T, lower, upper)
        if np.array_equal(new, labels):
            break
        labels = new
        centers = _centroids(x, labels, centers.shape[0], centers)
    return labels


def n_groups(n: int, max_size: int, fill: float) -> int:
    """How many groups a bottom-up level of ``n`` nodes is split into.

    ``ceil(n / (max_size * fill))``: a pure function of ``n``, which is what lets the dry
    run count a bottom-up build's nodes (and LLM calls) exactly without summarising.
    """
    return max(1, math.ceil(n / (max_size * fill)))


def _allot(sizes: np.ndarray, g: int, max_size: int, min_size: int) -> np.ndarray | None:
    """Share ``g`` groups among parts of ``sizes`` so each part's groups can hold between
    ``min_size`` and ``max_size`` points, or None if the parts do not allow it."""
    need = -(-sizes // max_size)
    most = sizes // min_size
    if np.any(need > most) or need.sum() > g or most.sum() < g:
        return None
    target = sizes * g / sizes.sum()
    allot = np.clip(np.floor(target).astype(np.int64), need, most)
    while allot.sum() < g:  # give spare groups to the most under-served part that can take one
        gap = np.where(allot < most, target - allot, -np.inf)
        allot[int(gap.argmax())] += 1
    while allot.sum() > g:  # take back from the most over-served part that can spare one
        gap = np.where(allot > need, allot - target, -np.inf)
        allot[int(gap.argmax())] -= 1
    return allot


def _hamilton(sizes: np.ndarray, g: int) -> np.ndarray:
    """Largest-remainder apportionment of ``g`` seats by ``sizes``, every part ≥ 1."""
    k = sizes.size
    weights = np.maximum(sizes, 1).astype(np.float64)
    quota = (g - k) * weights / weights.sum()
    allot = 1 + np.floor(quota).astype(np.int64)
    rest = g - int(allot.sum())
    allot[np.argsort(-(quota - np.floor(quota)), kind="stable")[:rest]] += 1
    return allot


#: one pending sub-problem of :func:`balanced_groups`: rows, groups to make, position in the recursion
Piece = tuple[np.ndarray, int, tuple[int, ...]]
#: a finished group and its sort key (the recursion path of the step that made it, then its rank)
Keyed = tuple[tuple[tuple[int, ...], int], np.ndarray]


def _split_piece(x: np.ndarray, piece: Piece, max_size: int, min_size: int, fanout: int, seed: int,
                 config: ClusterConfig) -> tuple[list[Keyed], list[Piece]]:
    """One step of the recursion: finished groups, or the sub-pieces to recurse on.

    The split's seed is derived from its *path* (the part indices from the root), not from
    a running counter, so every piece can be solved on its own — in another process — and
    the result is the same (see :func:`frontier_pieces`).
    """
    idx, g, path = piece
    if g == 1:
        return [((path, 0), np.sort(idx))], []
    if g == idx.size:  # one point per group
        return [((path, i), idx[i : i + 1]) for i in range(idx.size)], []
    b = min(fanout, g)
    sub = x if idx.size == x.shape[0] else x[idx]
    centers = _initial_centers(sub, b, derive_seed(seed, *path), config)  # n > g >= b here
    labels = (sub @ centers.T).argmax(axis=1)
    sizes = np.bincount(labels, minlength=b)
    allot = _allot(sizes, g, max_size, min_size)
    if allot is None or allot.max() == g:  # infeasible, or no progress (duplicate points)
        allot = _hamilton(sizes, g)
        labels = _balance(sub, centers, allot * min_size, allot * max_size, config.balance_iters)
    return [], [(idx[labels == j], int(allot[j]), path + (j,)) for j in range(b) if allot[j]]


def _group_params(n: int, groups: int, max_size: int, min_size: int, config: ClusterConfig) -> tuple[int, int]:
    if not (1 <= groups <= n <= groups * max_size):
        raise InputError(f"cannot split {n} points into {groups} groups of at most {max_size}.", fix="check max_children.")
    return max(1, min(min_size, n // groups)), max(2, config.fanout or max_size)


def solve_pieces(x: np.ndarray, pieces: Sequence[Piece], max_size: int, min_size: int, fanout: int, seed: int,
                 config: ClusterConfig, bar: Any = None) -> list[Keyed]:
    """Recurse on ``pieces`` (rows index ``x``) to the end; the keyed groups, unsorted."""
    out: list[Keyed] = []
    stack = list(reversed(pieces))
    while stack:
        done, children = _split_piece(x, stack.pop(), max_size, min_size, fanout, seed, config)
        out.extend(done)
        if bar is not None and done:
            bar.update(len(done))
        stack.extend(reversed(children))  # reversed: the stack pops part 0 first
    return out


def frontier_pieces(x: np.ndarray, groups: int, max_size: int, *, min_size: int = 1, seed: int, config: ClusterConfig,
                    min_pieces: int) -> tuple[list[Keyed], list[Piece], int, int]:
    """The first steps of :func:`balanced_groups`, breadth-first, until at least
    ``min_pieces`` independent pieces are pending (or none can be split further).

    Returns ``(finished groups, pending pieces, min_size, fanout)``: solving every piece
    with :func:`solve_pieces` (anywhere, in any order) and sorting all keyed groups by key
    gives exactly ``balanced_groups(x, groups, max_size, ...)``. The distributed build
    (:mod:`branchwise.indexing.distributed`) clusters the pieces on Dask workers this way.
    """
    n = x.shape[0]
    min_size, fanout = _group_params(n, groups, max_size, min_size, config)
    done: list[Keyed] = []
    pending: list[Piece] = [(np.arange(n), groups, (0,))]
    while len(pending) < min_pieces:
        splittable = [i for i, p in enumerate(pending) if 1 < p[1] < p[0].size]
        if not splittable:
            break
        biggest = pending.pop(max(splittable, key=lambda i: pending[i][0].size))
        finished, children = _split_piece(x, biggest, max_size, min_size, fanout, seed, config)
        done.extend(finished)
        pending.extend(children)
    return done, sorted(pending, key=lambda p: p[2]), min_size, fanout


def ordered_groups(keyed: Iterable[Keyed]) -> list[np.ndarray]:
    """Keyed groups in the deterministic order of :func:`balanced_groups` (depth-first, part 0 first)."""
    return [rows for _, rows in sorted(keyed, key=lambda t: t[0])]


def balanced_groups(
    x: np.ndarray, groups: int, max_size: int, *, min_size: int = 1, seed: int, config: ClusterConfig, progress: bool = False
) -> list[np.ndarray]:
    """Partition the rows of ``x`` into exactly ``groups`` groups of ``min_size..max_size`` rows.

    Recursive balanced k-means: split into ``fanout`` parts, share the ``groups`` among
    the parts in proportion to their sizes, recurse. The first fit of each split is
    unconstrained; only when the parts cannot be covered by whole groups does the split
    fall back to capacity-constrained assignment with bounds ``share × min_size`` and
    ``share × max_size``. ``min_size`` is lowered to ``n // groups`` if needed to be
    feasible; it avoids single-child internal nodes for outliers. Each split is seeded
    from ``seed`` and its path in the recursion, so sub-problems are independent
    (:func:`frontier_pieces` hands them to other processes with the same result).

    Returns:
        groups as sorted arrays of row indices, in a deterministic order.
    """
    n = x.shape[0]
    min_size, fanout = _group_params(n, groups, max_size, min_size, config)
    bar = tqdm(total=groups, desc="clustering", unit="group", disable=not progress, leave=False)
    keyed = solve_pieces(x, [(np.arange(n), groups, (0,))], max_size, min_size, fanout, seed, config, bar)
    bar.close()
    return ordered_groups(keyed)


@dataclass(slots=True)
class Split:
    """One internal node of a divisive hierarchy: input rows attached directly below it
    (``leaves``) and the indices of its sub-clusters in the list of splits (``children``)."""

    leaves: list[int]
    children: list[int]


def _height(n: int, m: int) -> int:
    """Smallest h with m**h >= n (exact integer arithmetic, unlike log)."""
    h = 0
    while m**h < n:
        h += 1
    return h


def divisive_hierarchy(
    x: np.ndarray, max_children: int, fill: float, *, seed: int, config: ClusterConfig, progress: bool = False
) -> list[Split]:
    """Recursively split all rows of ``x`` from the root down (top-down strategy).

    A node over ``n > M`` points gets height ``h = ceil(log_M n)`` and is split into
    ``c = min(M, ceil(n / (fill·M^(h-1))))`` clusters of at most ``M^(h-1)`` points each,
    so the tree is never deeper than ``ceil(log_M N)``. A cluster with one point is
    attached as a leaf directly (no single-child internal nodes). Nodes over ``≤ M``
    points hold them as leaves.

    Returns:
        the splits in pre-order; ``splits[0]`` is the root.
    """
    n = x.shape[0]
    if n == 0:
        raise InputError("cannot build a tree over zero chunks.", fix="add documents first.")
    splits: list[Split] = []
    stack: list[tuple[np.ndarray, int | None]] = [(np.arange(n), None)]
    counter = 0
    bar = tqdm(total=n, desc="clustering", unit="leaf", disable=not progress, leave=False)
    while stack:
        idx, parent = stack.pop()
        me = len(splits)
        splits.append(Split(leaves=[], children=[]))
        if parent is not None:
            splits[parent].children.append(me)
        if idx.size <= max_children:
            splits[me].leaves = idx.tolist()
            bar.update(idx.size)
            continue
        cap = max_children ** (_height(idx.size, max_children) - 1)
        c = min(max_children, math.ceil(idx.size / (fill * cap)))
        sub = x if idx.size == n else x[idx]
        ones, caps = np.ones(c, dtype=np.int64), np.full(c, cap)
        labels = balanced_kmeans(sub, c, ones, caps, seed=derive_seed(seed, counter), config=config)
        counter += 1
        parts = [idx[labels == j] for j in range(c)]
        splits[me].leaves = [int(p[0]) for p in parts if p.size == 1]
        bar.update(len(splits[me].leaves))
        for part in reversed([p for p in parts if p.size > 1]):
            stack.append((part, me))  # popped first-part-first: children stay in order
    bar.close()
    return splits


def iter_levels(splits: list[Split]) -> Iterator[tuple[int, int]]:
    """(split index, level) with level = 1 + max child level, leaves at 0, deepest first."""
    level = [0] * len(splits)
    for i in reversed(range(len(splits))):  # pre-order reversed: children before parents
        level[i] = 1 + max([level[c] for c in splits[i].children] or [0])
    for i in sorted(range(len(splits)), key=lambda i: (level[i], i)):
        yield i, level[i]
