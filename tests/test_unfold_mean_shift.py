"""OmniFold moves the mean of the Gaussian toy to the truth by the amount theory predicts.

The toy (``gaussian_toy``): truth N(0, 1), prior N(0.2, 0.8²), Gaussian smearing σ = 0.5.
The oracle is the population-level OmniFold iteration with perfect classifiers, which for
a single observable is Richardson–Lucy deconvolution,
p_{k+1}(g) = p_k(g) ∫ dr N(r; g, σ²) d(r) / (p_k ⊗ N)(r), computed here by quadrature on
a grid in numpy, independent of the code under test. Its first step moves the mean by
(μ_truth − μ_prior) · v/(v + σ²) = −0.2 · 0.64/0.89; by iteration 4 the residual is < 10⁻³.

The tolerance is 3σ of the measured mean, σ² = statistical (the data's and the
simulation's reco means) + training noise (the spread of 4 ensemble members / 4): one
member's mean scatters by 0.01–0.04 from training alone at 10⁴ events, more than the
statistics (0.015), so a single network could not be held to a statistical bound.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.unfold import OmniFoldConfig, gaussian_toy, omnifold, weighted_moments

N, ITERATIONS, MEMBERS = 10_000, 4, 4
TRUTH, PRIOR, SMEARING = (0.0, 1.0), (0.2, 0.8), 0.5


def _normal(x, mean, sd):
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


def richardson_lucy_means(iterations: int) -> list[float]:
    """Mean of the unfolded distribution after each iteration, at infinite statistics."""
    g = np.linspace(-8.0, 8.0, 1601)
    dg = g[1] - g[0]
    response = _normal(g[:, None], g[None, :], SMEARING)  # [reco, gen]
    data_reco = _normal(g, TRUTH[0], np.hypot(TRUTH[1], SMEARING))
    p = _normal(g, *PRIOR)
    means = []
    for _ in range(iterations):
        p = p * ((data_reco / (response @ p * dg)) @ response * dg)
        means.append(float((g * p).sum() / p.sum()))
    return means


@pytest.fixture(scope="module")
def unfolded():
    problem = gaussian_toy(N, seed=11)
    config = OmniFoldConfig(
        iterations=ITERATIONS,
        ensembles=MEMBERS,
        classifier_options={"hidden": (32, 32)},
        batch_size=2048,
        seed=3,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machines are shared
    try:
        return problem, omnifold(**problem.omnifold_inputs(), config=config)
    finally:
        torch.set_num_threads(threads)


def test_the_oracle_reproduces_the_closed_form_first_step():
    means = richardson_lucy_means(ITERATIONS)
    v, s2 = PRIOR[1] ** 2, SMEARING**2
    assert means[0] == pytest.approx(PRIOR[0] + (TRUTH[0] - PRIOR[0]) * v / (v + s2), abs=1e-6)
    assert abs(means[-1] - TRUTH[0]) < 1e-3


def test_unfolded_mean_moves_to_the_truth_by_the_predicted_amount(unfolded):
    problem, result = unfolded
    x = problem.sim_gen[:, 0]
    truth_mean, _ = weighted_moments(problem.data_gen[:, 0])
    prior_mean, _ = weighted_moments(x)
    # statistical σ of the unfolded mean: the data's reco mean and the simulation's reco
    # mean, taken as independent (conservative: the simulation's gen-reco correlation helps)
    statistical = np.sqrt(
        (TRUTH[1] ** 2 + SMEARING**2) / len(problem.data_reco)
        + (PRIOR[1] ** 2 + SMEARING**2) / len(x)
    )
    expected = richardson_lucy_means(ITERATIONS)
    for k in range(1, ITERATIONS + 1):
        mean_k, _ = weighted_moments(x, result.weights_at(k))
        members = [
            weighted_moments(x, result.prior * push)[0] for push in result.member_push[:, k - 1]
        ]
        sigma = np.hypot(statistical, np.std(members, ddof=1) / np.sqrt(MEMBERS))
        # how much: the shift from the prior is the predicted shift of iteration k, measured
        # from this sample's prior mean (the simulation's own fluctuation cancels)
        predicted_shift = expected[k - 1] - PRIOR[0]
        assert abs((mean_k - prior_mean) - predicted_shift) < 3 * sigma, (
            k,
            mean_k,
            expected[k - 1],
        )
    final, _ = weighted_moments(x, result.weights)
    assert abs(final - truth_mean) < 3 * sigma
    assert abs(final - truth_mean) < abs(prior_mean - truth_mean) / 5
