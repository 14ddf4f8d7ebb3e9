"""Balanced clustering: bounds, exact group counts, determinism, depth guarantees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from branchwise.indexing.cluster import (
    ClusterConfig,
    _allot,
    balanced_groups,
    balanced_kmeans,
    capacitated_assign,
    divisive_hierarchy,
    iter_levels,
    n_groups,
    normalize,
)

CFG = ClusterConfig()


def blobs(sizes: list[int], dim: int = 32, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = normalize(rng.standard_normal((len(sizes), dim)))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return normalize(centers[labels] + noise * rng.standard_normal((labels.size, dim))), labels


def test_capacitated_assign_overflow_goes_to_next_best():
    sim = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.6], [0.1, 0.9]])
    # cluster 0 holds 2: it keeps its two most similar proposers (rows 0, 1); row 2 moves on
    assert capacitated_assign(sim, np.array([1, 1]), np.array([2, 3])).tolist() == [0, 0, 1, 1]
    # without the cap everything goes to its argmax
    assert capacitated_assign(sim, np.array([0, 0]), np.array([4, 4])).tolist() == [0, 0, 0, 1]


def test_capacitated_assign_repairs_lower_bounds_cheapest_first():
    sim = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    # all prefer 0; cluster 1 must get one: row 2 loses least (0.7 - 0.3 = 0.4)
    assert capacitated_assign(sim, np.array([1, 1]), np.array([3, 3])).tolist() == [0, 0, 1]
    # lower bound 2 on cluster 1: rows 2 then 1
    assert capacitated_assign(sim, np.array([1, 2]), np.array([3, 3])).tolist() == [0, 1, 1]


def test_capacitated_assign_rejects_infeasible_bounds():
    with pytest.raises(ValueError, match="infeasible"):
        capacitated_assign(np.ones((5, 2)), np.array([0, 0]), np.array([2, 2]))


def test_balanced_kmeans_recovers_separated_blobs():
    x, truth = blobs([10, 10, 10])
    labels = balanced_kmeans(x, 3, [1, 1, 1], [10, 10, 10], seed=0, config=CFG)
    for j in range(3):  # each cluster is exactly one blob
        assert len(set(truth[labels == j])) == 1 and (labels == j).sum() == 10


def test_balanced_kmeans_caps_an_oversize_blob():
    x, truth = blobs([16, 8, 6])
    labels = balanced_kmeans(x, 3, [2, 2, 2], [12, 12, 12], seed=0, config=CFG)
    sizes = np.bincount(labels, minlength=3)
    assert sizes.max() <= 12 and sizes.min() >= 2 and sizes.sum() == 30
    # the small blobs stay whole; only the big one overflows
    for blob in (1, 2):
        assert len(set(labels[truth == blob])) == 1


def test_n_groups_and_allotment_by_hand():
    assert n_groups(100, 12, 0.8) == 11  # ceil(100 / 9.6)
    assert n_groups(12, 12, 1.0) == 1
    assert n_groups(13, 12, 1.0) == 2
    assert _allot(np.array([30, 10, 5]), 5, 12, 1).tolist() == [3, 1, 1]
    # 7 groups for sizes 30/10/5: targets 4.67/1.56/0.78, floored and raised to the need
    # (3/1/1) -> 4/1/1; the spare group goes to the largest shortfall, part 0 (0.67 > 0.56)
    assert _allot(np.array([30, 10, 5]), 7, 12, 1).tolist() == [5, 1, 1]
    assert _allot(np.array([40, 2]), 4, 12, 3) is None  # the 2-point part cannot hold a 3-member group


def test_balanced_groups_exact_count_bounds_and_partition():
    rng = np.random.default_rng(1)
    x = normalize(rng.standard_normal((500, 24)))
    g = n_groups(500, 12, 0.8)
    groups = balanced_groups(x, g, 12, min_size=3, seed=7, config=CFG)
    sizes = [len(grp) for grp in groups]
    assert len(groups) == g == 53
    assert min(sizes) >= 3 and max(sizes) <= 12
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(500))
    again = balanced_groups(x, g, 12, min_size=3, seed=7, config=CFG)
    assert all(np.array_equal(a, b) for a, b in zip(groups, again))


def test_balanced_groups_recovers_blobs_when_they_fit():
    x, truth = blobs([12] * 20, dim=48, noise=0.02, seed=3)
    groups = balanced_groups(x, 20, 12, min_size=3, seed=0, config=CFG)
    assert all(len(set(truth[grp])) == 1 for grp in groups)


def test_duplicate_points_terminate_with_valid_groups():
    x = normalize(np.ones((100, 8)))
    groups = balanced_groups(x, 11, 12, min_size=3, seed=0, config=CFG)
    assert len(groups) == 11 and max(map(len, groups)) <= 12
    splits = divisive_hierarchy(x, 12, 0.8, seed=0, config=CFG)
    assert sorted(r for s in splits for r in s.leaves) == list(range(100))


@pytest.mark.parametrize("n, m", [(2000, 12), (300, 5), (13, 12)])
def test_divisive_hierarchy_depth_and_fanout(n, m):
    x = normalize(np.random.default_rng(n).standard_normal((n, 16)))
    splits = divisive_hierarchy(x, m, 0.8, seed=0, config=CFG)
    assert sorted(r for s in splits for r in s.leaves) == list(range(n))
    fan = [len(s.leaves) + len(s.children) for s in splits]
    assert max(fan) <= m and min(fan) >= 2
    depth = dict(iter_levels(splits))[0]
    assert depth <= math.ceil(math.log(n) / math.log(m) - 1e-9)
    levels = [lvl for _, lvl in iter_levels(splits)]
    assert levels == sorted(levels)  # deepest first
