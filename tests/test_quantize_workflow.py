"""End to end: float checkpoint -> QAT -> FirmwareSpec, as the pipeline stage and the CLI run it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import run_one_step
from typer.testing import CliRunner

from l1ad.cli import app
from l1ad.pipeline import step_defaults
from l1ad.steps import quantize as step
from offline.ad.train import TrainConfig
from offline.ad.workflow import train_from_file
from offline.events import write_events
from quantize import load_spec, load_weights
from quantize.qat import weight_sparsity

RATE = 2000.0  # kHz: FPR 5 %, resolvable on ~800 test background events


@pytest.fixture(scope="module")
def float_run(tmp_path_factory):
    from conftest import make_toy_events

    root = tmp_path_factory.mktemp("quantize_e2e")
    bkg = make_toy_events(4000, 21, "wlnu")
    sig = make_toy_events(800, 22, "Ato4l")
    sig.particles[:, 1:9, 0] *= 3.0  # harder leptons: separable from the toy background
    write_events(root / "bkg.h5", bkg, {"process": "wlnu"})
    write_events(root / "sig.h5", sig, {"process": "Ato4l"})
    train_from_file(
        root / "bkg.h5",
        root / "float",
        TrainConfig(epochs=6, batch_size=256, lam=10.0, progress=False),
    )
    return root


def test_pipeline_stage_writes_a_loadable_spec_and_keeps_float_tpr(float_run, tmp_path):
    config = {"seed": 1234, **step_defaults()}
    config["quantize"] = {
        **config["quantize"],
        "rate_khz": RATE,
        "qat": {**config["quantize"]["qat"], "epochs": 2, "batch_size": 256, "sparsity": 0.3},
    }
    events = SimpleNamespace(
        background=float_run / "bkg.h5", signals={"Ato4l": float_run / "sig.h5"}
    )
    result, figures, text = run_one_step(
        step, config, tmp_path, events=events, ad=SimpleNamespace(checkpoint=float_run / "float")
    )
    summary = figures["quantize"]

    assert summary["framework"] == "brevitas"
    spec = load_spec(summary["spec"])
    weights = load_weights(spec, summary["spec"])
    assert weight_sparsity(weights) >= 0.3
    assert result.spec_path.exists() and all(
        p.suffix == ".onnx" and p.exists() for p in result.models.values()
    )
    ratio = summary["tpr_ratio_vs_float"]["Ato4l"]
    table = pd.read_csv(tmp_path / "quantize" / "comparison.csv", index_col=0)
    assert table.loc["Ato4l", "tpr_float"] > 0.1  # the check below means something
    assert ratio >= 0.5, f"quantized keeps only {ratio:.2f} of the float TPR"
    assert "Float vs quantized" in text
    metrics = json.loads((tmp_path / "quantize" / "metrics.json").read_text())
    assert metrics["thresholds"] == [spec.trigger.threshold_r1, spec.trigger.threshold_r2]


def test_cli_scan_of_a_run_directory_writes_table_and_pareto_plot(float_run, tmp_path):
    """``--run`` finds the ad checkpoint and, through the ad scores files, the signal event files."""
    from offline.ad.score import score_file

    run_dir = tmp_path / "run"
    shutil.copytree(float_run / "float", run_dir / "ad" / "model")
    score_file(
        run_dir / "ad" / "model",
        float_run / "sig.h5",
        run_dir / "ad" / "scores" / "Ato4l.h5",
        progress=False,
    )
    out = tmp_path / "scan"
    result = CliRunner().invoke(
        app,
        [
            "quantize",
            "--run",
            str(run_dir),
            "--scan",
            "--scan-bits",
            "4,8",
            "--scan-sparsity",
            "0",
            "--epochs",
            "1",
            "--batch-size",
            "256",
            "--rate-khz",
            str(RATE),
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "scan.csv")
    assert list(frame["model"]) == ["float", "quantized", "quantized"]
    q = frame[frame["model"] == "quantized"].set_index("bits")
    assert q.loc[4, "bops"] < q.loc[8, "bops"] < frame["bops"].iloc[0]
    assert "auc_Ato4l" in frame and frame["pareto"].any() and (out / "scan.png").stat().st_size > 0


def test_metrics_name_the_checkpoints_background_file_when_none_is_passed(float_run, tmp_path):
    """Without ``--events`` QAT reads the file recorded in the checkpoint; metrics.json names that
    file (it once wrote the string "None")."""
    out = tmp_path / "q"
    result = CliRunner().invoke(
        app,
        [
            "quantize",
            "--checkpoint",
            str(float_run / "float"),
            "--epochs",
            "1",
            "--batch-size",
            "256",
            "--rate-khz",
            str(RATE),
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["background"] == str(float_run / "bkg.h5")


def test_cli_without_checkpoint_fails_with_one_line():
    result = CliRunner().invoke(app, ["quantize"])
    assert result.exit_code == 1 and "pass --checkpoint or --run" in result.output


def test_find_run_inputs_names_checkpoint_and_signal_files_of_a_run(tmp_path):
    import numpy as np

    from offline.ad.score import Scores, write_scores
    from quantize.workflow import find_run_inputs

    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="no ad checkpoint"):
        find_run_inputs(run_dir)
    (run_dir / "ad" / "model").mkdir(parents=True)
    (run_dir / "ad" / "model" / "config.json").write_text("{}")
    assert find_run_inputs(str(run_dir)) == (run_dir / "ad" / "model", {})  # no scores yet
    scores = Scores(np.zeros(3), np.zeros(3), np.ones(3), np.zeros(3, np.int32))
    write_scores(run_dir / "ad" / "scores" / "Ato4l.h5", scores, {"events": "/data/ato4l.h5"})
    write_scores(
        run_dir / "ad" / "scores" / "background_test.h5", scores, {"events": "/data/bkg.h5"}
    )
    write_scores(run_dir / "ad" / "scores" / "other.h5", scores)  # names no event file
    checkpoint, signals = find_run_inputs(run_dir)
    assert checkpoint == run_dir / "ad" / "model"
    assert signals == {"Ato4l": Path("/data/ato4l.h5")}
