"""`l1ad shower ...` end to end on tiny data."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from l1ad.cli import app
from offline.generative import read_showers
from offline.generative.io import Showers, write_showers

runner = CliRunner()


def _ok(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_simulate_train_sample_evaluate(tmp_path):
    ref, held, model, out = (
        tmp_path / "ref.h5",
        tmp_path / "held.h5",
        tmp_path / "model",
        tmp_path / "eval",
    )
    _ok(
        [
            "shower",
            "simulate",
            "--events",
            "120",
            "--out",
            str(ref),
            "--e-max",
            "2e4",
            "--seed",
            "1",
        ]
    )
    _ok(
        [
            "shower",
            "simulate",
            "--events",
            "60",
            "--out",
            str(held),
            "--e-max",
            "2e4",
            "--seed",
            "2",
        ]
    )
    data = read_showers(ref)
    assert data.showers.shape == (120, 368)
    assert np.all((data.incident_energies >= 1e3) & (data.incident_energies <= 2e4))
    _ok(
        [
            "shower",
            "train",
            "--data",
            str(ref),
            "--out",
            str(model),
            "--epochs",
            "2",
            "--steps",
            "4",
            "--distill",
            "2,1",
            "--distill-iterations",
            "3",
            "--voxel-width",
            "32",
            "--voxel-depth",
            "1",
            "--batch-size",
            "64",
            "--device",
            "cpu",
        ]
    )
    assert {p.name for p in model.iterdir()} >= {
        "teacher.safetensors",
        "distilled_2.safetensors",
        "distilled_1.safetensors",
        "training.json",
        "losses.png",
    }
    sampled = tmp_path / "s.h5"
    _ok(
        [
            "shower",
            "sample",
            "--model",
            str(model),
            "--sampler",
            "distilled_1",
            "--energies",
            str(held),
            "--out",
            str(sampled),
            "--device",
            "cpu",
        ]
    )
    with h5py.File(sampled) as f:
        assert f["showers"].shape == (60, 368)
    # The "generated" sample under test is the held-out reference with every voxel halved: an
    # answer known without the evaluator. W1 of E_tot/E_inc between X and X/2 is mean(X)/2; widths
    # are scale-invariant (W1 = 0); a classifier on voxel/E_inc sees the halved energy at once.
    halved = tmp_path / "halved.h5"
    held_data = read_showers(held)
    write_showers(halved, Showers(held_data.incident_energies, held_data.showers / 2))
    _ok(
        [
            "shower",
            "evaluate",
            "--reference",
            str(held),
            "--model",
            str(model),
            "--out",
            str(out),
            "--generated",
            str(halved),
            "--classifier-epochs",
            "2",
            "--device",
            "cpu",
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"gflash", "full", "distilled_2", "distilled_1", "halved"}
    for name, entry in metrics.items():
        assert "Etot_over_Einc" in entry["w1"] and "width_x_layer1" in entry["w1"]
        assert (entry["ms_per_shower"] is None) == (name == "halved")
    ratio = held_data.showers.astype(np.float64).sum(axis=1) / held_data.incident_energies.reshape(
        -1
    )
    assert metrics["halved"]["w1"]["Etot_over_Einc"] == pytest.approx(ratio.mean() / 2, rel=1e-6)
    assert metrics["halved"]["w1"]["width_x_layer1"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["halved"]["auc_low_level"] > 0.9
    assert (out / "average_images.png").stat().st_size > 0 and (out / "features.png").is_file()


def test_evaluate_gflash_against_itself_is_indistinguishable(tmp_path):
    ref = tmp_path / "ref.h5"
    _ok(
        [
            "shower",
            "simulate",
            "--events",
            "400",
            "--out",
            str(ref),
            "--e-max",
            "1e4",
            "--seed",
            "3",
        ]
    )
    _ok(
        [
            "shower",
            "evaluate",
            "--reference",
            str(ref),
            "--out",
            str(tmp_path / "e"),
            "--classifier-epochs",
            "5",
            "--device",
            "cpu",
            "--no-plots",
        ]
    )
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(metrics) == {"gflash"}
    assert 0.35 < metrics["gflash"]["auc_high_level"] < 0.65


def test_bad_input_gives_one_clear_error(tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["incident_energies"] = np.ones((3, 1)) * 1e3
        f["showers"] = np.ones((3, 100))
    result = runner.invoke(
        app, ["shower", "evaluate", "--reference", str(bad), "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 1
    assert (
        "100 voxels" in result.output
        and "368" in result.output
        and "Traceback" not in result.output
    )
    result = runner.invoke(
        app,
        [
            "shower",
            "sample",
            "--model",
            str(tmp_path),
            "--out",
            str(tmp_path / "x.h5"),
            "--events",
            "3",
        ],
    )
    assert result.exit_code == 1 and "no teacher.safetensors" in " ".join(result.output.split())
