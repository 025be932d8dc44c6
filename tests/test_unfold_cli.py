"""``l1ad unfold`` on a tiny Gaussian example and on HDF5 arrays given by a config file."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from l1ad.cli import app
from offline.unfold import gaussian_toy

runner = CliRunner()


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_unfold_gaussian_example_writes_metrics_weights_and_plots(tmp_path, one_thread):
    out = tmp_path / "unf"
    result = runner.invoke(
        app,
        [
            "unfold",
            "--example",
            "gaussian",
            "--events",
            "3000",
            "--iterations",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["triangular_discriminator"]) == {"omnifold", "ibu", "prior"}
    for method in ("omnifold", "ibu", "prior"):
        assert set(metrics["triangular_discriminator"][method]) == {"x"}
    assert (
        metrics["triangular_discriminator"]["omnifold"]["x"]
        < metrics["triangular_discriminator"]["prior"]["x"]
    )
    assert 0 < metrics["effective_sample_size"] <= 3000
    assert metrics["seconds"] > 0
    for name in (
        "weights.h5",
        "metrics.csv",
        "diagnostics.csv",
        "diagnostics.png",
        "unfolded_x.png",
        "config.json",
    ):
        assert (out / name).stat().st_size > 0, name
    with h5py.File(out / "weights.h5") as f:
        assert f["weights"].shape == (3000,)
        assert f["push"].shape == (2, 3000)
        assert np.isfinite(f["weights"][()]).all()


def test_unfold_from_config_and_hdf5_arrays(tmp_path, one_thread):
    toy = gaussian_toy(2000, seed=3, reco_efficiency=0.9)
    arrays = tmp_path / "arrays.h5"
    with h5py.File(arrays, "w") as f:
        f["sim_reco"], f["sim_gen"], f["data_reco"] = toy.sim_reco, toy.sim_gen, toy.data_reco
        f["pass_reco"], f["data_pass_reco"] = toy.pass_reco, toy.data_pass_reco
        f["data_gen"] = toy.data_gen
    config = tmp_path / "unfold.yaml"
    config.write_text(
        f"unfold:\n  input: {arrays}\n  observables: [x]\n  iterations: 1\n  epochs: 5\n  out: {tmp_path / 'o'}\n"
    )
    result = runner.invoke(app, ["unfold", "--config", str(config)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["iterations"] == 1
    assert set(metrics["triangular_discriminator"]["omnifold"]) == {"x"}


def test_unfold_rejects_unknown_example_and_bad_config(tmp_path):
    result = runner.invoke(app, ["unfold", "--example", "nope", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "unknown example 'nope'" in result.output
    config = tmp_path / "bad.yaml"
    config.write_text("unfold:\n  iteratons: 3\n")
    result = runner.invoke(app, ["unfold", "--config", str(config)])
    assert result.exit_code == 1
    assert "unknown key 'iteratons'" in result.output
    assert not (tmp_path / "x" / "metrics.json").exists()


@pytest.fixture(scope="module")
def jets_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jets_cache")


@pytest.mark.parametrize("model", ["mlp", "deepsets", "transformer"])
def test_unfold_jets_example_runs_with_each_model(
    model, jets_cache, tmp_path, monkeypatch, one_thread
):
    monkeypatch.setenv("L1AD_CACHE", str(jets_cache))  # the Pythia sample is generated once
    out = tmp_path / "unf"
    args = ["unfold", "--example", "jets", "--events", "160", "--iterations", "1"]
    args += ["--epochs", "1", "--model", model, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{model} classifier" in result.output
    assert json.loads((out / "config.json").read_text())["model"] == model
    metrics = json.loads((out / "metrics.json").read_text())
    omnifold = metrics["triangular_discriminator"]["omnifold"]
    assert set(omnifold) == {"mass", "multiplicity", "width", "log_rho", "tau21", "z_g"}
    assert all(np.isfinite(v) for v in omnifold.values())
    with h5py.File(out / "weights.h5") as f:
        weights = f["weights"][()]
    assert len(weights) == metrics["events"]["simulation"]
    assert np.isfinite(weights).all() and (weights > 0).all()
    assert list(jets_cache.glob("unfold_jets_v2_*.npz"))


def test_particle_models_need_particles_and_unknown_models_are_named(tmp_path):
    result = runner.invoke(
        app,
        [
            "unfold",
            "--example",
            "gaussian",
            "--events",
            "100",
            "--model",
            "transformer",
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert result.exit_code == 1
    assert "--model transformer: needs per-particle inputs" in result.output
    result = runner.invoke(
        app, ["unfold", "--example", "jets", "--model", "pet", "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 1
    assert "--model: unknown classifier 'pet'" in result.output
    assert not (tmp_path / "t").exists() and not (tmp_path / "p").exists()


def test_unfold_particle_model_on_hdf5_particle_sets(tmp_path, one_thread):
    rng = np.random.default_rng(4)
    n, p = 400, 5
    gen = rng.normal(0.2, 0.8, (n, p, 3)).astype(np.float32)
    gen[:, 3:] = 0.0  # two padding rows per event
    reco = np.where(gen != 0, gen + rng.normal(0, 0.3, gen.shape), 0).astype(np.float32)
    data = np.where(gen != 0, rng.normal(0, 1.0, gen.shape), 0).astype(np.float32)
    arrays = tmp_path / "sets.h5"
    with h5py.File(arrays, "w") as f:
        f["sim_reco"], f["sim_gen"] = reco[:, :, 0].sum(1), gen[:, :, 0].sum(1)
        f["data_reco"] = data[:, :, 0].sum(1)
        f["sim_reco_particles"], f["sim_gen_particles"], f["data_reco_particles"] = reco, gen, data
    config = tmp_path / "unfold.yaml"
    config.write_text(f"unfold:\n  input: {arrays}\n  iterations: 1\n  epochs: 1\n")
    out = tmp_path / "o"
    result = runner.invoke(
        app, ["unfold", "--config", str(config), "--model", "deepsets", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with h5py.File(out / "weights.h5") as f:
        assert f["weights"].shape == (n,) and np.isfinite(f["weights"][()]).all()
    with h5py.File(arrays, "a") as f:
        del f["sim_gen_particles"]
    result = runner.invoke(
        app,
        ["unfold", "--config", str(config), "--model", "deepsets", "--out", str(tmp_path / "m")],
    )
    assert result.exit_code == 1
    assert "but not sim_gen_particles (particle sets: all or none)" in result.output


@pytest.mark.slow
def test_unfold_vincia_example_with_the_transformer(tmp_path, monkeypatch, one_thread):
    """Pythia default vs Vincia: one 1000-event task each, produced by the engine into parts."""
    monkeypatch.setenv("L1AD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "unf"
    args = ["unfold", "--example", "jets-vincia", "--events", "1000", "--iterations", "1"]
    args += ["--epochs", "1", "--model", "transformer", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(np.isfinite(v) for v in metrics["triangular_discriminator"]["omnifold"].values())
    assert (tmp_path / "cache" / "unfold_jets_vincia_1.parts" / "task-000000.npz").is_file()
