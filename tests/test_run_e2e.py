"""``l1ad run`` end to end: the real pipeline on a tiny config (about a minute on two cores).

Events come from files (the pipeline's option for real ADC2021 files) so that no Pythia run is
needed; every later stage runs for real: training, ABCD, QAT, hls4ml + g++ C simulation, the
bit-exact emulator. The emulator's trigger bits are then checked against the C simulation of
the run's own firmware project on every event, independently of the run's own comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from conftest import make_toy_events

from offline.events import Events, write_events

ROOT = Path(__file__).resolve().parents[1]
N_BACKGROUND, N_SIGNAL = 3000, 400


def l1ad_env() -> dict[str, str]:
    """The environment of an ``l1ad`` subprocess: this checkout first on the path, quiet TensorFlow."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}


def tiny_workspace(root: Path, name: str = "tiny", quantize: dict | None = None) -> Path:
    """Event files and a tiny run config in ``root``; returns the config path."""
    write_events(root / "bkg.h5", make_toy_events(N_BACKGROUND, seed=31), {"process": "wlnu"})
    toy = make_toy_events(N_SIGNAL, seed=40, process="Ato4l")
    particles = toy.particles.copy()
    particles[:, :, 0] *= 3.0  # harder objects: separable from the background
    write_events(
        root / "Ato4l.h5", Events(particles, toy.weights, toy.labels), {"process": "Ato4l"}
    )
    config = {
        "name": name,
        "seed": 3,
        "runs_dir": "runs",
        "cache_dir": "cache",
        "events": {
            "background_file": "bkg.h5",
            "signal_files": {"Ato4l": "Ato4l.h5"},
            "signals": ["Ato4l"],
        },
        "ad": {"epochs": 3, "batch_size": 500, "min_region_events": 5},
        "quantize": {"qat": {"epochs": 2, "batch_size": 500}, **(quantize or {})},
        "firmware": {"csim_events": 300, "tb_events": 50, "rtl_events": 0},
        "emulation": {"compare_csim_events": 300},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    config = tiny_workspace(root)
    done = subprocess.run(
        [sys.executable, "-m", "l1ad", "run", "--config", str(config)],
        cwd=root,
        env=l1ad_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return root, done


@pytest.mark.hls
def test_run_writes_every_step_into_a_finished_run_directory(tiny_run):
    root, done = tiny_run
    run_dir = root / "runs" / "tiny"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"events", "ad", "abcd", "quantize", "firmware", "emulation"} <= set(summary)
    assert summary["config"]["name"] == "tiny" and summary["seconds"] > 0
    assert summary["events"]["counts"] == {"background": N_BACKGROUND, "Ato4l": N_SIGNAL}
    assert summary["ad"]["auc"]["Ato4l"] > 0.7  # the toy signal's objects are three times harder
    # paths recorded by the steps point into the finished directory, not the temporary one
    assert (root / summary["quantize"]["spec"]).is_file()
    assert str(run_dir.name) in summary["quantize"]["spec"] and ".partial" not in json.dumps(
        summary
    )
    report = (run_dir / "report.md").read_text()
    for section in ("Anomaly detection", "ABCD background estimate"):
        assert section in report
    assert (root / "runs" / "latest").resolve() == run_dir.resolve()
    assert sorted(p.name for p in (root / "runs").iterdir() if p.name.startswith(".")) == []
    assert "run finished" in done.stderr


# The objects of summary.json and their keys, as l1ad run writes them for the default config (the
# tiny config changes values only). Tools read these: a change here is a change of format.
SUMMARY_KEYS = {
    "events": {"counts", "events_per_s", "from_cache", "preselection_efficiency"},
    "ad": {
        "auc",
        "auc_sigma",
        "dcor_background",
        "dcor_background_sigma",
        "rate_khz",
        "tpr_at_fpr_1e-5",
        "tpr_at_rate",
    },
    "abcd": {"max_abs_closure_pull", "closure_consistency", "significance"},
    "rates": {"1", "5", "10", "400"},  # the target rates and the working rate
    "statistically_limited": None,  # sentences: which ones depends on the sample
    "fpr_1e-5": None,  # an operating point: its keys depend on whether the sample resolves it
    "quantize": {
        "framework",
        "rate_khz",
        "spec",
        "thresholds",
        "tpr_ratio_vs_float",
        "weight_sparsity",
    },
    "firmware": {
        "backend",
        "beside",
        "brams",
        "clock_period_ns",
        "csim_events",
        "csim_mismatches",
        "dsps",
        "emulator_library",
        "emulator_mismatches",
        "estimate_error",
        "estimate_source",
        "ffs",
        "ii_cycles",
        "latency_budget_ns",
        "latency_cycles",
        "latency_ns",
        "luts",
        "project",
        "strategy",
        "within_budget",
    },
    "emulation": {
        "csim_events_compared",
        "csim_events_per_s",
        "csim_mismatches",
        "efficiency",
        "events_emulated",
        "events_per_cpu_s",
        "events_per_s",
        "rate_khz",
        "speed_events",
    },
}


@pytest.mark.hls
def test_summary_has_the_keys_of_the_default_config(tiny_run):
    from l1ad.pipeline import resolve_config

    root, _ = tiny_run
    summary = json.loads((root / "runs" / "tiny" / "summary.json").read_text())
    assert set(summary) == {"l1ad_version", "python", "config", "seconds", *SUMMARY_KEYS}
    for name, keys in SUMMARY_KEYS.items():
        if keys is not None:
            assert set(summary[name]) == keys, name
    default = resolve_config(None)
    assert set(summary["config"]) == set(default)
    for step, settings in default.items():
        if isinstance(settings, dict):
            assert set(summary["config"][step]) == set(settings), step


@pytest.mark.hls
def test_run_firmware_and_emulation_agree_with_the_c_simulation(tiny_run):
    root, _ = tiny_run
    summary = json.loads((root / "runs" / "tiny" / "summary.json").read_text())
    fw, emu = summary["firmware"], summary["emulation"]
    assert fw["csim_mismatches"] == 0 and fw["csim_events"] > 0 and fw["ii_cycles"] == 1
    assert fw["latency_ns"] == fw["latency_cycles"] * fw["clock_period_ns"]
    assert emu["events_emulated"] == N_BACKGROUND + N_SIGNAL
    assert emu["csim_events_compared"] == 300 and emu["csim_mismatches"] == 0


@pytest.mark.hls
def test_every_trigger_bit_of_the_run_equals_the_c_simulation_of_its_project(tiny_run):
    """Independent of the run's own 300-event comparison: all events, C simulation rebuilt here."""
    from firmware.project import CSim
    from offline.events import read_events
    from offline.preprocess import to_hardware
    from quantize import load_spec

    root, _ = tiny_run
    spec = load_spec(root / "runs" / "tiny" / "quantize" / "spec.json")
    words = np.concatenate(
        [to_hardware(read_events(root / f).features) for f in ("bkg.h5", "Ato4l.h5")]
    )
    csim = CSim(root / "hls_projects" / "tiny", spec)(words)
    with h5py.File(root / "runs" / "tiny" / "emulation" / "trigger.h5") as f:
        trigger, regions = f["trigger"][:], f["regions"][:]
        r1, r2 = f["r1_mantissa"][:], f["r2_mantissa"][:]
    assert len(trigger) == len(words)
    assert np.array_equal(r1, csim.r1) and np.array_equal(r2, csim.r2)
    assert np.array_equal(regions, csim.regions) and np.array_equal(trigger, csim.trigger)
    assert (
        0 < trigger[:N_BACKGROUND].mean() < trigger[N_BACKGROUND:].mean()
    )  # fires, more often on signal
    # the rate the run reports is the background trigger fraction at 40 MHz
    summary = json.loads((root / "runs" / "tiny" / "summary.json").read_text())
    with h5py.File(root / "runs" / "tiny" / "emulation" / "trigger.h5") as f:
        weights = f["weights"][:N_BACKGROUND]
    fraction = np.sum(weights * trigger[:N_BACKGROUND]) / np.sum(weights)
    assert summary["emulation"]["rate_khz"] == pytest.approx(40_000 * fraction, rel=1e-9)


@pytest.mark.hls
@pytest.mark.slow
def test_qkeras_through_the_pipeline_gives_a_keras_frontend_project_equal_to_its_csim(tmp_path):
    config = tiny_workspace(tmp_path, name="qk", quantize={"framework": "qkeras"})
    done = subprocess.run(
        [sys.executable, "-m", "l1ad", "run", "--config", str(config)],
        cwd=tmp_path,
        env=l1ad_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((tmp_path / "runs" / "qk" / "summary.json").read_text())
    assert summary["quantize"]["framework"] == "qkeras"
    assert sorted(p.name for p in (tmp_path / "runs" / "qk" / "quantize").glob("*.h5")) == [
        "ae1.h5",
        "ae2.h5",
    ]
    assert "keras frontend" in done.stderr
    assert (
        summary["firmware"]["csim_mismatches"] == 0 and summary["emulation"]["csim_mismatches"] == 0
    )
    assert summary["emulation"]["csim_events_compared"] == 300
