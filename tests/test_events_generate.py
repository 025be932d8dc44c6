"""Event generation: physics checks on small Pythia samples, determinism, the mixture, the CLI.

Samples are tiny (tens to a few hundred events), so tolerances are statistical
and generous; each test says in its name what it protects.
"""

from __future__ import annotations

import functools

import awkward as ak
import numpy as np
import pytest
from typer.testing import CliRunner

from l1ad.cli import app
from offline.events import read_events, read_metadata
from offline.events.generate import Generated, generate, parse_shard
from offline.events.l1_response import l1_objects
from offline.events.processes import MIX_FRACTIONS, get_process, mix_counts
from offline.events.schema import OBJECT_ROWS, PROCESSES, process_label
from offline.preprocess import HARDWARE_LSB, to_hardware

runner = CliRunner(env={"COLUMNS": "200"})  # no line wrapping in captured output


@functools.cache
def sample(process: str, events: int, seed: int = 101) -> Generated:
    return generate(process, events, seed, workers=1, progress=False)


def leptons(particles: np.ndarray) -> np.ndarray:
    """e/gamma and muon rows, (N, 8, 4)."""
    return particles[:, 1:9]


def invariant_mass(objs: np.ndarray) -> np.ndarray:
    """Mass of the sum of massless objects (N, k, >=3) with pT, eta, phi columns."""
    pt, eta, phi = objs[..., 0].astype(np.float64), objs[..., 1], objs[..., 2]
    px, py, pz = (pt * np.cos(phi)).sum(-1), (pt * np.sin(phi)).sum(-1), (pt * np.sinh(eta)).sum(-1)
    e = (pt * np.cosh(eta)).sum(-1)
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0))


def leading_same_flavour_pair(particles: np.ndarray) -> np.ndarray:
    """The two leading objects of the flavour (e/gamma or muon) whose second object is hardest."""
    eg, mu = particles[:, 1:3], particles[:, 5:7]
    use_mu = mu[:, 1, 0] > eg[:, 1, 0]
    return np.where(use_mu[:, None, None], mu, eg)


def test_zll_dilepton_mass_peaks_at_z_mass_within_3_gev():
    p = sample("zll", 150).events.particles
    pair = leading_same_flavour_pair(p)
    mass = invariant_mass(pair[pair[:, 1, 0] > 0][:, :, :3])
    window = mass[(mass > 70) & (mass < 110)]
    assert len(window) > 40, f"only {len(window)} dilepton pairs near the Z"
    assert abs(np.median(window) - 91.2) < 3.0, np.median(window)


def test_wlnu_transverse_mass_has_jacobian_edge_near_w_mass():
    p = sample("wlnu", 150).events.particles
    lep = leptons(p)
    lead = lep[np.arange(len(p)), np.argmax(lep[:, :, 0], axis=1)]
    met, met_phi = p[:, 0, 0], p[:, 0, 2]
    mt = np.sqrt(2 * lead[:, 0] * met * (1 - np.cos(lead[:, 2] - met_phi)))
    # the Jacobian peak sits just below m_W; above it only resolution tails and off-shell Ws
    hist, edges = np.histogram(mt, bins=np.arange(0, 160, 10))
    peak = edges[np.argmax(hist)] + 5
    assert 55 <= peak <= 85, (peak, hist)
    assert np.mean(mt > 110) < 0.1, np.mean(mt > 110)


def test_ato4l_four_lepton_mass_near_50_gev():
    p = sample("Ato4l", 100).events.particles
    lep = leptons(p)
    four = np.sort(lep[:, :, 0], axis=1)[:, -4] > 0
    assert four.mean() > 0.2, f"only {four.mean():.2f} of A->4l events have four leptons"
    order = np.argsort(-lep[four][:, :, 0], axis=1)[:, :4]
    objs = np.take_along_axis(lep[four], order[:, :, None], axis=1)[:, :, :3]
    mass = invariant_mass(objs)
    assert abs(np.median(mass) - 50) < 5, np.median(mass)


def _pythia_batch(process: str, n: int, seed: int):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in get_process(process).pythia_settings(seed):
        assert pythia.readString(line)
    assert pythia.init()
    return pythia.nextBatch(n)


