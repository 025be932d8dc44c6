"""The Poisson bootstrap's spread is the statistical uncertainty that theory predicts.

Oracle (closed form, independent of the code): on the Gaussian toy (prior N(0.2, 0.8²),
smearing σ = 0.5), one OmniFold iteration with a perfect classifier moves the gen mean to
μ_prior + k (r̄_data − r̄_sim) with k = 0.8² / (0.8² + 0.5²), the regression slope of gen
on reco in the simulation. Only r̄_data changes between bootstrap replicas (Poisson(1)
weights on the data), so their unfolded means scatter by k · sd(r_data) / √M, with
sd(r_data) = √(1 + 0.5²). Training noise (each replica has its own seed) can only add to
that; the test allows a factor 0.6–2.5 around it, which 16 replicas resolve (a χ² with 15
degrees of freedom falls below 0.6² of its mean with probability 1 %).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.unfold import OmniFoldConfig, bootstrap, gaussian_toy, omnifold, weighted_moments

SIM, DATA, REPLICAS = 20_000, 2_000, 16
K = 0.8**2 / (0.8**2 + 0.5**2)


@pytest.mark.slow
def test_bootstrap_spread_of_the_unfolded_mean_matches_the_data_statistics():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problem = gaussian_toy(SIM, n_data=DATA, seed=21)
        config = OmniFoldConfig(
            iterations=1, classifier_options={"hidden": (32, 32)}, batch_size=1024, seed=2
        )
        central = omnifold(**problem.omnifold_inputs(), config=config)
        replicas = bootstrap(**problem.omnifold_inputs(), replicas=REPLICAS, config=config, seed=40)
    finally:
        torch.set_num_threads(threads)
    x = problem.sim_gen[:, 0]
    means = np.array([weighted_moments(x, w)[0] for w in replicas])
    predicted = K * np.sqrt(1 + 0.5**2) / np.sqrt(DATA)
    spread = np.std(means, ddof=1)
    assert 0.6 * predicted < spread < 2.5 * predicted, (spread, predicted)
    # the replicas scatter around the central unfolded mean, not around a shifted one
    centre, _ = weighted_moments(x, central.weights)
    assert abs(means.mean() - centre) < 3 * spread / np.sqrt(REPLICAS) + 0.02
