"""Names, outputs and interrupts through the command line: nothing escapes, nothing foreign is deleted,
nothing half-written stays, and an interrupted run never ends with exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from l1ad import pipeline
from l1ad.cli import app
from offline.artifacts import MARKER_FILE

runner = CliRunner(env={"COLUMNS": "300"})  # one error line is one line, not wrapped
ROOT = Path(__file__).parent.parent


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def _step(name, run, defaults=None):
    """A stand-in pipeline step: needs nothing, its result is its summary figures (see below)."""
    return SimpleNamespace(NAME=name, run=run, DEFAULTS=defaults or {}, NEEDS=())


@pytest.fixture(autouse=True)
def _stand_in_steps_report_their_result_as_figures(monkeypatch):
    from l1ad import report

    def nothing_to_write(_report, _result):
        return None

    def as_figures(result):
        return result

    outputs = defaultdict(lambda: (nothing_to_write, as_figures), report.STEP_OUTPUTS)
    monkeypatch.setattr(report, "STEP_OUTPUTS", outputs)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A working directory with an earlier run and an HLS project, as a user's would look."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline, "STEPS", (_step("noop", lambda ctx: {"noop": {"ok": True}}),))
    config = pipeline.resolve_config(None)
    config.update(runs_dir="runs", name="earlier")
    pipeline.run_pipeline(config)
    (tmp_path / "hls_projects" / "other").mkdir(parents=True)
    (tmp_path / "hls_projects" / "other" / "notes.txt").write_text("the user's project")
    return tmp_path


@pytest.mark.parametrize("name", [".", "", "..", "../escaped", "a/b", ".hidden"])
def test_run_refuses_a_name_that_is_not_one_plain_path_component_and_deletes_nothing(
    workspace, name
):
    before = _snapshot(workspace)
    result = runner.invoke(app, ["run", "--name", name])
    assert result.exit_code == 1
    line = _error_line(result)
    assert (
        line.startswith("error: run name (--name or the config's 'name') must be a plain name")
        and repr(name) in line
    )
    assert _snapshot(workspace) == before


def test_run_refuses_a_firmware_project_name_that_would_escape_hls_projects(workspace, monkeypatch):
    firmware = _step(
        "firmware", lambda ctx: pytest.fail("the name is checked before any step"), {"name": None}
    )
    monkeypatch.setattr(pipeline, "STEPS", (firmware,))
    (workspace / "c.yaml").write_text("name: fine\nfirmware:\n  name: ../escaped\n")
    before = _snapshot(workspace)
    result = runner.invoke(app, ["run", "--config", "c.yaml"])
    assert result.exit_code == 1
    assert (
        "firmware.name in the run config must be a plain name" in _error_line(result)
        and "'../escaped'" in result.output
    )
    assert _snapshot(workspace) == before


def test_run_refuses_a_signal_name_that_would_become_a_path_outside_the_run(workspace, monkeypatch):
    events = _step(
        "events",
        lambda ctx: pytest.fail("the names are checked before any step"),
        {"signal_files": {}},
    )
    monkeypatch.setattr(pipeline, "STEPS", (events,))
    (workspace / "c.yaml").write_text(
        "name: fine\nevents:\n  signal_files:\n    ../../../x: sig.h5\n"
    )
    before = _snapshot(workspace)
    result = runner.invoke(app, ["run", "--config", "c.yaml"])
    assert result.exit_code == 1
    assert (
        "a signal name in events.signal_files must be a plain name without '/', got '../../../x'"
        in _error_line(result)
    )
    assert _snapshot(workspace) == before


def test_run_never_replaces_a_folder_it_did_not_write(workspace):
    (workspace / "runs" / "mine").mkdir()
    (workspace / "runs" / "mine" / "data.csv").write_text("1,2\n")
    before = _snapshot(workspace)
    result = runner.invoke(app, ["run", "--name", "mine"])
    assert result.exit_code == 1
    assert (
        "runs/mine: exists and is not an l1ad output, not an l1ad 'run' output; refusing"
        in _error_line(result)
    )
    assert _snapshot(workspace) == before


def test_a_second_run_of_the_same_name_stops_at_once_with_a_clear_line(workspace):
    # the first run: another process inside run_pipeline's atomic_directory of runs/twin
    ready = workspace / "ready"
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import pathlib, time\n"
                "from offline.artifacts import atomic_directory\n"
                "with atomic_directory('runs/twin', kind='run') as tmp:\n"
                "    (tmp / 'summary.json').write_text('{\"first\": true}')\n"
                f"    pathlib.Path({str(ready)!r}).touch()\n"
                "    time.sleep(3)\n"
            ),
        ],
        cwd=workspace,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert first.poll() is None and time.monotonic() < deadline, "first run did not start"
            time.sleep(0.05)
        result = runner.invoke(app, ["run", "--name", "twin"])
        assert result.exit_code == 1
        assert "runs/twin: another l1ad process is writing it now" in _error_line(result)
    finally:
        assert first.wait(timeout=60) == 0
    assert json.loads((workspace / "runs" / "twin" / "summary.json").read_text()) == {"first": True}
    assert pipeline.RUN_KIND == "run"


def _kill_self(signum):
    os.kill(os.getpid(), signum)
    for _ in range(1000):  # the handler runs at the next bytecode boundary, still in this frame
        pass


@pytest.mark.parametrize(
    "swallowed",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
        ),
    ],
    ids=["plain", "inside-a-finalizer"],
)
def test_sigterm_during_a_step_exits_143_and_keeps_the_earlier_run(
    workspace, monkeypatch, swallowed
):
    class Finalizer:
        def __del__(self):
            _kill_self(signal.SIGTERM)  # the exception raised here is printed and dropped by Python

    def step(ctx):
        (ctx.step_dir("step") / "half.txt").write_text("half")
        if swallowed:
            obj = Finalizer()
            del obj
        else:
            _kill_self(signal.SIGTERM)
        return {"step": {"finished": True}}  # a swallowed signal lets the step finish

    monkeypatch.setattr(
        pipeline, "STEPS", (_step("step", step), _step("never", lambda ctx: pytest.fail("ran on")))
    )
    before = _snapshot(workspace)
    result = runner.invoke(app, ["run", "--name", "earlier"])
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert (
        "interrupted by SIGTERM: runs/earlier was not written (an earlier run of that name is kept)"
        in result.output
    )
    assert _snapshot(workspace) == before
    assert (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )  # the handler does not outlive the command


def _quantized_dir(root: Path) -> Path:
    from firmware.example import default_model
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    spec, weights = default_model(
        seed=2,
        n_fit=500,
        quantile=0.9,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4),
        score_outputs=(0, 3),
    )
    spec.save(root / "quantized", weights)
    return root / "quantized"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "../escaped"], "--name must be a plain name without '/', got '../escaped'"),
        (
            ["--name", "."],
            "--name must be a plain name (not empty, not starting with '.'), got '.'",
        ),
        (["--name", ""], "--name must be a plain name (not empty, not starting with '.'), got ''"),
        (["--name", "other"], "hls_projects/other: exists and is not an l1ad output"),
        (
            ["--name", "p", "--latency-budget", "-1"],
            "--latency-budget must be a positive number, got -1.0 ns",
        ),
    ],
    ids=["escape", "dot", "empty", "foreign-project", "negative-budget"],
)
def test_firmware_refuses_bad_names_and_options_before_writing_anything(workspace, args, message):
    qdir = _quantized_dir(workspace / "in")
    before = _snapshot(workspace)
    result = runner.invoke(
        app, ["firmware", "--quantized", str(qdir), "--no-yosys", "--no-verilator", *args]
    )
    assert result.exit_code in (1, 2), result.output  # 2: an option refused while parsing
    assert message in result.output, result.output
    assert _snapshot(workspace) == before


def test_shower_train_never_deletes_a_folder_it_did_not_write(tmp_path):
    from offline.generative import GFlashSimulator, Showers, sample_energies, write_showers

    energies = sample_energies(40, 0, 1e3, 2e3)
    write_showers(tmp_path / "s.h5", Showers(energies, GFlashSimulator().simulate(energies, 1)))
    out = tmp_path / "results"
    out.mkdir()
    (out / "thesis.tex").write_text("months of work")
    before = _snapshot(tmp_path)
    result = runner.invoke(
        app,
        [
            "shower",
            "train",
            "--data",
            str(tmp_path / "s.h5"),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--steps",
            "2",
            "--distill",
            "",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 1
    assert (
        "results: exists and is not an l1ad output, not an l1ad 'shower-model' output; refusing"
        in _error_line(result)
    )
    assert _snapshot(tmp_path) == before


def test_abcd_that_fails_while_writing_leaves_no_output_directory(tmp_path, monkeypatch):
    from offline.ad import workflow
    from offline.ad.score import Scores, write_scores

    rng = np.random.default_rng(0)
    n = 2000
    write_scores(
        tmp_path / "b.h5",
        Scores(
            rng.exponential(size=n),
            rng.exponential(size=n),
            np.ones(n),
            np.zeros(n, dtype=np.int32),
        ),
    )

    def broken(*args, **kwargs):
        raise ValueError("closure plot: no space left on device")

    monkeypatch.setattr(workflow, "plot_closure", broken)
    result = runner.invoke(
        app,
        [
            "abcd",
            str(tmp_path / "b.h5"),
            "--out",
            str(tmp_path / "abcd"),
            "--min-region-events",
            "10",
        ],
    )
    assert result.exit_code == 1 and "no space left on device" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]
    monkeypatch.undo()
    result = runner.invoke(
        app,
        [
            "abcd",
            str(tmp_path / "b.h5"),
            "--out",
            str(tmp_path / "abcd"),
            "--min-region-events",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "abcd" / MARKER_FILE).read_text()) == {"kind": "abcd"}


def test_sigterm_in_any_command_unwinds_its_atomic_output(tmp_path, monkeypatch):
    from offline.ad import workflow
    from offline.ad.score import Scores, write_scores

    rng = np.random.default_rng(1)
    n = 2000
    write_scores(
        tmp_path / "b.h5",
        Scores(
            rng.exponential(size=n),
            rng.exponential(size=n),
            np.ones(n),
            np.zeros(n, dtype=np.int32),
        ),
    )
    monkeypatch.setattr(
        workflow, "plot_closure", lambda *args, **kwargs: _kill_self(signal.SIGTERM)
    )
    result = runner.invoke(
        app,
        [
            "abcd",
            str(tmp_path / "b.h5"),
            "--out",
            str(tmp_path / "abcd"),
            "--min-region-events",
            "10",
        ],
    )
    assert result.exit_code == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]  # no .abcd.*.partial, no lock
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_unfold_that_fails_while_writing_leaves_no_output_and_never_replaces_a_foreign_folder(
    tmp_path, monkeypatch
):
    import torch

    from offline.unfold import plots

    def broken(*args, **kwargs):
        raise OSError("unfolded plot: no space left on device")

    monkeypatch.setattr(plots, "plot_unfolded", broken)
    args = ["unfold", "--example", "gaussian", "--events", "600", "--iterations", "1", "--out"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = runner.invoke(app, [*args, str(tmp_path / "unf")])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "error: unfolded plot: no space left on device"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = runner.invoke(app, [*args, str(tmp_path / "mine")])
    assert result.exit_code == 1
    assert "mine: exists and is not an l1ad output, not an l1ad 'unfold' output" in _error_line(
        result
    )
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
