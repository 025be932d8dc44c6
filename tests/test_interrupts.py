"""SIGTERM (batch systems) and Ctrl-C on real ``l1ad`` processes: non-zero exit, nothing partial,
and ``train --resume`` carries an interrupted training on to the uninterrupted result, bit for bit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_toy_events
from safetensors.numpy import load_file
from test_run_e2e import l1ad_env, tiny_workspace

from offline.events import write_events


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    # SIGINT back to its default, so that Python turns it into KeyboardInterrupt even when this
    # test itself runs in a background job (which starts with SIGINT ignored)
    return subprocess.Popen(
        [sys.executable, "-m", "l1ad", *args], cwd=cwd, env=l1ad_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(
                f"the process ended (exit {process.returncode}) before it was interrupted:\n"
                f"{process.stderr.read()[-3000:]}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the process to get going")
        time.sleep(0.05)


def _interrupt(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def _leftovers(root: Path) -> list[str]:
    """Temporary files and directories of the atomic writers, anywhere under root."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if ".partial" in p.name or p.name.endswith(".tmp")
    )


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGINT"],
)
def test_interrupted_run_exits_non_zero_and_leaves_no_run_directory(tmp_path, signum):
    config = tiny_workspace(tmp_path)
    process = _start(["run", "--config", str(config)], tmp_path)
    # interrupted in the middle of the training step, after the events step wrote its outputs
    _wait_for(lambda: any((tmp_path / "runs").glob(".tiny.*.partial/ad")), process)
    code, err = _interrupt(process, signum)
    assert code != 0, err
    if signum == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    runs = tmp_path / "runs"
    assert (
        sorted(p.name for p in runs.iterdir()) if runs.exists() else []
    ) == []  # no run, no latest
    assert not (tmp_path / "hls_projects").exists()
    assert _leftovers(tmp_path) == []


def _train_args(background: Path, out: Path, epochs: int) -> list[str]:
    return [
        "train",
        str(background),
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        "--batch-size",
        "100",
        "--patience",
        "1000",
        "--lambda",
        "50",
        "--seed",
        "2",
        "--device",
        "cpu",
        "--no-progress",
    ]


def _epoch(state: Path) -> int:
    try:
        return json.loads(state.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return -1


@pytest.mark.slow
def test_interrupted_training_leaves_a_consistent_checkpoint_and_resume_reproduces_the_full_run(
    tmp_path,
):
    background = write_events(tmp_path / "bkg.h5", make_toy_events(1200, seed=21))
    epochs = 6

    full = subprocess.run(
        [sys.executable, "-m", "l1ad", *_train_args(background, tmp_path / "full", epochs)],
        cwd=tmp_path,
        env=l1ad_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert full.returncode == 0, full.stderr[-3000:]

    out = tmp_path / "interrupted"
    process = _start(_train_args(background, out, epochs), tmp_path)
    _wait_for(lambda: _epoch(out / "state.json") >= 1, process)
    code, err = _interrupt(process, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert _leftovers(tmp_path) == []
    stopped_at = _epoch(out / "state.json")
    assert 1 <= stopped_at < epochs - 1, "the training was not interrupted mid-way"
    assert not (out / "metrics.json").exists()  # written only by a finished training
    load_file(out / "last.safetensors")  # whole: the checkpoint files are replaced atomically
    load_file(out / "model.safetensors")

    resumed = subprocess.run(
        [sys.executable, "-m", "l1ad", *_train_args(background, out, epochs), "--resume"],
        cwd=tmp_path,
        env=l1ad_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = json.loads((out / "state.json").read_text())["history"]
    assert [row["epoch"] for row in history] == list(range(epochs))
    assert history == json.loads((tmp_path / "full" / "state.json").read_text())["history"]
    for name in ("model.safetensors", "last.safetensors"):
        got, expected = load_file(out / name), load_file(tmp_path / "full" / name)
        assert got.keys() == expected.keys()
        for key in expected:
            assert (got[key] == expected[key]).all(), (
                f"{name}: {key} differs from the uninterrupted run"
            )
