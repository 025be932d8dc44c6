"""Streamed training from HDF5 equals in-memory training; resume refuses changed inputs; bad checkpoints refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_toy_events
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from l1ad.cli import app
from offline.ad import TrainConfig, load_pair
from offline.ad.data import ArraySource, EventFileSource, chunk_order, load_chunks, split_indices
from offline.ad.workflow import train_from_file
from offline.artifacts import read_json
from offline.events import write_events
from offline.preprocess import Preprocessing

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    write_events(root / "a.h5", make_toy_events(2000, seed=31))
    write_events(root / "b.h5", make_toy_events(2000, seed=32))
    train_from_file(root / "a.h5", root / "ckpt", _config(epochs=1))  # one epoch, copied by tests
    return root


def _checkpoint(files, tmp_path):
    return Path(shutil.copytree(files / "ckpt", tmp_path / "ckpt"))


def _config(**kw):
    return TrainConfig(
        **{
            "epochs": 2,
            "batch_size": 200,
            "patience": 100,
            "progress": False,
            "seed": 4,
            "lam": 20.0,
            "shuffle_chunk": 150,
            "shuffle_group": 3,
            **kw,
        }
    )


def test_chunk_order_visits_every_event_once_per_epoch_and_reshuffles():
    orders = []
    for epoch in (0, 1):
        positions = [
            np.concatenate([np.arange(c * 7, min(c * 7 + 7, 50)) for c in ids])[perm]
            for ids, perm in chunk_order(50, 7, 3, seed=1, epoch=epoch)
        ]
        order = np.concatenate(positions)
        assert sorted(order.tolist()) == list(range(50))
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
    again = [p for _, p in chunk_order(50, 7, 3, seed=1, epoch=0)]
    assert all(
        np.array_equal(a, b)
        for a, b in zip(again, [p for _, p in chunk_order(50, 7, 3, 1, 0)], strict=True)
    )


def test_file_source_reads_the_same_rows_as_memory(files):
    from offline.ad.data import inputs
    from offline.events import read_events

    events = read_events(files / "a.h5")
    split = split_indices(len(events), 4)
    pre = Preprocessing.fit(np.array([[0] * 57, [4] * 57]))
    memory = ArraySource(inputs(events[split.train], pre), events[split.train].event_weights)
    streamed = EventFileSource(files / "a.h5", split.train, pre)
    for ids in ([0], [3, 1], [len(split.train) // 150]):
        for a, b in zip(
            load_chunks(memory, np.array(ids), 150),
            load_chunks(streamed, np.array(ids), 150),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


def test_streamed_training_equals_in_memory_training(files, tmp_path):
    memory = train_from_file(files / "a.h5", tmp_path / "memory", _config())
    streamed = train_from_file(files / "a.h5", tmp_path / "streamed", _config(), stream=True)
    assert (tmp_path / "memory" / "preprocessing.json").read_text() == (
        tmp_path / "streamed" / "preprocessing.json"
    ).read_text()
    assert memory.history == streamed.history  # same batches, same losses, exactly
    a, b = (
        load_pair(tmp_path / "memory").state_dict(),
        load_pair(tmp_path / "streamed").state_dict(),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and it trained: weights left the seeded initialisation
    torch.manual_seed(4)
    from offline.ad import AutoencoderPair, preset

    init = AutoencoderPair(preset("firmware")).state_dict()
    assert max(float((init[k] - a[k]).abs().max()) for k in a) > 1e-3


def test_streaming_needs_a_shuffle_chunk(files, tmp_path):
    with pytest.raises(ValueError, match="shuffle_chunk > 0"):
        train_from_file(files / "a.h5", tmp_path, _config(shuffle_chunk=0), stream=True)


def test_resume_after_interrupt_is_bit_identical_when_streamed(files, tmp_path):
    train_from_file(files / "a.h5", tmp_path / "straight", _config(epochs=2), stream=True)
    train_from_file(files / "a.h5", tmp_path / "resumed", _config(epochs=1), stream=True)
    train_from_file(
        files / "a.h5", tmp_path / "resumed", _config(epochs=2), resume=True, stream=True
    )
    a, b = (
        load_pair(tmp_path / "straight").state_dict(),
        load_pair(tmp_path / "resumed").state_dict(),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


def _snapshot(path):
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"background": "b.h5"}, "the background inputs differ"),
        ({"settings": {"lam": 5.0}}, "lam was 20.0, now 5.0"),
        ({"settings": {"shuffle_chunk": 100}}, "shuffle_chunk was 150, now 100"),
        ({"settings": {"patience": 3}}, "patience was 100, now 3"),
    ],
)
def test_resume_refuses_other_inputs_or_settings_and_writes_nothing(files, tmp_path, change, match):
    ckpt = _checkpoint(files, tmp_path)
    before = _snapshot(ckpt)
    background = files / change.get("background", "a.h5")
    with pytest.raises(ValueError, match=match):
        train_from_file(
            background, ckpt, _config(epochs=2, **change.get("settings", {})), resume=True
        )
    assert _snapshot(ckpt) == before


def test_resume_accepts_more_epochs_another_device_and_no_progress_bar(files, tmp_path):
    ckpt = _checkpoint(files, tmp_path)
    train_from_file(
        files / "a.h5", ckpt, _config(epochs=2, progress=False, device="cpu"), resume=True
    )
    assert read_json(ckpt / "state.json")["epoch"] == 1


def test_cli_resume_on_another_file_is_one_line_and_leaves_the_checkpoint(files, tmp_path):
    out = tmp_path / "ckpt"
    args = [
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "200",
        "--no-progress",
        "--lambda",
        "20",
    ]
    assert runner.invoke(app, ["train", str(files / "a.h5"), *args]).exit_code == 0
    before = _snapshot(out)
    result = runner.invoke(app, ["train", str(files / "b.h5"), *args, "--resume"])
    assert result.exit_code == 1 and "cannot resume, the background inputs differ" in result.output
    assert "Traceback" not in result.output and _snapshot(out) == before


def test_streamed_cli_training_runs(files, tmp_path):
    out = tmp_path / "s"
    result = runner.invoke(
        app,
        [
            "train",
            str(files / "a.h5"),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "200",
            "--no-progress",
            "--stream",
            "--shuffle-chunk",
            "256",
        ],
    )
    assert result.exit_code == 0, result.output
    assert read_json(out / "config.json")["train"]["shuffle_chunk"] == 256


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_checkpoint_with_non_finite_weights_is_refused_naming_file_and_tensor(files, tmp_path, bad):
    ckpt = _checkpoint(files, tmp_path)
    weights = ckpt / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["ae2.layers.1.weight"][0, 0] = float(bad)
    save_file(tensors, str(weights))
    with pytest.raises(
        ValueError, match=r"model\.safetensors: .*tensor 'ae2\.layers\.1\.weight' holds NaN or inf"
    ):
        load_pair(ckpt)
    result = runner.invoke(
        app, ["score", str(ckpt), str(files / "a.h5"), "--out", str(tmp_path / "s.h5")]
    )
    assert result.exit_code == 1 and "ae2.layers.1.weight" in result.output
    assert not (tmp_path / "s.h5").exists()


def test_truncated_checkpoint_is_a_clear_error(files, tmp_path):
    ckpt = _checkpoint(files, tmp_path)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_pair(ckpt)
