"""Global calibration of slate scores (LATTICE, arXiv 2510.13217, §3.3).

An LLM judges each slate in isolation, so its scores are context-dependent: a mediocre
passage gets 80 in a weak slate and 30 in a strong one. LATTICE explains every observed
score ``s`` of item ``v`` in slate ``g`` by a latent relevance ``θ_v`` shared across slates
and a per-slate offset ``b_g``, and fits

    minimise  Σ_i  w_i · (a·τ·θ_{v_i} + b_{g_i} − τ·s_i)²,     w_i = max(σ(s_i − 0.5), 0.1)

with τ = 5 (scores ``s`` in [0, 1]; σ the logistic function, so high scores weigh a little
more). Calibration items — already-judged nodes re-judged in later slates — are what tie
the offsets of different slates together. The calibrated local score is ``ŝ = a·θ / max(a·θ)``.

Identifiability (why our objective differs slightly from the paper's code):

* ``a`` and ``θ`` enter only as the product ``a·θ``: we fix ``a = 1`` (the gauge) and
  estimate ``φ = a·θ`` directly, which makes the problem a linear least-squares one.
* ``τ·θ_v + b_g`` is unchanged by ``θ → θ − c/τ, b → b + c`` on each connected set of
  slates, and ``ŝ = θ / max θ`` is *not* invariant to that shift. The reference code leaves
  it to the optimiser's start point (AdamW from θ≈0, b=0, 200 steps). We make it explicit
  with a small ridge penalty ``λ·Σ_g b_g²`` on the offsets: a priori a slate is taken at
  face value (offset 0) unless the shared items say otherwise. With it the optimum is
  unique, so the closed form and the iterative fit provably agree.

The objective is therefore ``L(θ, b) = [Σ_i w_i r_i² + λ Σ_g b_g²] / Σ_i w_i`` with
``r_i = τθ_{v_i} + b_{g_i} − τ s_i``. :func:`fit_lstsq` solves its normal equations exactly
(a Schur complement onto the few slate offsets, since the item block is diagonal);
:func:`fit_adam` runs a few hundred numpy Adam steps on the same objective, as LATTICE does,
and is kept as the reference the closed form is tested against.

Observations carry a ``trust`` multiplier on their weight: the navigator adds retrieval
priors (embedding and BM25 similarity) as extra observations of the same latent ``θ`` with a
configured trust (see :class:`~branchwise.navigation.navigator.NavigatorConfig.prior_weight`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from branchwise.errors import InputError


@dataclass(frozen=True, slots=True)
class CalibrationConfig:
    """Settings of the calibration fit.

    Attributes:
        tau: score temperature τ (LATTICE uses 5).
        weight_floor: lower bound of the observation weight ``max(σ(s − 0.5), floor)``.
            With ``s`` in [0, 1] the sigmoid stays in [0.38, 0.62], so the floor (0.1, as
            in the reference code) only matters for out-of-range inputs.
        offset_l2: ridge λ on the slate offsets; fixes the additive gauge (module doc). At
            λ = 1 an offset costs as much as two average observations (w ≈ 0.5) missing by
            the same amount: slates shift only when shared items say so.
        solver: ``"lstsq"`` (exact, default) or ``"adam"`` (iterative reference).
        adam_steps: Adam iterations for ``solver="adam"`` (400 reach the exact optimum to
            ~1e-4 at the defaults; the gauge direction is the slow one).
        adam_lr: Adam peak learning rate (cosine-decayed to 1 % over the run).
    """

    tau: float = 5.0
    weight_floor: float = 0.1
    offset_l2: float = 1.0
    solver: Literal["lstsq", "adam"] = "lstsq"
    adam_steps: int = 400
    adam_lr: float = 0.1

    def __post_init__(self) -> None:
        if self.tau <= 0 or self.offset_l2 <= 0:
            raise InputError(
                f"calibration needs tau > 0 and offset_l2 > 0, got tau={self.tau}, offset_l2={self.offset_l2}.",
                fix="use positive values (defaults: tau=5.0, offset_l2=1.0).",
            )
        if self.solver not in ("lstsq", "adam"):
            raise InputError(f"unknown calibration solver {self.solver!r}.", fix="use 'lstsq' or 'adam'.")


@dataclass(frozen=True, slots=True)
class Observations:
    """Observed scores as parallel arrays (one entry per observation).

    Attributes:
        item: latent index ``v`` of each observation (0 .. n_items-1).
        group: slate (or prior source) index ``g`` of each observation (0 .. n_groups-1).
        value: the observed score in [0, 1].
        trust: weight multiplier of each observation (1 for scorer output).
        n_items: number of latents.
        n_groups: number of offsets.
    """

    item: np.ndarray
    group: np.ndarray
    value: np.ndarray
    trust: np.ndarray
    n_items: int
    n_groups: int


@dataclass(frozen=True, slots=True)
class CalibrationFit:
    """The fitted latents ``θ`` (one per item, a = 1), offsets ``b`` and the objective value."""

    theta: np.ndarray
    offsets: np.ndarray
    loss: float


def observation_weights(values: np.ndarray, floor: float = 0.1) -> np.ndarray:
    """``max(σ(s − 0.5), floor)``: the reference code's weight (slightly favours high scores)."""
    return np.maximum(1.0 / (1.0 + np.exp(-(np.asarray(values, dtype=np.float64) - 0.5))), floor)


