"""Energy-conditioned Gaussianisation of voxel values and the calibration of sampler latents."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from offline.generative.marginals import ConditionalMarginals, LatentCalibration, condition_bins


def _sparse_values(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two rings of 4 voxels; P(empty) and the scale of non-zero values both grow with the condition."""
    rng = np.random.default_rng(seed)
    cond = rng.uniform(-1, 1, n)
    p_empty = 0.2 + 0.3 * (cond + 1) / 2
    values = rng.exponential(np.exp(cond[:, None]), (n, 8)) * (
        rng.random((n, 8)) > p_empty[:, None]
    )
    values[:, 4:] *= 10.0  # second ring: another scale
    return cond, values


RINGS = np.repeat([0, 1], 4)


def test_gaussianised_values_are_standard_normal_within_every_energy_bin():
    cond, values = _sparse_values(40_000, 0)
    marginals = ConditionalMarginals.fit(cond, values, RINGS, bins=8)
    latent = marginals.to_latent(cond, values, RINGS, np.random.default_rng(1))
    for lo in (-1.0, 0.5):  # a low- and a high-condition slice
        sel = (cond > lo) & (cond < lo + 0.5)
        z = latent[sel].ravel()
        assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
        assert abs(np.mean(z < 0) - 0.5) < 0.02


def test_empty_voxels_go_below_the_empty_quantile_and_come_back_empty():
    cond, values = _sparse_values(20_000, 2)
    marginals = ConditionalMarginals.fit(cond, values, RINGS, bins=6)
    latent = marginals.to_latent(cond, values, RINGS, np.random.default_rng(3))
    back = marginals.from_latent(cond, latent, RINGS)
    np.testing.assert_array_equal(back == 0, values == 0)
    # exact, except for values beyond the tables' range at their condition (the extremes of the sample)
    exact = np.isclose(back, values, rtol=1e-6, atol=1e-9)
    assert exact.mean() > 0.999
    # the empty fraction at a condition is the fraction of latents below Φ⁻¹(P0)
    fresh = np.random.default_rng(4).normal(size=(20_000, 8))
    generated = marginals.from_latent(np.full(20_000, 0.0), fresh, RINGS)
    near = np.abs(cond) < 0.1
    assert abs((generated == 0).mean() - (values[near] == 0).mean()) < 0.02


def test_calibration_maps_a_distorted_sampler_back_to_standard_normal():
    rng = np.random.default_rng(5)
    cond = rng.uniform(-1, 1, 30_000)
    centres = condition_bins(cond, 6)
    # a sampler whose latents are too narrow, shifted, and more so at high condition
    distorted = 0.2 * cond[:, None] + (0.6 + 0.1 * cond[:, None]) * rng.normal(size=(30_000, 8))
    calibration = LatentCalibration.fit(cond, distorted, RINGS, centres)
    fresh_cond = rng.uniform(-1, 1, 30_000)
    fresh = 0.2 * fresh_cond[:, None] + (0.6 + 0.1 * fresh_cond[:, None]) * rng.normal(
        size=(30_000, 8)
    )
    z = calibration.apply(fresh_cond, fresh, RINGS).ravel()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.03
    assert abs(np.mean(z < ndtri(0.1)) - 0.1) < 0.01


def test_calibration_is_monotone_so_it_keeps_the_order_of_latents():
    rng = np.random.default_rng(6)
    cond = rng.uniform(-1, 1, 5_000)
    calibration = LatentCalibration.fit(
        cond, rng.normal(size=(5_000, 8)) ** 3, RINGS, condition_bins(cond, 4)
    )
    y = np.tile(np.linspace(-8, 8, 401)[:, None], (1, 8))
    mapped = calibration.apply(np.zeros(401), y, RINGS)
    assert np.all(np.diff(mapped, axis=0) > 0)


@pytest.mark.parametrize("bins", [1, 3])
def test_voxels_of_a_ring_share_one_table(bins):
    cond, values = _sparse_values(2_000, 7)
    marginals = ConditionalMarginals.fit(cond, values, RINGS, bins=bins)
    assert marginals.quantiles.shape == (bins, 2, marginals.quantiles.shape[2])
    swapped = values[:, [1, 0, 3, 2, 5, 4, 7, 6]]  # permute voxels within each ring
    a = marginals.to_latent(cond, values, RINGS, np.random.default_rng(0))
    b = marginals.to_latent(cond, swapped, RINGS, np.random.default_rng(0))
    nonzero = values > 0
    np.testing.assert_allclose(b[:, [1, 0, 3, 2, 5, 4, 7, 6]][nonzero], a[nonzero])


@pytest.mark.parametrize(
    "values",
    [
        np.resize(np.arange(5.0), 20_000),
        np.concatenate([np.zeros(15_000), np.linspace(1, 2, 5_000)]),
    ],
    ids=["ladder", "tied"],
)
def test_condition_bins_are_distinct_even_for_discrete_or_tied_conditions(values):
    cond = np.random.default_rng(8).permutation(values)
    centres = condition_bins(cond, 12)
    assert np.all(np.diff(centres) > 0)
    assert centres[0] == 0.0 and centres[-1] <= cond.max()
    if len(np.unique(cond)) <= 12:
        np.testing.assert_array_equal(centres, np.unique(cond))
    else:  # the tied zeros make one bin, the rest keep theirs
        assert 1 + 3 <= len(centres) <= 12
