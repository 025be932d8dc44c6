"""``l1ad firmware --scan-latency``: latency against trigger efficiency over the score-feature knob."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make_toy_events
from typer.testing import CliRunner

from emulation import emulate_trigger
from firmware.example import default_model, toy_words
from firmware.latency_scan import feature_order, scan_latency, with_score_features
from l1ad.cli import app
from offline.ad.abcd import thresholds
from offline.events import Events, write_events
from offline.preprocess import to_hardware

FEATURES = tuple(range(12))
RATE_KHZ = 400.0  # 1 % of the bunch crossings


@pytest.fixture(scope="module")
def small():
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    return default_model(seed=4, n_fit=1000, quantile=0.9, ae_config=AEConfig(hidden=(), latent=2, bias=True),
                         quant_config=QuantConfig().uniform(4), score_outputs=FEATURES)  # fmt: skip


def _signal_words(n: int, seed: int) -> np.ndarray:
    words = toy_words(n, seed)
    words[:, 0::3] *= 3  # every pT three times larger
    return words


def test_feature_order_puts_constant_features_last():
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    spec, _ = default_model(seed=1, n_fit=500, ae_config=AEConfig(hidden=(), latent=2, bias=True),
                            quant_config=QuantConfig().uniform(4), score_outputs=(0, 1, 2, 4))  # fmt: skip
    words = np.zeros((100, 57), dtype=np.int64)
    rng = np.random.default_rng(0)
    words[:, 2] = (
        rng.integers(-50, 50, 100) << spec.preprocessing.shifts[2]
    )  # widest spread once shifted
    words[:, 0] = rng.integers(-5, 5, 100) << spec.preprocessing.shifts[0]
    # features 1 and 4 never vary: last, by index; feature 3 is not in the scores
    assert feature_order(spec, words) == [2, 0, 1, 4]


def test_scan_trades_latency_for_efficiency_and_counts_the_signal_like_a_second_implementation(
    small,
):
    spec, weights = small
    bkg = toy_words(3000, 11)
    sig = {"hot": _signal_words(500, 12)}
    frame = scan_latency(spec, weights, bkg, sig, 5.0, feature_counts=(12, 3), rate_khz=RATE_KHZ)
    assert list(frame["features"]) == [12, 3]
    assert (frame["latency_ns"] == frame["latency_cycles"] * 5.0).all()
    # the score's adder tree over 12 squares is ceil(log2 12) = 4 levels deep, over 3 squares 2: the rest is common
    assert frame["adder_levels"].iloc[0] - frame["adder_levels"].iloc[1] == 2
    assert frame["luts"].iloc[0] > frame["luts"].iloc[1]
    # oracle: thresholds on the background for 1 % (offline.ad.abcd), then signal in region A counted by hand
    order = feature_order(spec, bkg)
    for row, k in zip(frame.itertuples(), (12, 3), strict=True):
        point = with_score_features(spec, order[:k])
        b = emulate_trigger(point, weights, bkg)
        s = emulate_trigger(point, weights, sig["hot"])
        x, y = thresholds(b.r1_float, b.r2_float, None, RATE_KHZ / 40_000)
        expected = float(np.mean((s.r1_float > x) & (s.r2_float > y)))
        assert math.isclose(row.efficiency_hot, expected, abs_tol=1e-12)


def test_scan_rejects_a_feature_count_outside_the_scores(small):
    spec, weights = small
    with pytest.raises(ValueError, match=r"feature count 13 is not in 1\.\.12"):
        scan_latency(
            spec, weights, toy_words(100, 1), {"s": toy_words(10, 2)}, 5.0, feature_counts=(13,)
        )


def test_cli_scan_latency_writes_csv_json_png_and_needs_signals(small, tmp_path):
    spec, weights = small
    qdir = tmp_path / "quantized"
    spec.save(qdir, weights)
    bkg = write_events(tmp_path / "bkg.h5", make_toy_events(3000, seed=31))
    hot = make_toy_events(400, seed=32)
    particles = hot.particles.copy()
    particles[:, :, 0] *= 3.0
    sig = write_events(tmp_path / "hot.h5", Events(particles, hot.weights, hot.labels))
    runner = CliRunner(env={"COLUMNS": "200"})
    base = ["firmware", "--quantized", str(qdir), "--name", "small", "--output-root", str(tmp_path / "out"),
            "--scan-latency", "--events", str(bkg)]  # fmt: skip

    missing = runner.invoke(app, base)
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines() == [
        "error: --scan-latency needs background events (--events FILE) and at least one --signal NAME=PATH"
    ]
    assert not (tmp_path / "out").exists()

    result = runner.invoke(app, [*base, "--signal", f"hot={sig}", "--scan-features", "12,6,3"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "small-latency-scan"
    data = json.loads((out / "scan.json").read_text())
    assert [r["features"] for r in data["rows"]] == [12, 6, 3]
    assert data["rate_khz"] == 400.0 and data["clock_period_ns"] == 5.0
    assert all(0.0 <= r["efficiency_hot"] <= 1.0 for r in data["rows"])
    assert (out / "scan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        (out / "scan.csv")
        .read_text()
        .splitlines()[0]
        .startswith("features,adder_levels,latency_cycles,latency_ns")
    )
    assert "efficiency_hot" in result.output and "scan.png" in result.output
    # the same efficiency as the library computes from the words and event weights of the same files
    from offline.events.io import read_events

    b, s = read_events(bkg), read_events(sig)
    frame = scan_latency(spec, weights, to_hardware(b.features), {"hot": to_hardware(s.features)}, 5.0,
                         feature_counts=(12, 6, 3), rate_khz=400.0, background_weights=b.event_weights,
                         signal_weights={"hot": s.event_weights})  # fmt: skip
    assert [r["efficiency_hot"] for r in data["rows"]] == pytest.approx(
        list(frame["efficiency_hot"])
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--scan-features", "12,x"],
            "error: --scan-features expects comma-separated integers, got '12,x'",
        ),
        (["--rate", "0"], "error: --rate must be in (0, 40000) kHz, got 0"),
        (
            ["--scan-features", "13"],
            "error: feature count 13 is not in 1..12 (the scores' features)",
        ),
    ],
)
def test_cli_scan_latency_bad_options_are_one_line_and_write_nothing(
    small, tmp_path, extra, message
):
    spec, weights = small
    qdir = tmp_path / "quantized"
    spec.save(qdir, weights)
    bkg = write_events(tmp_path / "bkg.h5", make_toy_events(200, seed=3))
    args = ["firmware", "--quantized", str(qdir), "--name", "small", "--output-root", str(tmp_path / "out"),
            "--scan-latency", "--events", str(bkg), "--signal", f"s={bkg}", *extra]  # fmt: skip
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [message]
    assert not (tmp_path / "out").exists()
