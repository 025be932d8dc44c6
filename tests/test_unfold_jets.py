"""The Pythia 8 jet sample for the unfolding example: observables in range, detector effects visible."""

from __future__ import annotations

import numpy as np
import pytest

from offline.unfold.jets import MAX_PARTICLES, OBSERVABLES, PARTICLE_FEATURES, generate_jets, smear


@pytest.fixture(scope="module")
def jets():
    return generate_jets(120, "simulation", seed=21, batch=60)


def test_jet_observables_are_physical_for_passing_events(jets):
    gen, ok = jets["gen"], jets["pass_gen"]
    assert ok.sum() > 20  # about half the events have a central leading jet above 150 GeV
    col = {name: gen[ok, i] for i, name in enumerate(OBSERVABLES)}
    assert (col["mass"] > 0).all() and (col["mass"] < 200).all()
    assert (col["multiplicity"] >= 2).all()
    np.testing.assert_array_equal(col["multiplicity"], np.round(col["multiplicity"]))
    assert (col["width"] > 0).all() and (col["width"] < 0.4).all()
    assert (col["log_rho"] < 0).all()
    assert (col["tau21"] >= 0).all() and (col["tau21"] <= 1).all()
    # z_g = 0 when soft drop leaves a single particle, else within [z_cut, 0.5]
    assert ((col["z_g"] >= 0.1) | (col["z_g"] == 0)).all() and (col["z_g"] <= 0.5).all()
    np.testing.assert_array_equal(gen[~ok], 0.0)


def test_detector_loses_particles_and_changes_the_multiplicity(jets):
    both = jets["pass_gen"] & jets["pass_reco"]
    m = OBSERVABLES.index("multiplicity")
    assert both.sum() > 10
    # tracking efficiency and thresholds remove constituents on average
    assert jets["reco"][both, m].mean() < jets["gen"][both, m].mean()


def test_smearing_keeps_layout_and_drops_invisible_acceptance():
    rng = np.random.default_rng(0)
    pid = np.array([211, 22, 2112, 211])
    px = np.array([10.0, 5.0, 20.0, 0.1])
    py = np.zeros(4)
    pz = np.array([0.0, 1.0, 2.0, 0.0])
    e = np.sqrt(px**2 + pz**2 + 0.01)
    counts = np.array([2, 2])
    out = smear(pid, px, py, pz, e, counts, rng)
    assert out[-1].sum() == len(out[0]) <= 3  # the 0.1 GeV track is below threshold
    assert out[-1][1] <= 1


def test_unknown_tune_is_rejected():
    with pytest.raises(ValueError, match="unknown jet tune"):
        generate_jets(10, "nope", seed=1)


def test_leading_jet_particles_match_the_observables_at_both_levels(jets):
    for level in ("gen", "reco"):
        particles, mask, ok = (
            jets[f"{level}_particles"],
            jets[f"{level}_mask"],
            jets[f"pass_{level}"],
        )
        assert particles.dtype == np.float32 and particles.shape[1:] == (
            MAX_PARTICLES,
            len(PARTICLE_FEATURES),
        )
        col = {name: particles[..., i] for i, name in enumerate(PARTICLE_FEATURES)}
        multiplicity = jets[level][:, OBSERVABLES.index("multiplicity")]
        # one real particle per constituent (up to the cap), padding all zero, failing events empty
        np.testing.assert_array_equal(
            mask.sum(axis=1)[ok], np.minimum(multiplicity[ok], MAX_PARTICLES)
        )
        assert not mask[~ok].any() and not particles[~mask].any()
        # hardest first; the pT fractions of an uncapped jet add up to ~1 (vector vs scalar sum)
        assert (np.diff(col["pt_fraction"][ok], axis=1) <= 0).all()  # padding (0) last
        whole = ok & (multiplicity <= MAX_PARTICLES)
        np.testing.assert_allclose(col["pt_fraction"][whole].sum(axis=1), 1.0, atol=0.1)
        # constituents of an R = 0.4 jet sit near its axis: all of them for massless detector
        # objects (clustered in y = η); at gen level soft massive hadrons can have η far from y
        distance = np.hypot(col["delta_eta"], col["delta_phi"])[mask]
        if level == "reco":
            assert (distance < 0.45).all()
        else:
            assert np.mean(distance < 0.5) > 0.99
        # every particle is exactly one of: charged, photon, neutral hadron
        kinds = (col["charge"] != 0).astype(int) + col["photon"] + col["neutral_hadron"]
        np.testing.assert_array_equal(kinds[mask], 1)
    # the detector keeps charges and classes: the hardest reco particle of a jet at both
    # levels is usually the hardest gen particle
    both = jets["pass_gen"] & jets["pass_reco"]
    gen, reco = jets["gen_particles"][both, 0], jets["reco_particles"][both, 0]
    assert np.mean(np.all(gen[:, 3:] == reco[:, 3:], axis=1)) > 0.7
