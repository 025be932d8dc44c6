"""``l1ad quantize`` writes its directory whole or not at all, with nothing but its outputs in it."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import make_toy_events
from typer.testing import CliRunner

from l1ad.cli import app
from offline.ad.train import TrainConfig
from offline.ad.workflow import train_from_file
from offline.artifacts import MARKER_FILE
from offline.events import write_events

runner = CliRunner(env={"COLUMNS": "300"})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantize_outputs")
    write_events(root / "bkg.h5", make_toy_events(1500, 3, "wlnu"), {"process": "wlnu"})
    sig = make_toy_events(300, 4, "Ato4l")
    sig.particles[:, 1:9, 0] *= 3.0
    write_events(root / "sig.h5", sig, {"process": "Ato4l"})
    train_from_file(
        root / "bkg.h5",
        root / "float",
        TrainConfig(epochs=2, batch_size=256, lam=10.0, progress=False),
    )
    return root


def _quantize(checkpoint, out, *extra):
    return runner.invoke(
        app,
        [
            "quantize",
            "--checkpoint",
            str(checkpoint / "float"),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "512",
            "--rate-khz",
            "2000",
            "--no-progress",
            *extra,
        ],
    )


def test_a_nan_signal_file_stops_quantize_before_anything_is_written(checkpoint, tmp_path):
    bad = tmp_path / "nan.h5"
    shutil.copy(checkpoint / "sig.h5", bad)
    with h5py.File(bad, "r+") as f:
        f["Particles"][7, 2, 0] = np.nan
    result = _quantize(checkpoint, tmp_path / "q", "--signal", f"Ato4l={bad}")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert (
        len(lines) == 1 and "nan.h5" in lines[0] and "NaN or inf (first at event 7)" in lines[0]
    ), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nan.h5"
    ]  # no spec.json a firmware build could pick up


def test_a_successful_quantize_holds_only_its_outputs(checkpoint, tmp_path):
    out = tmp_path / "q"
    result = _quantize(checkpoint, out, "--signal", f"Ato4l={checkpoint / 'sig.h5'}")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "spec.json",
            "weights.safetensors",
            "ae1.onnx",
            "ae2.onnx",
            "comparison.csv",
            "metrics.json",
            MARKER_FILE,
        ]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "q"
    ]  # no temporary or lock beside it either
    assert json.loads((out / "metrics.json").read_text())["spec"] == str(out / "spec.json")
    # a foreign folder it never touches (replacing its own earlier output: tests/test_artifacts.py)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = _quantize(checkpoint, tmp_path / "mine")
    assert result.exit_code == 1 and "mine: exists and is not an l1ad output" in result.output
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