def objective(obs: Observations, theta: np.ndarray, offsets: np.ndarray, config: CalibrationConfig) -> float:
    """The normalised objective ``L(θ, b)`` of the module docstring."""
    w = observation_weights(obs.value, config.weight_floor) * obs.trust
    r = config.tau * theta[obs.item] + offsets[obs.group] - config.tau * obs.value
    return float((np.sum(w * r * r) + config.offset_l2 * np.sum(offsets * offsets)) / np.sum(w))


def _check(obs: Observations) -> np.ndarray:
    if obs.item.size == 0:
        raise InputError("calibration needs at least one observation.", fix="score a slate before fitting.")
    counts = np.bincount(obs.item, minlength=obs.n_items)
    if np.any(counts == 0):
        raise InputError(
            f"{int(np.sum(counts == 0))} calibration items have no observation.",
            fix="index only the items that were scored (ObservationLog does this).",
        )
    return counts


def fit_lstsq(obs: Observations, config: CalibrationConfig = CalibrationConfig()) -> CalibrationFit:
    """Exact minimiser of the objective via its normal equations.

    With ``A = diag(τ² W_v)`` (item block), ``C[v, g] = τ Σ w`` (coupling) and
    ``D = diag(W_g + λ)`` (offset block), eliminate the diagonal item block:
    ``(D − Cᵀ A⁻¹ C) b = r_b − Cᵀ A⁻¹ r_θ`` — a system the size of the number of slates —
    then ``θ = A⁻¹ (r_θ − C b)``. The Schur matrix is positive definite for λ > 0.
    """
    _check(obs)
    tau = config.tau
    w = observation_weights(obs.value, config.weight_floor) * obs.trust
    a = tau * tau * np.bincount(obs.item, weights=w, minlength=obs.n_items)
    r_theta = tau * tau * np.bincount(obs.item, weights=w * obs.value, minlength=obs.n_items)
    d = np.bincount(obs.group, weights=w, minlength=obs.n_groups) + config.offset_l2
    r_b = tau * np.bincount(obs.group, weights=w * obs.value, minlength=obs.n_groups)
    coupling = np.zeros((obs.n_items, obs.n_groups))
    np.add.at(coupling, (obs.item, obs.group), tau * w)
    scaled = coupling / a[:, None]
    schur = np.diag(d) - coupling.T @ scaled
    offsets = np.linalg.solve(schur, r_b - scaled.T @ r_theta)
    theta = (r_theta - coupling @ offsets) / a
    return CalibrationFit(theta=theta, offsets=offsets, loss=objective(obs, theta, offsets, config))


def fit_adam(
    obs: Observations, config: CalibrationConfig = CalibrationConfig(), init: CalibrationFit | None = None
) -> CalibrationFit:
    """Minimise the same objective with Adam (β = 0.9, 0.999; cosine learning-rate decay).

    This is how LATTICE fits (with torch AdamW); here it is plain numpy with analytic
    gradients. It is slower and only approximately converged, and exists as the reference
    that :func:`fit_lstsq` is tested against.
    """
    _check(obs)
    tau, lam = config.tau, config.offset_l2
    w = observation_weights(obs.value, config.weight_floor) * obs.trust
    total = float(np.sum(w))
    params = np.zeros(obs.n_items + obs.n_groups)
    if init is not None:
        params[: obs.n_items] = init.theta
        params[obs.n_items :] = init.offsets
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    b1, b2, eps = 0.9, 0.999, 1e-12
    steps = max(1, config.adam_steps)
    for t in range(1, steps + 1):
        theta, offsets = params[: obs.n_items], params[obs.n_items :]
        r = tau * theta[obs.item] + offsets[obs.group] - tau * obs.value
        grad = np.empty_like(params)
        grad[: obs.n_items] = 2 * tau * np.bincount(obs.item, weights=w * r, minlength=obs.n_items) / total
        grad[obs.n_items :] = 2 * (np.bincount(obs.group, weights=w * r, minlength=obs.n_groups) + lam * offsets) / total
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        lr = config.adam_lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * (t - 1) / steps)))
        params = params - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    theta, offsets = params[: obs.n_items].copy(), params[obs.n_items :].copy()
    return CalibrationFit(theta=theta, offsets=offsets, loss=objective(obs, theta, offsets, config))


