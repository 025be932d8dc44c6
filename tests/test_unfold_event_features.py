"""Particle classifiers see their event's observables (``with_event_features``).

With 10³–10⁴ jets the particle-level classifiers alone left the prior almost unchanged;
the event's observables on every real particle fix that. The toy here makes the point
sharply: the particles carry only noise (the same distribution in simulation and data),
and the Gaussian toy's x is the event observable. The known answer is the truth's mean
(0); the prior's is 0.2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.unfold import (
    OmniFoldConfig,
    gaussian_toy,
    omnifold,
    weighted_moments,
    with_event_features,
)


def test_event_features_sit_on_every_real_particle_and_padding_stays_zero():
    particles = np.zeros((3, 4, 2), dtype=np.float32)
    particles[0, :2] = [[1.0, 2.0], [3.0, 0.0]]
    particles[2, :1] = [[0.0, -1.0]]  # event 1 has no particles
    features = np.array([[10.0, 11.0], [20.0, 21.0], [30.0, 31.0]])
    out = with_event_features(particles, features)
    assert out.shape == (3, 4, 4)
    assert out.dtype == np.float32
    for i in range(3):
        for j in range(4):
            real = bool(np.any(particles[i, j] != 0))
            expected = [*particles[i, j], *(features[i] if real else [0.0, 0.0])]
            assert out[i, j].tolist() == expected, (i, j)


def test_event_features_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="with_event_features"):
        with_event_features(np.zeros((3, 4, 2)), np.zeros((2, 1)))


def _noise_particle_problem(n: int):
    """The Gaussian toy, each event also carrying 1–6 particles of pure noise."""
    problem = gaussian_toy(n, seed=21)
    rng = np.random.default_rng(22)

    def noise(rows: int) -> np.ndarray:
        sets = rng.normal(0.0, 1.0, (rows, 6, 3)).astype(np.float32)
        sets[np.arange(6)[None, :] >= rng.integers(1, 7, rows)[:, None]] = 0.0
        return sets

    problem.particles = {"sim_reco": noise(n), "sim_gen": noise(n), "data_reco": noise(n)}
    return problem


@pytest.fixture(scope="module")
def noise_problem():
    return _noise_particle_problem(8000)


def _unfolded_mean(problem, event_features: bool) -> float:
    config = OmniFoldConfig(
        iterations=2,
        classifier="deepsets",
        classifier_options={"phi": (32, 32), "rho": (32, 32)},
        batch_size=512,
        seed=5,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machines are shared
    try:
        inputs = problem.omnifold_inputs(particles=True, event_features=event_features)
        result = omnifold(**inputs, config=config)
    finally:
        torch.set_num_threads(threads)
    return weighted_moments(problem.sim_gen[:, 0], result.weights)[0]


def test_deepsets_with_event_features_moves_the_mean_most_of_the_way_to_the_truth(
    noise_problem,
):
    x = noise_problem.sim_gen[:, 0]
    prior_mean, _ = weighted_moments(x)
    truth_mean, _ = weighted_moments(noise_problem.data_gen[:, 0])
    gap = prior_mean - truth_mean  # about 0.2
    # two perfect iterations (Richardson–Lucy, tests/test_unfold_mean_shift.py) close 93 %
    # of the gap; the statistical σ of the mean at 8000 events is about 0.015 (7 % of it)
    moved = (prior_mean - _unfolded_mean(noise_problem, event_features=True)) / gap
    assert moved > 0.7, moved


def test_noise_particles_alone_leave_the_mean_near_the_prior(noise_problem):
    # the control: without the event observable nothing in the inputs tells simulation
    # from data, so the weights must not move the mean (else the test above proves nothing)
    x = noise_problem.sim_gen[:, 0]
    prior_mean, _ = weighted_moments(x)
    truth_mean, _ = weighted_moments(noise_problem.data_gen[:, 0])
    moved = (prior_mean - _unfolded_mean(noise_problem, event_features=False)) / (
        prior_mean - truth_mean
    )
    assert abs(moved) < 0.3, moved
