"""Calibration fit: hand-computed optima, closed form vs Adam, weights, helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.navigation.calibration import (
    CalibrationConfig,
    ObservationLog,
    Observations,
    fit,
    fit_adam,
    fit_lstsq,
    normalise,
    objective,
    observation_weights,
    prior_mix,
    sample_calibration_items,
    split_threshold,
)


def obs_of(slates: list[list[tuple[str, float]]]) -> tuple[ObservationLog, Observations]:
    log = ObservationLog()
    for slate in slates:
        g = log.new_group()
        for node, s in slate:
            log.add(node, g, s)
    return log, log.observations()


def test_weights_are_the_reference_sigmoid_with_floor():
    w = observation_weights(np.array([0.0, 0.5, 1.0, -10.0]), floor=0.1)
    assert w[0] == pytest.approx(1 / (1 + math.exp(0.5)))
    assert w[1] == pytest.approx(0.5)
    assert w[2] == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert w[3] == pytest.approx(0.1)  # floor only bites outside [0, 1]


def test_single_slate_is_taken_at_face_value():
    # every score fits exactly for any offset b (θ = s - b/τ); the ridge picks b = 0
    _, obs = obs_of([[("x", 0.8), ("y", 0.2)]])
    f = fit_lstsq(obs)
    assert f.theta == pytest.approx([0.8, 0.2])
    assert f.offsets == pytest.approx([0.0], abs=1e-12)
    assert normalise(f.theta) == pytest.approx([1.0, 0.25])


def test_shared_item_ties_two_slates_hand_computed():
    # slate 1: A .8, B .4 ; slate 2: B .9, C .6 (τ = 5, λ = 1). A and C are seen once, so
    # they fit exactly: θ_A = .8 - b1/τ, θ_C = .6 - b2/τ. B's two residuals leave, after
    # eliminating τθ_B, h·(2.5 - Δ)² with h = w1·w2/(w1+w2) and Δ = b2 - b1; the ridge
    # λ(b1² + b2²) is smallest at b = ±Δ/2, so Δ = 5h / (2h + λ).
    _, obs = obs_of([[("A", 0.8), ("B", 0.4)], [("B", 0.9), ("C", 0.6)]])
    w1, w2 = 1 / (1 + math.exp(0.1)), 1 / (1 + math.exp(-0.4))
    h = w1 * w2 / (w1 + w2)
    delta = 5 * h / (2 * h + 1.0)
    b1, b2 = -delta / 2, delta / 2
    theta_b = (w1 * (2.0 - b1) + w2 * (4.5 - b2)) / (w1 + w2) / 5
    f = fit_lstsq(obs)
    assert f.offsets == pytest.approx([b1, b2])
    assert f.theta == pytest.approx([0.8 - b1 / 5, theta_b, 0.6 - b2 / 5])
    assert normalise(f.theta)[0] == 1.0
    # with a vanishing ridge the fit becomes exact: b2 - b1 = τ(.9 - .4) = 2.5
    loose = fit_lstsq(obs, CalibrationConfig(offset_l2=1e-9))
    assert loose.offsets == pytest.approx([-1.25, 1.25], abs=1e-6)
    assert loose.theta == pytest.approx([1.05, 0.65, 0.35], abs=1e-6)


def test_contradicting_slates_average_with_score_weights():
    # A: 1 then 0, B: 0 then 1. By symmetry θ_A = θ_B and b1 = b2 = 0; τθ is the
    # weighted mean of τ·1 (weight σ(.5)) and τ·0 (weight σ(-.5)), i.e. θ = σ(0.5).
    _, obs = obs_of([[("A", 1.0), ("B", 0.0)], [("A", 0.0), ("B", 1.0)]])
    f = fit_lstsq(obs)
    assert f.theta == pytest.approx([1 / (1 + math.exp(-0.5))] * 2)
    assert f.offsets == pytest.approx([0.0, 0.0], abs=1e-12)


def test_trust_weights_pull_the_latent_towards_the_trusted_source():
    log = ObservationLog()
    g, p = log.new_group(), log.new_group("dense")
    log.add("A", g, 0.9)
    log.add("B", g, 0.1)
    log.add("A", p, 0.1, trust=4.0)
    log.add("B", p, 0.9, trust=4.0)
    s = log.calibrated()
    assert s["B"] > s["A"]  # four-fold trust in the prior outvotes the single judgement
    log2 = ObservationLog()
    g, p = log2.new_group(), log2.new_group("dense")
    for node, v, pv in (("A", 0.9, 0.1), ("B", 0.1, 0.9)):
        log2.add(node, g, v)
        log2.add(node, p, pv, trust=0.25)
    s2 = log2.calibrated()
    assert s2["A"] > s2["B"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adam_reaches_the_closed_form_optimum(seed: int):
    rng = np.random.default_rng(seed)
    truth = rng.random(40)
    log = ObservationLog()
    for _ in range(10):
        g = log.new_group()
        shift = rng.normal(0, 0.15)
        for v in rng.choice(40, 8, replace=False):
            log.add(f"n{v}", g, float(np.clip(truth[v] + shift + rng.normal(0, 0.05), 0, 1)))
    prior = log.new_group("dense:leaf")
    for node in list(log.item_of):
        log.add(node, prior, 0.6 * truth[int(node[1:])], trust=0.5)
    obs = log.observations()
    cfg = CalibrationConfig()
    exact, adam = fit_lstsq(obs, cfg), fit_adam(obs, cfg)
    assert adam.loss == pytest.approx(exact.loss, rel=1e-4)
    assert np.abs(adam.theta - exact.theta).max() < 1e-2
    assert np.abs(normalise(adam.theta) - normalise(exact.theta)).max() < 1e-2
    # the closed form is a true minimum: no random perturbation lowers the objective
    for _ in range(5):
        d = rng.normal(0, 1e-3, exact.theta.size)
        assert objective(obs, exact.theta + d, exact.offsets, cfg) >= exact.loss
    # and matches a generic least-squares solve of the same problem
    w = observation_weights(obs.value) * obs.trust
    design = np.zeros((obs.item.size + obs.n_groups, obs.n_items + obs.n_groups))
    rows = np.arange(obs.item.size)
    design[rows, obs.item] = cfg.tau * np.sqrt(w)
    design[rows, obs.n_items + obs.group] = np.sqrt(w)
    design[obs.item.size + np.arange(obs.n_groups), obs.n_items + np.arange(obs.n_groups)] = math.sqrt(cfg.offset_l2)
    target = np.concatenate([cfg.tau * np.sqrt(w) * obs.value, np.zeros(obs.n_groups)])
    sol = np.linalg.lstsq(design, target, rcond=None)[0]
    assert sol[: obs.n_items] == pytest.approx(exact.theta, abs=1e-9)


def test_fit_dispatches_on_solver_and_config_is_validated():
    _, obs = obs_of([[("A", 0.8), ("B", 0.4)], [("B", 0.9), ("C", 0.6)]])
    a = fit(obs, CalibrationConfig(solver="adam"))
    assert a.theta == pytest.approx(fit(obs).theta, abs=2e-3)
    with pytest.raises(InputError):
        CalibrationConfig(tau=0)
    with pytest.raises(InputError):
        CalibrationConfig(solver="sgd")  # type: ignore[arg-type]


def test_errors_on_unusable_observations():
    empty = Observations(np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0), 0, 0)
    with pytest.raises(InputError, match="at least one"):
        fit_lstsq(empty)
    orphan = Observations(np.array([0]), np.array([0]), np.array([0.5]), np.array([1.0]), 2, 1)
    with pytest.raises(InputError, match="no observation"):
        fit_lstsq(orphan)
    log = ObservationLog()
    with pytest.raises(InputError, match="group"):
        log.add("A", 0, 0.5)
    assert log.calibrated() == {}


def test_named_groups_are_reused_and_values_clipped():
    log = ObservationLog()
    assert log.new_group("dense") == log.new_group("dense") == 0
    assert log.new_group() == 1
    log.add("A", 0, 1.7)
    assert log.values == [1.0] and len(log) == 1


def test_normalise_and_split_threshold():
    assert normalise(np.array([2.0, 1.0, -1.0])) == pytest.approx([1.0, 0.5, 0.0])
    assert normalise(np.array([-1.0, 0.0])) == pytest.approx([0.0, 0.0])
    th = split_threshold(np.array([0.05, 0.1, 0.12, 0.8, 0.9]))
    assert 0.12 < th < 0.8
    assert split_threshold(np.array([0.3, 0.3])) < 0.3  # one mode: everything is "high"


def test_calibration_items_favour_the_high_mode_and_are_seeded():
    scores = {f"hi{i}": 0.9 + 0.01 * i for i in range(5)} | {f"lo{i}": 0.05 for i in range(20)}
    picked = sample_calibration_items(scores, scores, 4, np.random.default_rng(7))
    assert len(picked) == 4 and all(p.startswith("hi") for p in picked)  # lows have odds 1e-4
    assert picked == sorted(picked, key=lambda n: -scores[n])
    assert picked == sample_calibration_items(scores, scores, 4, np.random.default_rng(7))
    assert sample_calibration_items(scores, ["lo1", "hi0"], 4, np.random.default_rng(0)) == ["hi0", "lo1"]


def test_prior_mix_is_a_trust_weighted_mean():
    assert prior_mix(0.2, {"dense": 0.8, "bm25": 0.5}, {"dense": 1.0, "bm25": 2.0}) == pytest.approx((0.2 + 0.8 + 1.0) / 4)
    assert prior_mix(0.3, {"dense": 0.9}, {}) == pytest.approx(0.3)