def fit(obs: Observations, config: CalibrationConfig = CalibrationConfig()) -> CalibrationFit:
    """Fit with the configured solver."""
    return fit_adam(obs, config) if config.solver == "adam" else fit_lstsq(obs, config)


def normalise(theta: np.ndarray) -> np.ndarray:
    """``ŝ = θ / max θ`` clipped to [0, 1] (all zeros when no latent is positive).

    Negative latents mean "below the zero point of the score scale" and count as 0.
    """
    top = float(np.max(theta)) if theta.size else 0.0
    if top <= 1e-12:
        return np.zeros_like(theta)
    return np.clip(theta / top, 0.0, 1.0)


@dataclass(slots=True)
class ObservationLog:
    """Accumulates observations keyed by node id, and refits on demand.

    The navigator opens one group per scored slate (its offset absorbs that slate's
    context) and one group per prior source and node kind (priors such as cosine
    similarity are on one global scale per query, so one offset each suffices).
    """

    item_of: dict[str, int] = field(default_factory=dict)
    items: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    trusts: list[float] = field(default_factory=list)
    n_groups: int = 0
    named_groups: dict[str, int] = field(default_factory=dict)

    def new_group(self, name: str | None = None) -> int:
        """A fresh group id; a ``name`` returns the same group every time it is asked for."""
        if name is not None and name in self.named_groups:
            return self.named_groups[name]
        g = self.n_groups
        self.n_groups += 1
        if name is not None:
            self.named_groups[name] = g
        return g

    def add(self, node_id: str, group: int, value: float, trust: float = 1.0) -> None:
        if not 0 <= group < self.n_groups:
            raise InputError(f"unknown calibration group {group}.", fix="get groups from new_group().")
        idx = self.item_of.setdefault(node_id, len(self.item_of))
        self.items.append(idx)
        self.groups.append(group)
        self.values.append(float(min(1.0, max(0.0, value))))
        self.trusts.append(float(trust))

    def __len__(self) -> int:
        return len(self.values)

    def observations(self) -> Observations:
        return Observations(
            item=np.asarray(self.items, dtype=np.int64),
            group=np.asarray(self.groups, dtype=np.int64),
            value=np.asarray(self.values, dtype=np.float64),
            trust=np.asarray(self.trusts, dtype=np.float64),
            n_items=len(self.item_of),
            n_groups=self.n_groups,
        )

    def calibrated(self, config: CalibrationConfig = CalibrationConfig()) -> dict[str, float]:
        """Node id → calibrated local score ŝ in [0, 1] from a fit of everything so far."""
        if not self.values:
            return {}
        s_hat = normalise(fit(self.observations(), config).theta)
        return {node: float(s_hat[i]) for node, i in self.item_of.items()}


def split_threshold(values: np.ndarray) -> float:
    """The cut between the low and high mode of 1-D scores (Otsu's between-class criterion).

    LATTICE fits a two-component GMM and takes the density minimum between the means; the
    Otsu split is its deterministic, dependency-free stand-in.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size < 2 or v[-1] - v[0] < 1e-12:
        return float(v[0]) - 1.0 if v.size else 0.0
    csum = np.cumsum(v)
    n = v.size
    k = np.arange(1, n)
    m0 = csum[:-1] / k
    m1 = (csum[-1] - csum[:-1]) / (n - k)
    best = int(np.argmax(k * (n - k) * (m0 - m1) ** 2))
    return float((v[best] + v[best + 1]) / 2)


def sample_calibration_items(
    scores: Mapping[str, float], candidates: Iterable[str], k: int, rng: np.random.Generator
) -> list[str]:
    """Up to ``k`` calibration items from ``candidates`` (LATTICE's leaf sampling).

    All of them when there are at most ``k``; otherwise sampled without replacement with
    odds ``16^ŝ`` above the high/low :func:`split_threshold` of their scores ``ŝ`` and
    ``1e-4`` below it: mostly strong items (whose scale matters most for the top of the
    ranking), with some spread. Returned in descending score order (ties by id).
    """
    preds = sorted(candidates, key=lambda n: (-scores.get(n, 0.0), n))
    if len(preds) <= k:
        return preds
    s = np.array([scores.get(n, 0.0) for n in preds])
    p = np.where(s > split_threshold(s), 16.0**s, 1e-4)
    picked = rng.choice(len(preds), size=k, replace=False, p=p / p.sum())
    return [preds[i] for i in sorted(picked)]


def prior_mix(raw: float, priors: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """``(raw + Σ w_src·prior_src) / (1 + Σ w_src)``: the fusion used when calibration is off."""
    num, den = raw, 1.0
    for src, value in priors.items():
        w = weights.get(src, 0.0)
        num += w * value
        den += w
    return num / den
