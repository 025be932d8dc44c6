"""``l1ad train|score|abcd`` through the CLI, the ``ad`` pipeline stage, and bad inputs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_toy_events, run_one_step
from typer.testing import CliRunner

from l1ad.cli import app
from l1ad.steps import ad
from offline.ad import read_scores
from offline.ad.abcd import abcd_scan, max_abs_closure_pull
from offline.events import Events, write_events
from offline.events.schema import SIGNAL_PROCESSES

runner = CliRunner()


def _signal(n: int, seed: int, process: str) -> Events:
    """Toy signal: the toy layout with every pT scaled up, so its reconstruction errors are larger."""
    ev = make_toy_events(n, seed, process)
    particles = ev.particles.copy()
    particles[:, :, 0] *= 3.0
    return Events(particles, ev.weights, ev.labels)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ad_cli")
    bkg = write_events(root / "bkg.h5", make_toy_events(3000, seed=31))
    sig = {
        p: write_events(root / f"{p}.h5", _signal(400, 40 + i, p))
        for i, p in enumerate(SIGNAL_PROCESSES)
    }
    return root, bkg, sig


def test_train_score_abcd_commands(files):
    root, bkg, sig = files
    model = root / "model"
    result = runner.invoke(
        app,
        [
            "train",
            str(bkg),
            "--out",
            str(model),
            "--epochs",
            "3",
            "--batch-size",
            "500",
            "--lambda",
            "50",
            "--no-progress",
            "--seed",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (model / "model.safetensors").exists() and (model / "preprocessing.json").exists()

    result = runner.invoke(
        app,
        [
            "score",
            str(model),
            str(sig["Ato4l"]),
            "--out",
            str(root / "s.h5"),
            "--chunk-size",
            "150",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = read_scores(root / "s.h5")
    assert len(scores) == 400 and np.isfinite(scores.r1).all() and (scores.labels == 4).all()
    result = runner.invoke(app, ["score", str(model), str(bkg), "--out", str(root / "b.h5")])
    assert result.exit_code == 0, result.output

    result = runner.invoke(
        app,
        [
            "abcd",
            str(root / "b.h5"),
            "--signal",
            f"Ato4l={root / 's.h5'}",
            "--out",
            str(root / "abcd"),
            "--min-region-events",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Ato4l" in result.output
    metrics = json.loads((root / "abcd" / "metrics.json").read_text())
    assert metrics["ad"]["auc"]["Ato4l"] > 0.8
    for png in ("roc.png", "abcd_plane.png", "abcd_closure.png", "abcd_significance.png"):
        assert (root / "abcd" / png).exists()


def test_lambda_scan_command_tabulates_dcor_and_auc(files):
    root, bkg, sig = files
    out = root / "scan"
    result = runner.invoke(
        app,
        [
            "train",
            str(bkg),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--batch-size",
            "500",
            "--no-progress",
            "--lambda-scan",
            "0,100",
            "--signal",
            f"Ato4l={sig['Ato4l']}",
        ],
    )
    assert result.exit_code == 0, result.output
    text = (out / "lambda_scan.csv").read_text()
    assert (
        text.splitlines()[0] == "lambda,dcor_background,auc_Ato4l" and len(text.splitlines()) == 3
    )
    assert (out / "lambda_scan.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.h5"], "does not exist"),
        (["train", "{bkg}", "--lambda", "-1"], "lambda"),
        (["train", "{bkg}", "--preset", "big"], "unknown architecture"),
        (["train", "{bkg}", "--lambda-scan", "a,b"], "comma-separated"),
        (["score", "{root}", "{bkg}"], "config.json"),
        (["abcd", "{bkg}"], "not a scores file"),
        (["abcd", "{root}/b.h5", "--signal", "nonsense"], "NAME=PATH"),
    ],
)
def test_bad_inputs_print_one_line_errors(files, args, message):
    root, bkg, _ = files
    args = [a.format(bkg=bkg, root=root) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_pipeline_stage_fills_summary_report_and_artifacts(files, tmp_path):
    _, bkg, sig = files
    config = {
        "seed": 3,
        NAME: {**ad.DEFAULTS, "epochs": 3, "batch_size": 500, "min_region_events": 5},
    }
    result, figures, text = run_one_step(
        ad, config, tmp_path, events=SimpleNamespace(background=bkg, signals=sig)
    )
    json.dumps(figures, allow_nan=False)
    assert set(figures["ad"]["auc"]) == set(SIGNAL_PROCESSES)
    assert all(v > 0.5 for v in figures["ad"]["auc"].values())
    assert all(
        v is None for v in figures["ad"]["tpr_at_fpr_1e-5"].values()
    )  # 600 test events cannot resolve 1e-5
    held_out = read_scores(result.scores["background_test"])
    assert figures["ad"]["dcor_background"] == pytest.approx(
        _textbook_dcor(held_out.r1, held_out.r2, held_out.weights), rel=1e-9
    )
    assert set(figures["abcd"]["significance"]) == set(SIGNAL_PROCESSES)
    # Three epochs leave R1 and R2 almost fully dependent, so region C is empty at every ε_B: a pull
    # from an empty region would be meaningless and none is quoted (the toy test above checks real pulls).
    assert (
        figures["ad"]["dcor_background"] > 0.9 and figures["abcd"]["max_abs_closure_pull"] is None
    )
    assert (
        result.preprocessing.exists()
        and result.checkpoint.is_dir()
        and result.scores["Ato4l"].exists()
    )
    assert "ABCD background estimate" in text and "roc.png" in text and "loss.png" in text


def _textbook_dcor(x, y, w) -> float:
    """Weighted distance correlation by explicit double centring of the N×N distance matrices."""
    x, y, w = (np.asarray(v, dtype=np.float64) for v in (x, y, w))
    w = w * (len(w) / w.sum())

    def centred(v):
        d = np.abs(v[:, None] - v[None, :])
        row = d @ w / len(w)
        return d - row[:, None] - row[None, :] + (w @ row) / len(w)

    a, b = centred(x), centred(y)

    def dcov(p, q):
        return w @ (p * q) @ w / len(w) ** 2

    return float(np.sqrt(dcov(a, b) / np.sqrt(dcov(a, a) * dcov(b, b))))


def test_abcd_closure_holds_for_independent_scores_and_fails_for_correlated_ones():
    """The closure pull is a pull: |pull| < 3 at every ε_B when R1 ⟂ R2, far beyond when they are correlated."""
    rng = np.random.default_rng(9)
    n = 200_000
    r1, r2, noise = rng.exponential(1.0, n), rng.exponential(1.0, n), rng.exponential(1.0, n)
    independent = abcd_scan(r1, r2, np.ones(n), min_events=50)
    assert independent["pull"].notna().all()
    assert max_abs_closure_pull(independent) < 3
    assert max_abs_closure_pull(abcd_scan(r1, r1 + 0.5 * noise, np.ones(n), min_events=50)) > 10


def test_textbook_dcor_oracle_sees_dependence():
    rng = np.random.default_rng(3)
    x = rng.normal(size=400)
    assert _textbook_dcor(x, x**2, np.ones(400)) > 0.3  # uncorrelated but dependent
    assert _textbook_dcor(x, rng.normal(size=400), np.ones(400)) < 0.15
    assert _textbook_dcor(x, 2 * x + 1, rng.uniform(0.5, 1.5, 400)) == pytest.approx(1.0)


def test_pipeline_stage_without_the_events_step_names_it(tmp_path):
    with pytest.raises(ValueError, match=r"^step 'ad' needs 'events' to have run first$"):
        run_one_step(ad, {"seed": 1, NAME: ad.DEFAULTS}, tmp_path)


NAME = ad.NAME