def visible_taus(batch, pt_min: float, eta_max: float) -> list[np.ndarray]:
    """Per event, (eta, phi) of taus whose visible decay products (tau minus neutrinos) are hard."""
    out = []
    for event in batch.prt:
        pid = ak.to_numpy(event.id)
        d1, d2 = ak.to_numpy(event.daughter1), ak.to_numpy(event.daughter2)
        p = np.stack([ak.to_numpy(event.p[c]) for c in ("px", "py", "pz")], axis=1)
        found = []
        for j in np.flatnonzero(np.abs(pid) == 15):
            daughters = np.arange(d1[j], max(d1[j], d2[j]) + 1)
            if d1[j] <= 0 or (np.abs(pid[daughters]) == 15).any():
                continue  # not the copy that decays
            vis = p[j] - p[daughters][np.isin(np.abs(pid[daughters]), (12, 14, 16))].sum(axis=0)
            pt = np.hypot(vis[0], vis[1])
            eta = np.arcsinh(vis[2] / pt)
            if pt > pt_min and abs(eta) < eta_max:
                found.append((eta, np.arctan2(vis[1], vis[0])))
        out.append(np.array(found).reshape(-1, 2))
    return out


@pytest.mark.parametrize("process", ["hToTauTau", "leptoquark"])
def test_taus_leave_tau_like_jets_or_leptons_at_their_direction(process):
    batch = _pythia_batch(process, 40, seed=5)
    particles = l1_objects(batch, np.random.default_rng(0))
    found = total = 0
    for objs, taus in zip(particles, visible_taus(batch, pt_min=20, eta_max=2.3), strict=True):
        objs = objs[1:][objs[1:, 0] > 0]  # e/gamma, muons, jets
        for t_eta, t_phi in taus:
            dphi = (objs[:, 2] - t_phi + np.pi) % (2 * np.pi) - np.pi
            found += bool((np.hypot(objs[:, 1] - t_eta, dphi) < 0.3).any())
            total += 1
    assert total >= 15, f"only {total} taus with visible pT > 20 GeV in {process}"
    assert found / total > 0.85, f"{found}/{total} visible taus have an L1 object within dR < 0.3"


def test_background_mixture_matches_adc2021_fractions_and_is_shuffled():
    gen = sample("background", 200)
    events = gen.events
    expected = mix_counts(200)
    counts = {name: int((events.labels == process_label(name)).sum()) for name in MIX_FRACTIONS}
    assert counts == expected
    weights = events.event_weights
    for name, fraction in MIX_FRACTIONS.items():
        weighted = weights[events.labels == process_label(name)].sum() / weights.sum()
        assert weighted == pytest.approx(fraction, abs=0.5 / 200 + 1e-9)
    # shuffled: the first half holds W and QCD in their proportions, within 4 standard deviations
    half = events.labels[:100]
    for name in ("wlnu", "qcd"):
        f = MIX_FRACTIONS[name]
        assert abs((half == process_label(name)).mean() - f) < 4 * np.sqrt(f * (1 - f) / 100)
    # QCD carries its p-hat-T bias weights, the others do not
    qcd = weights[events.labels == process_label("qcd")]
    assert qcd.std() > 0.1
    assert np.allclose(weights[events.labels == process_label("wlnu")], 1.0)
    stats = gen.metadata["components"]
    assert (
        0 < stats["qcd"]["preselection_efficiency"] < stats["wlnu"]["preselection_efficiency"] < 1
    )


def rows_of(events, process: str) -> np.ndarray:
    """One process's events as sorted rows (the mixture is shuffled)."""
    mine = events.particles[events.labels == process_label(process)].reshape(-1, 19 * 4)
    return mine[np.lexsort(mine.T[::-1])]


def test_enriching_a_process_adds_its_events_at_weights_summing_to_its_plain_count():
    plain = sample("background", 200)
    enriched = generate("background", 200, 101, workers=1, progress=False, enrich={"zll": 3})
    for name in ("wlnu", "qcd", "ttbar"):  # the other processes: the same events, bit for bit
        np.testing.assert_array_equal(rows_of(enriched.events, name), rows_of(plain.events, name))
    n_zll = mix_counts(200)["zll"]
    zll = enriched.events.labels == process_label("zll")
    assert zll.sum() == 3 * n_zll
    np.testing.assert_allclose(enriched.events.event_weights[zll], 1 / 3, rtol=1e-12)
    weights = enriched.events.event_weights
    for name, fraction in MIX_FRACTIONS.items():  # the mixture's weighted fractions unchanged
        weighted = weights[enriched.events.labels == process_label(name)].sum() / weights.sum()
        assert weighted == pytest.approx(fraction, abs=0.5 / 200 + 1e-9)
    assert enriched.metadata["enrichment"] == {"zll": 3.0}
    assert "enrichment" not in plain.metadata


