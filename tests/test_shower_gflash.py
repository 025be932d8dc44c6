"""GFlash reference simulator and the DS1 geometry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from offline.generative import (
    DATASET1_PHOTONS,
    PBWO4,
    Geometry,
    GFlashSimulator,
    Layer,
    mean_layer_fractions,
    read_binning_xml,
    sample_longitudinal,
)
from offline.generative.gflash import log_t_alpha_moments, sample_energies

DS1_XML = """<Bins>
   <Bin pid="22" etaMin="0" etaMax="130" name="photon">
      <Layer id="0" r_edges="0,5,10,30,50,100,200,400,600" n_bin_alpha="1" />
      <Layer id="1" r_edges="0,2,4,6,8,10,12,15,20,30,40,50,70,90,120,150,200" n_bin_alpha="10"/>
      <Layer id="2" r_edges="0,2,5,10,15,20,25,30,40,50,60,80,100,130,160,200,250,300,350,400" n_bin_alpha="10"/>
      <Layer id="3" r_edges="0,50,100,200,400,600" n_bin_alpha="1" />
      <Layer id="4" r_edges="0" n_bin_alpha="1" />
      <Layer id="12" r_edges="0,100,200,400,1000,2000" n_bin_alpha="1" />
      <Layer id="13" r_edges="0" n_bin_alpha="1" />
   </Bin>
</Bins>
"""


def test_ds1_photon_geometry_matches_the_challenge_binning_xml(tmp_path):
    path = tmp_path / "binning_dataset_1_photons.xml"
    path.write_text(DS1_XML)
    parsed = read_binning_xml(path, "photon")
    assert parsed.layers == DATASET1_PHOTONS.layers
    assert DATASET1_PHOTONS.n_voxels == 368
    assert [layer.n_voxels for layer in DATASET1_PHOTONS.layers] == [8, 160, 190, 5, 5]
    # voxel order within a layer: alpha outer, r inner
    geo = DATASET1_PHOTONS
    idx = geo.voxel_index(1, np.array([3.0]), np.array([-np.pi + 0.01 + 2 * np.pi / 10]))
    assert idx[0] == geo.offsets[1] + 1 * 16 + 1
    assert geo.voxel_index(1, np.array([250.0]), np.array([0.0]))[0] == -1


def test_material_constants_follow_the_gflash_formulas():
    # E_c = 2.66 (X0 Z/A)^1.1 MeV, R_M = 21 MeV X0/E_c; PDG quotes R_M = 19.6 mm for PbWO4
    assert PBWO4.Z == pytest.approx(68.36, abs=0.05)
    assert PBWO4.critical_energy_mev == pytest.approx(2.66 * (7.39 * PBWO4.Z / PBWO4.A) ** 1.1)
    assert 18.0 < PBWO4.moliere_radius_mm < 23.0
    assert PBWO4.x0_mm == pytest.approx(8.925, abs=0.01)


def test_shower_parameter_fluctuations_match_the_parametrisation():
    energy = 2e4
    t_max, alpha = sample_longitudinal(np.full(40_000, energy), PBWO4, np.random.default_rng(3))
    m_t, s_t, m_a, s_a, rho = log_t_alpha_moments(np.array([energy]), PBWO4)
    ln_y = np.log(energy / PBWO4.critical_energy_mev)  # GP eq. 2.3-2.5, constants written out
    assert m_t[0] == pytest.approx(np.log(ln_y - 0.812))
    assert s_t[0] == pytest.approx(1 / (-1.4 + 1.26 * ln_y))
    assert m_a[0] == pytest.approx(np.log(0.81 + (0.458 + 2.26 / PBWO4.Z) * ln_y))
    assert s_a[0] == pytest.approx(1 / (-0.58 + 0.86 * ln_y))
    assert rho[0] == pytest.approx(0.705 - 0.023 * ln_y)
    assert np.log(t_max).mean() == pytest.approx(m_t[0], abs=4 * s_t[0] / 200)
    assert np.log(alpha).mean() == pytest.approx(m_a[0], abs=4 * s_a[0] / 200)
    assert np.log(t_max).std() == pytest.approx(s_t[0], rel=0.03)
    assert np.corrcoef(np.log(t_max), np.log(alpha))[0, 1] == pytest.approx(rho[0], abs=0.03)


def test_mean_longitudinal_profile_follows_the_gflash_formula_within_statistics():
    depths = np.arange(0.0, 26.0, 1.0)  # 25 thin layers of 1 X0, laterally unbounded
    geo = Geometry(tuple(Layer(i, (0.0, 1e12), 1) for i in range(len(depths) - 1)))
    sim = GFlashSimulator(geometry=geo, layer_depths_x0=tuple(depths))
    energy, n = 3e3, 1000
    fractions = sim.simulate(np.full(n, energy), np.random.default_rng(7)) / energy
    expected = mean_layer_fractions(energy, depths, PBWO4)
    mean, err = fractions.mean(axis=0), fractions.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(mean - expected) < 4.5 * np.maximum(err, 1e-7))
    # layers share each shower's (T, α) fluctuation, so test with the full covariance:
    # Hotelling χ² on 2-X0 groups of the first 20 X0, at the 99.9 % quantile
    groups = fractions[:, :20].reshape(n, 10, 2).sum(axis=2)
    diff = groups.mean(axis=0) - expected[:20].reshape(10, 2).sum(axis=1)
    cov = np.cov(groups, rowvar=False) / n
    chi2 = float(diff @ np.linalg.solve(cov, diff))
    assert chi2 < stats.chi2.ppf(0.999, 10), chi2
    # and the profile really is the peaked gamma shape: maximum a few X0 deep
    assert 3 <= int(np.argmax(mean)) <= 9


def test_total_deposited_energy_scales_with_incident_energy():
    sim = GFlashSimulator()
    rng = np.random.default_rng(11)
    totals, layer2 = {}, {}
    for energy in (1e3, 1e4, 1e5):
        x = sim.simulate(np.full(30, energy), rng)
        assert x.shape == (30, 368) and x.min() >= 0
        totals[energy] = x.sum(axis=1).mean()
        layer2[energy] = x[:, DATASET1_PHOTONS.layer_slice(2)].sum(axis=1).mean() / energy
        assert 0.95 < totals[energy] / energy <= 1.0
    assert totals[1e4] / totals[1e3] == pytest.approx(10.0, rel=0.02)
    assert totals[1e5] / totals[1e4] == pytest.approx(10.0, rel=0.02)
    # higher energy: shower maximum deeper, more energy in the middle layer
    assert layer2[1e3] < layer2[1e4] < layer2[1e5]


def test_simulator_is_reproducible_and_rejects_bad_energies():
    sim = GFlashSimulator()
    e = sample_energies(20, 0)
    assert np.array_equal(sim.simulate(e, 5), sim.simulate(e, 5))
    assert (1e3 <= e).all() and (e <= 1e6).all()
    with pytest.raises(ValueError, match="positive"):
        sim.simulate(np.array([1e3, -5.0]))
    with pytest.raises(ValueError, match="GFlash needs"):
        sim.simulate(np.array([10.0]))
