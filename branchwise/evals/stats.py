"""Uncertainty and significance for per-question scores.

* :func:`bootstrap_ci` — percentile bootstrap confidence interval of a mean (Efron &
  Tibshirani 1993). With 50-200 questions per run, a point estimate alone overstates what
  a difference between systems means.
* :func:`paired_bootstrap` — the paired bootstrap test used in NLP (Koehn 2004;
  Berg-Kirkpatrick et al. 2012): resample questions, recompute the mean difference, and
  count how often the resampled difference is as far from the observed one as the observed
  one is from zero (the shifted-null two-sided p-value).
* :func:`wilcoxon_test` — the Wilcoxon signed-rank test on the paired differences
  (scipy), a rank-based check that does not assume a distribution.
* :func:`correlation` — Spearman's rho and Kendall's tau (scipy) for the UDCG study.

Randomness always comes from an explicit seeded :class:`numpy.random.Generator`: no global
seed is set or read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

from branchwise.errors import InputError


@dataclass(frozen=True, slots=True)
class CI:
    """A mean with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class PairedTest:
    """The comparison of system A against system B on the same questions.

    Attributes:
        diff: mean(A - B).
        low, high: bootstrap CI of the mean difference.
        p_bootstrap: two-sided paired-bootstrap p-value.
        p_wilcoxon: two-sided Wilcoxon signed-rank p-value (1.0 when all differences are 0).
        n: number of paired questions.
    """

    diff: float
    low: float
    high: float
    p_bootstrap: float
    p_wilcoxon: float
    n: int


@dataclass(frozen=True, slots=True)
class Correlation:
    """Rank correlations between two score lists (NaN when one list is constant)."""

    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float
    n: int


def _array(values: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise InputError(f"{what} needs a non-empty list of numbers.", fix="pass per-question scores.")
    return a


def _boot_means(a: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, a.size, size=(n_resamples, a.size))
    return a[idx].mean(axis=1)


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> CI:
    """Percentile bootstrap CI of the mean of ``values``."""
    a = _array(values, "bootstrap_ci")
    rng = np.random.default_rng(seed)
    means = _boot_means(a, n_resamples, rng)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return CI(float(a.mean()), float(lo), float(hi), int(a.size))


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> PairedTest:
    """Paired bootstrap + Wilcoxon comparison of per-question scores ``a`` vs ``b``."""
    x, y = _array(a, "paired_bootstrap"), _array(b, "paired_bootstrap")
    if x.size != y.size:
        raise InputError(
            f"paired test got {x.size} and {y.size} scores.", fix="compare the systems on the same questions."
        )
    d = x - y
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    means = _boot_means(d, n_resamples, rng)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    # Shifted null: under H0 the resampled means are centred on 0 instead of `observed`.
    extreme = int(np.sum(np.abs(means - observed) >= abs(observed) - 1e-12))
    p_boot = (extreme + 1) / (n_resamples + 1)
    return PairedTest(observed, float(lo), float(hi), float(min(1.0, p_boot)), wilcoxon_test(d), int(d.size))


def wilcoxon_test(diffs: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zero differences dropped)."""
    d = np.asarray(diffs, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    return float(sps.wilcoxon(d, zero_method="wilcox").pvalue)


def correlation(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Spearman and Kendall (tau-b) correlations of two equally long score lists."""
    a, b = _array(x, "correlation"), _array(y, "correlation")
    if a.size != b.size:
        raise InputError(f"correlation got {a.size} and {b.size} values.", fix="pass paired scores.")
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        nan = math.nan
        return Correlation(nan, nan, nan, nan, int(a.size))
    s = sps.spearmanr(a, b)
    k = sps.kendalltau(a, b)
    return Correlation(float(s.statistic), float(s.pvalue), float(k.statistic), float(k.pvalue), int(a.size))
