"""Training of the pair: decorrelation by λ, checkpoints, resume, early stopping, bad settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_toy_events

from offline.ad import (
    ArraySource,
    AutoencoderPair,
    TrainConfig,
    distance_correlation,
    evaluate,
    fit_preprocessing,
    inputs,
    load_config,
    load_pair,
    pair_loss,
    preset,
    score_inputs,
    train_pair,
)
from offline.ad import train as train_module
from offline.ad.disco import dense_disco_sq
from offline.artifacts import read_json, write_json


@pytest.fixture(scope="module")
def data():
    events = make_toy_events(2400, seed=11)
    pre = fit_preprocessing(events[:1500])
    x, w = inputs(events, pre), events.event_weights
    return {
        "train": (x[:1500], w[:1500]),
        "val": (x[1500:1800], w[1500:1800]),
        "test": (x[1800:], w[1800:]),
    }


def _train(data, out, **kw):
    settings = {
        "epochs": 12,
        "batch_size": 250,
        "patience": 100,
        "progress": False,
        "seed": 5,
        **kw,
    }
    return train_pair(*data["train"], *data["val"], TrainConfig(**settings), out)


def _weights(path):
    return {k: v.clone() for k, v in load_pair(path).state_dict().items()}


def test_lambda_lowers_held_out_distance_correlation(data, tmp_path):
    dcors = {}
    for lam in (0.0, 100.0):
        _train(data, tmp_path / str(lam), lam=lam, epochs=8, lr=3e-3)
        r1, r2 = score_inputs(load_pair(tmp_path / str(lam)), data["test"][0])
        dcors[lam] = distance_correlation(r1, r2, data["test"][1])
    assert dcors[0.0] > 0.8
    assert dcors[100.0] < 0.6 * dcors[0.0]


def test_checkpoint_holds_config_weights_metrics_and_plot(data, tmp_path):
    result = _train(data, tmp_path, epochs=3, lam=10.0)
    for name in (
        "config.json",
        "model.safetensors",
        "last.safetensors",
        "state.json",
        "metrics.json",
        "loss.png",
    ):
        assert (tmp_path / name).exists(), name
    arch, cfg, _ = load_config(tmp_path)
    assert arch == preset("firmware") and cfg.lam == 10.0
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["epochs_run"] == 3 and len(metrics["history"]) == 3
    assert metrics["events_per_second"] > 0 and result.best_epoch in (0, 1, 2)
    names = list(load_pair(tmp_path).state_dict())
    assert "ae1.layers.0.weight" in names and "ae2.layers.3.bias" in names


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(data, tmp_path):
    _train(data, tmp_path / "straight", epochs=3, lam=10.0)
    _train(data, tmp_path / "resumed", epochs=2, lam=10.0)
    result = train_pair(
        *data["train"],
        *data["val"],
        TrainConfig(epochs=3, batch_size=250, patience=100, progress=False, seed=5, lam=10.0),
        tmp_path / "resumed",
        resume=True,
    )
    assert result.epochs_run == 3
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    with pytest.raises(ValueError, match="cannot resume, lam"):
        train_pair(
            *data["train"],
            *data["val"],
            TrainConfig(epochs=4, batch_size=250, progress=False, seed=5, lam=1.0),
            tmp_path / "resumed",
            resume=True,
        )


def test_a_checkpoint_torn_between_weights_and_state_is_refused_on_resume(data, tmp_path):
    # what SIGKILL between the two writes leaves: epoch 1's weights, epoch 0's state
    _train(data, tmp_path, epochs=2, lam=10.0)
    state = read_json(tmp_path / "state.json")
    state["epoch"], state["history"] = 0, state["history"][:1]
    write_json(tmp_path / "state.json", state)
    settings = TrainConfig(epochs=3, batch_size=250, patience=100, progress=False, seed=5, lam=10.0)
    with pytest.raises(
        ValueError, match=r"last\.safetensors holds epoch 1 but state\.json epoch 0"
    ):
        train_pair(*data["train"], *data["val"], settings, tmp_path, resume=True)


def test_early_stopping_stops_after_patience_without_improvement(data, tmp_path):
    result = _train(data, tmp_path, epochs=20, patience=2, min_delta=1e9)
    assert (
        result.stopped_early and result.epochs_run == 3
    )  # epoch 0 sets the best, 2 more without gain
    assert result.best_epoch == 0


def test_best_checkpoint_follows_the_monitored_validation_figure(data, tmp_path):
    # at λ = 100 DisCo lowers the loss while it costs reconstruction: the two figures disagree
    best = {}
    for monitor in ("loss", "reconstruction"):
        result = _train(data, tmp_path / monitor, lam=100.0, monitor=monitor)
        figure = [
            row["val_loss"] if monitor == "loss" else row["val_r1"] + row["val_r2"]
            for row in result.history
        ]
        assert result.best_epoch == int(np.argmin(figure))
        best[monitor] = result.best_epoch
    assert best["loss"] != best["reconstruction"]


def test_validation_watches_disco_on_a_capped_subset_only_when_it_is_not_trained(data, monkeypatch):
    monkeypatch.setattr(train_module, "DISCO_WATCH_EVENTS", 100)
    x, w = data["val"]  # 300 events, one batch
    model = AutoencoderPair(preset("firmware")).eval()
    with torch.no_grad():
        r1, r2 = model(torch.as_tensor(x))
    wt = torch.as_tensor(w, dtype=torch.float32)
    watched = evaluate(model, ArraySource(x, w), 0.0, 300, amp=False)
    trained = evaluate(model, ArraySource(x, w), 1.0, 300, amp=False)
    assert watched["disco"] == pytest.approx(float(dense_disco_sq(r1[:100], r2[:100], wt[:100])))
    assert trained["disco"] == pytest.approx(float(dense_disco_sq(r1, r2, wt)))
    assert watched["loss"] == pytest.approx(watched["r1"] + watched["r2"])


def test_pair_loss_is_weighted_means_plus_lambda_disco():
    torch.manual_seed(0)
    r1, r2, w = torch.rand(64), torch.rand(64), torch.rand(64) + 0.5
    parts = pair_loss(r1, r2, w, 3.0)
    expected = (w * r1).sum() / w.sum() + (w * r2).sum() / w.sum() + 3.0 * parts.disco
    assert float(parts.total) == pytest.approx(float(expected), rel=1e-6)
    assert parts.disco > 0
    assert pair_loss(r1, r2, w, 0.0).disco == 0.0


def test_paper_preset_trains_without_biases(data, tmp_path):
    _train(data, tmp_path, epochs=1, preset="paper", batch_size=500)
    model = load_pair(tmp_path)
    assert model.config == preset("paper")
    assert not any(name.endswith("bias") for name in model.state_dict())


def test_same_seed_gives_same_model(data, tmp_path):
    _train(data, tmp_path / "a", epochs=1)
    _train(data, tmp_path / "b", epochs=1)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"lam": -1.0}, "lambda"),
        ({"batch_size": 1}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "learning rate"),
        ({"preset": "huge"}, "unknown architecture"),
        ({"monitor": "auc"}, "monitor must be one of loss, reconstruction"),
    ],
)
def test_bad_training_settings_are_rejected(settings, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**settings)


def test_missing_or_mismatched_checkpoint_is_reported(tmp_path):
    with pytest.raises(ValueError, match=r"config\.json"):
        load_pair(tmp_path)
    pair = AutoencoderPair(preset("firmware"))
    from offline.ad.train import _save_weights, save_config

    save_config(tmp_path, preset("paper"), TrainConfig())
    _save_weights(tmp_path / "model.safetensors", pair)
    with pytest.raises(ValueError, match="do not match"):
        load_pair(tmp_path)


def test_too_few_events_for_a_batch_is_an_error(tmp_path):
    x = np.zeros((1, 57), np.float32)
    with pytest.raises(ValueError, match="too few"):
        train_pair(
            x,
            np.ones(1),
            np.zeros((4, 57), np.float32),
            np.ones(4),
            TrainConfig(progress=False),
            tmp_path,
        )


@pytest.mark.gpu
def test_cuda_training_with_amp_gives_finite_losses(data, tmp_path):
    result = _train(data, tmp_path, epochs=2, device="cuda", amp=True)
    assert all(np.isfinite(h["train_loss"]) for h in result.history)
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["device"].startswith("cuda") and metrics["amp"] is True
