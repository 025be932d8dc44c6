"""Iterative Bayesian unfolding: exact closure on the simulation itself, and on the Gaussian toy."""

from __future__ import annotations

import numpy as np
import pytest

from offline.unfold import (
    gaussian_toy,
    ibu,
    ibu_samples,
    response,
    triangular_discriminator,
    weighted_histogram,
)


def test_ibu_closure_on_own_reco_histogram_with_efficiency_and_fakes():
    rng = np.random.default_rng(1)
    n = 20_000
    gen = rng.normal(0.0, 1.0, n)
    reco = gen + rng.normal(0.0, 0.4, n)
    pass_reco = rng.random(n) < 0.85
    pass_gen = rng.random(n) < 0.9
    bins = np.linspace(-3, 3, 13)
    resp = response(reco, gen, bins, bins, pass_reco=pass_reco, pass_gen=pass_gen)
    data = weighted_histogram(reco[pass_reco], bins)
    for iterations in (1, 5):
        unfolded = ibu(data, resp, iterations)
        # when the data are the simulation's own reco level, the prior is a fixed point
        np.testing.assert_allclose(unfolded, resp.prior, rtol=1e-9)
    assert (resp.efficiency < 1).all()
    assert (resp.fake_fraction > 0).all()


def test_ibu_moves_the_gaussian_toy_towards_truth():
    toy = gaussian_toy(20_000, seed=4)
    bins = toy.bins["x"]
    truth = weighted_histogram(toy.data_gen[:, 0], bins)
    prior = weighted_histogram(toy.sim_gen[:, 0], bins)
    unfolded = ibu_samples(
        toy.sim_reco[:, 0], toy.sim_gen[:, 0], toy.data_reco[:, 0], bins, bins, 3
    )
    assert triangular_discriminator(unfolded, truth) < triangular_discriminator(prior, truth) / 4
    assert unfolded.sum() == pytest.approx(truth.sum(), rel=0.02)


def test_ibu_rejects_mismatched_histogram():
    toy = gaussian_toy(200, seed=4)
    bins = toy.bins["x"]
    resp = response(toy.sim_reco[:, 0], toy.sim_gen[:, 0], bins, bins)
    with pytest.raises(ValueError, match="reco bins"):
        ibu(np.ones(5), resp, 2)
    with pytest.raises(ValueError, match="sim_gen: length"):
        response(toy.sim_reco[:, 0], toy.sim_gen[:10, 0], bins, bins)
    bad = toy.data_reco[:, 0].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="data_reco: 1 NaN/inf values"):
        ibu_samples(toy.sim_reco[:, 0], toy.sim_gen[:, 0], bad, bins, bins, 2)