def test_l1_objects_are_on_the_hardware_grid_ordered_padded_and_in_acceptance():
    p = sample("background", 200).events.particles
    features = p[:, :, :3].reshape(len(p), -1).astype(np.float64)
    words = to_hardware(features)
    lsb = np.tile([HARDWARE_LSB["pt"], HARDWARE_LSB["eta"], HARDWARE_LSB["phi"]], 19)
    np.testing.assert_allclose(words * lsb, features, atol=1e-5)
    assert (p[:, :, 2] >= -np.pi).all() and (p[:, :, 2] < np.pi).all()
    for obj, (first, count, code) in OBJECT_ROWS.items():
        rows = p[:, first : first + count]
        present = rows[:, :, 0] > 0
        assert ((rows[:, :, 3] == code) == present).all(), obj
        assert (np.diff(rows[:, :, 0], axis=1) <= 0).all(), f"{obj} not pT-ordered"
        assert (rows[~present][:, :3] == 0).all(), f"{obj} not zero-padded"
    assert np.abs(p[:, 9:, 1]).max() < 4.0
    assert np.abs(p[:, 1:5, 1]).max() < 2.5
    assert np.abs(p[:, 5:9, 1]).max() < 2.4
    assert (p[:, 0, 1] == 0).all()
    assert (p[:, 1:9, 0] > 23).any(axis=1).all(), "every event passes the pre-selection"


def test_same_seed_gives_identical_arrays_and_other_seeds_differ():
    a = generate("zll", 12, seed=3, workers=1, progress=False).events
    b = generate("zll", 12, seed=3, workers=1, progress=False).events
    c = generate("zll", 12, seed=4, workers=1, progress=False).events
    assert a.particles.tobytes() == b.particles.tobytes()
    assert a.weights.tobytes() == b.weights.tobytes()
    assert not np.array_equal(a.particles, c.particles)


@pytest.mark.slow
def test_worker_count_changes_speed_not_events():
    one = generate("zll", 30, seed=8, workers=1, progress=False, task_size=15).events
    two = generate("zll", 30, seed=8, workers=2, progress=False, task_size=15).events
    assert one.particles.tobytes() == two.particles.tobytes()


def test_shards_are_independent_slices():
    assert parse_shard("1/3") == (1, 3)
    a = generate("zll", 10, seed=8, workers=1, progress=False, shard=(0, 2)).events
    b = generate("zll", 10, seed=8, workers=1, progress=False, shard=(1, 2)).events
    assert len(a) == len(b) == 5
    assert not np.array_equal(a.particles, b.particles)
    for bad in ("2/2", "x", "1/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_generate_cli_writes_a_readable_file_with_labels_weights_and_metadata(tmp_path):
    out = tmp_path / "zll.h5"
    result = runner.invoke(
        app,
        [
            "generate",
            "--process",
            "zll",
            "--events",
            "12",
            "--seed",
            "2",
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    events = read_events(out)
    assert len(events) == 12
    assert (events.labels == PROCESSES.index("zll")).all()
    meta = read_metadata(out)
    assert meta["process"] == "zll" and meta["seed"] == 2
    assert "pythia8mc" in meta["package_versions"]
    assert "WeakSingleBoson:ffbar2gmZ = on" in meta["components"]["zll"]["pythia_settings"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--process", "zprime", "--events", "5"], "unknown process"),
        (["--process", "zll", "--events", "0"], "positive"),
        (["--process", "zll", "--events", "-3"], "positive"),
        (["--process", "zll", "--events", "5", "--shard", "4/2"], "shard"),
        (["--process", "zll", "--events", "5", "--workers", "0"], "workers"),
        (["--process", "zll", "--events", "5", "--enrich", "ttbar=2"], "background mixture"),
        (["--process", "background", "--events", "5", "--enrich", "ttbar=0.5"], ">= 1"),
        (["--process", "background", "--events", "5", "--enrich", "Ato4l=2"], "'Ato4l' is not"),
        (["--process", "background", "--events", "5", "--enrich", "ttbar"], "PROCESS=FACTOR"),
    ],
)
def test_generate_cli_rejects_bad_arguments_with_a_clear_error(tmp_path, args, message):
    result = runner.invoke(app, ["generate", *args, "--out", str(tmp_path / "x.h5")])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "x.h5").exists()


def test_mixture_cost_is_the_fraction_weighted_mean_of_per_event_costs():
    """One mixed event costs Σ f_p · c_p CPU seconds (exact fractions as the oracle)."""
    from fractions import Fraction

    from offline.events.processes import mixture_cpu_seconds_per_event

    costs = {"wlnu": 0.5, "qcd": 4.0, "zll": 0.25, "ttbar": 2.0}
    total = sum(Fraction(f) for f in MIX_FRACTIONS.values())
    expected = sum(Fraction(MIX_FRACTIONS[p]) / total * Fraction(c) for p, c in costs.items())
    assert mixture_cpu_seconds_per_event(costs) == pytest.approx(float(expected), rel=1e-12)
