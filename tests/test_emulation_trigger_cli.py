"""``l1ad emulate --events``, ``emulate_events`` and the pipeline stage, on toy event files."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from conftest import run_one_step
from rich.console import Console
from typer.testing import CliRunner

from emulation import emulate_events, emulate_trigger, find_spec, place_thresholds
from emulation.events import binomial_efficiency
from l1ad.cli import app
from l1ad.steps import emulation as step
from offline.events import write_events
from offline.events.schema import PROCESSES
from offline.preprocess import to_hardware
from tests.conftest import make_toy_events
from tests.test_emulation_trigger import random_spec


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("emu")
    bkg = make_toy_events(3000, seed=1, process="wlnu")
    sig = make_toy_events(500, seed=2, process="Ato4l")
    sig.particles[:, 1:5, 0] *= 3  # harder leptons: a signal that looks different
    paths = {"background": root / "bkg.h5", "Ato4l": root / "sig.h5"}
    write_events(paths["background"], bkg, {"process": "wlnu"})
    write_events(paths["Ato4l"], sig, {"process": "Ato4l"})
    spec, weights = random_spec(4, narrow=False)
    spec = place_thresholds(spec, weights, to_hardware(bkg.features), bkg.event_weights, 0.05)
    run = root / "runs" / "toy"
    (run / "quantize").mkdir(parents=True)
    spec.save(run / "quantize", weights)
    return {
        "root": root,
        "run": run,
        "spec": spec,
        "weights": weights,
        "bkg": bkg,
        "sig": sig,
        **paths,
    }


def test_emulate_events_writes_scores_bits_labels_and_measures_rate_and_efficiency(files, tmp_path):
    out = tmp_path / "scores.h5"
    res = emulate_events(
        files["run"], [files["background"], files["Ato4l"]], chunk_size=700, out=out
    )
    bkg, sig = files["bkg"], files["sig"]
    with h5py.File(out) as f:
        assert f["r1"].shape == (3500,) and f["regions"].shape == (3500, 4)
        assert np.array_equal(f["labels"][:3000], bkg.labels) and np.array_equal(
            f["weights"][3000:], sig.weights
        )
        assert json.loads(f.attrs["files"]) == [str(files["background"]), str(files["Ato4l"])]
        direct = emulate_trigger(files["spec"], files["weights"], to_hardware(bkg.features))
        assert np.array_equal(f["r1_mantissa"][:3000], direct.r1) and np.array_equal(
            f["trigger"][:3000], direct.trigger
        )
        fired = f["trigger"][:].astype(bool)
    eff_b, sigma_b = binomial_efficiency(fired[:3000], bkg.weights)
    assert res.rate_khz == pytest.approx(40000 * eff_b) and res.rate_sigma_khz == pytest.approx(
        40000 * sigma_b
    )
    assert res.rate_khz == pytest.approx(
        40000 * 0.05, rel=0.3
    )  # thresholds were placed at eps_B = 5 %
    assert set(res.efficiency) == {"Ato4l"}
    assert res.efficiency["Ato4l"] == pytest.approx(
        binomial_efficiency(fired[3000:], sig.weights)[0]
    )
    table = res.table
    assert table.loc["wlnu", ["N_A", "N_B", "N_C", "N_D"]].sum() == 3000
    assert table.loc["Ato4l", "W_A"] == pytest.approx(
        sig.weights[fired[3000:]].sum()
    )  # fire_on = A
    assert res.events == 3500 and res.events_per_s > 0


def test_cli_trigger_mode_on_a_run_directory(files, tmp_path):
    out = tmp_path / "cli.h5"
    result = CliRunner().invoke(
        app, ["emulate", "--model", str(files["run"]), "--events", str(files["background"]), str(files["Ato4l"]),
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trigger rate" in result.output and "Ato4l" in result.output
    with h5py.File(out) as f:
        assert len(f["r1"]) == 3500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "missing.h5"], "does not exist"),
        ([], "give --events FILE"),
    ],
)
def test_cli_bad_inputs_fail_with_one_clear_line(files, tmp_path, args, message):
    result = CliRunner().invoke(
        app, ["emulate", "--model", str(files["run"]), *args, "--out", str(tmp_path / "o.h5")]
    )
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())  # rich wraps long lines


def test_cli_device_on_torch_or_a_missing_gpu(files, tmp_path):
    """--device cuda without CUDA: one line, exit 1, nothing written; with CUDA the same bits as the CPU."""
    import torch

    outs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.h5"
        result = CliRunner().invoke(app, ["emulate", "--model", str(files["run"]), "--events", str(files["background"]),
                                          "--out", str(out), "--device", device])  # fmt: skip
        if device == "cuda" and not torch.cuda.is_available():
            assert result.exit_code == 1 and "no CUDA device" in " ".join(result.output.split())
            assert not out.exists()
            continue
        assert result.exit_code == 0, result.output
        with h5py.File(out) as f:
            outs[device] = f["r1_mantissa"][:], f["trigger"][:]
    if "cuda" in outs:
        assert all(np.array_equal(a, b) for a, b in zip(outs["cpu"], outs["cuda"], strict=True))


def test_model_without_spec_or_with_a_broken_spec_is_named(files, tmp_path):
    with pytest.raises(ValueError, match=r"neither spec\.json"):
        find_spec(tmp_path)
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "defines.h").write_text("")
    with pytest.raises(ValueError, match="hls4ml project"):
        find_spec(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    data = json.loads((files["run"] / "quantize" / "spec.json").read_text())
    data["trigger"]["fire_on"] = ["E"]
    (broken / "spec.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="fire_on"):
        emulate_events(broken, [files["background"]])
    with pytest.raises(ValueError, match="no such run"):
        emulate_events(tmp_path / "nowhere", [files["background"]])
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "spec.json").write_text((files["run"] / "quantize" / "spec.json").read_text())
    with pytest.raises(ValueError, match="weights file does not exist"):
        emulate_events(lone, [files["background"]])


def test_pipeline_stage_reports_summary_and_overflow_table(files, tmp_path):
    config = {"emulation": dict(step.DEFAULTS), "seed": 0}
    events = SimpleNamespace(background=files["background"], signals={"Ato4l": files["Ato4l"]})
    result, figures, text = run_one_step(
        step,
        config,
        tmp_path,
        events=events,
        quantize=SimpleNamespace(out_dir=files["run"] / "quantize"),
    )
    summary = figures["emulation"]
    assert set(summary) == {
        "events_emulated",
        "events_per_s",
        "events_per_cpu_s",
        "speed_events",
        "csim_events_compared",
        "csim_mismatches",
        "csim_events_per_s",
        "rate_khz",
        "efficiency",
    }
    assert summary["events_emulated"] == 3500 and summary["csim_events_compared"] == 0
    assert (
        summary["speed_events"] >= 100_000 and summary["events_per_s"] > 0
    )  # throughput, not start-up
    assert set(summary["efficiency"]) == {"Ato4l"} and math.isfinite(summary["rate_khz"])
    assert "Trigger emulation" in text and "C-simulation" in text
    assert result.scores.exists()
    assert PROCESSES.index("Ato4l") in set(h5py.File(result.scores)["labels"][:].tolist())


def test_run_directory_names_its_firmware_project_for_the_csim_comparison(files, tmp_path):
    from firmware.trigger_csim import find_trigger_project

    run = tmp_path / "run"
    run.mkdir()
    assert find_trigger_project(run) is None  # no summary.json
    project = tmp_path / "hls_projects" / "toy"
    project.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"firmware": {"project": str(project)}}))
    assert find_trigger_project(run) is None  # recorded but not a trigger project
    (project / "l1ad_firmware.json").write_text(json.dumps({"spec": files["spec"].to_dict()}))
    assert find_trigger_project(run) == project


def test_emulate_trigger_files_from_python_returns_the_summary_and_tables(files, tmp_path):
    from emulation import emulate_trigger_files, overflow_table

    out = tmp_path / "lib.h5"
    summary = emulate_trigger_files(
        str(files["run"]),
        [str(files["background"]), files["Ato4l"]],
        out,
        chunk_size=1000,
        console=Console(quiet=True),
    )
    assert summary["events_emulated"] == 3500 and summary["out"] == str(out) and out.exists()
    assert summary["spec"] == str(files["run"] / "quantize" / "spec.json")
    assert not any(
        key.startswith("csim_") for key in summary
    )  # the C-simulation check is firmware's
    assert summary["table"].loc["wlnu", ["N_A", "N_B", "N_C", "N_D"]].sum() == 3000
    direct = emulate_trigger(files["spec"], files["weights"], to_hardware(files["bkg"].features))
    with h5py.File(out) as f:
        assert np.array_equal(f["trigger"][:3000], direct.trigger)
    report = summary["overflows"].report()
    over = overflow_table(summary["overflows"])
    assert over.index.name == "name" and list(over.columns) == ["overflows", "values", "fraction"]
    assert sorted(over.index) == sorted(report.loc[report["overflows"] > 0, "name"])


def test_background_and_edge_words_are_background_events_then_edge_words(files):
    from emulation.events import background_and_edge_words

    spec = files["spec"]
    words = background_and_edge_words([files["background"], files["Ato4l"]], 200, spec)
    assert words.shape == (200, 57) and words.dtype == np.int64
    assert np.array_equal(
        words[:180], to_hardware(files["bkg"].features)[:180]
    )  # n // 10 edge words
    assert (words[180:] == 0).all(axis=1).any()  # all-empty events among the edges
    assert (words[180:] == spec.hardware_input.max_int).any()  # saturating words among the edges
    short = background_and_edge_words(
        [files["Ato4l"]], 1000, spec
    )  # fewer events than asked: edge words fill up
    assert short.shape == (1000, 57)
    assert np.array_equal(short[:500], to_hardware(files["sig"].features))
