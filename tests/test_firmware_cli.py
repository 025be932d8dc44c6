"""``l1ad firmware`` end to end on a small quantized model directory."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from firmware.example import default_model
from l1ad.cli import app


@pytest.mark.hls
def test_firmware_command_writes_checked_project_and_fails_an_unmeetable_budget(tmp_path):
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    spec, weights = default_model(
        seed=2,
        n_fit=1000,
        quantile=0.9,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4),
        score_outputs=(0, 3, 6),
    )
    qdir = tmp_path / "quantized"
    spec.save(qdir, weights)  # no exported model: the QKeras pair is built from the spec
    args = [
        "firmware",
        "--quantized",
        str(qdir),
        "--backend",
        "Vivado",
        "--clock-period",
        "1",
        "--name",
        "small",
        "--output-root",
        str(tmp_path / "hls_projects"),
        "--csim-events",
        "400",
        "--no-yosys",
        "--no-verilator",
        "--emulator",
    ]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [*args, "--latency-budget", "1"])
    assert result.exit_code == 1, result.output
    assert "latency (ns)" in result.output and "exceeds 1" in result.output
    assert "largest contributors" in result.output
    # over the latency budget: the blocks past it along each chain are named (1 ns = 1 cycle of 1 level)
    assert (
        "blocks past the latency budget (1 ns = 1 cycles of 1 ns = 1 adder levels)" in result.output
    )
    assert (
        "  - ae1: preprocessing (levels 1-" in result.output
        and "  - ae2: preprocessing (levels 1-" in result.output
    )
    summary = json.loads(
        (tmp_path / "hls_projects" / "small" / "cost" / "summary.json").read_text()
    )
    assert summary["csim_mismatches"] == 0 and summary["csim_events"] == 500
    assert summary["within_budget"] is False and summary["backend"] == "Vivado"
    # the default project is distributed arithmetic: da4ml's estimate is the headline, the Latency
    # model's (a latency project) beside it
    assert summary["strategy"] == "distributed_arithmetic"
    assert summary["estimate_source"].startswith("da4ml") and "distributed_arithmetic project" in summary[
        "estimate_source"]  # fmt: skip
    assert summary["beside"]["strategy"] == "latency"
    assert summary["beside"]["source"].startswith("hls4ml Latency model")
    assert summary["beside"]["source"].endswith("[describes a latency project]")
    assert (
        "nnet::dense_da_"
        in (tmp_path / "hls_projects" / "small" / "firmware" / "trigger_nets.cpp").read_text()
    )
    assert "dense layers: distributed_arithmetic strategy" in result.output
    # the hls4mlEmulator::Model library was built and is bit-exact with the emulator
    assert summary["emulator_mismatches"] == 0 and summary["emulator_library"].endswith(
        "emulator/small.so"
    )
    assert (tmp_path / "hls_projects" / "small" / "emulator" / "small.so").is_file()
    assert "emulator library" in result.output


@pytest.mark.hls
def test_pipeline_stage_reports_cost_table_and_fills_summary(tmp_path, monkeypatch):
    import io
    from types import SimpleNamespace

    from conftest import run_one_step
    from rich.console import Console

    from l1ad.steps import STEPS
    from l1ad.steps import firmware as step
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    names = [s.NAME for s in STEPS]
    assert names.index("quantize") < names.index("firmware") < names.index("emulation")
    spec, weights = default_model(
        seed=3,
        n_fit=1000,
        quantile=0.9,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4),
        score_outputs=(0, 3),
    )
    qdir = tmp_path / "run" / "quantize"
    spec.save(qdir, weights)
    monkeypatch.chdir(tmp_path)
    cfg = {
        **step.DEFAULTS,
        "csim_events": 200,
        "tb_events": 50,
        "rtl_events": 0,
        "yosys": False,
        "latency_budget_ns": 1000.0,
        "strategy": "latency",
        "emulator": True,
    }
    quantized = SimpleNamespace(out_dir=qdir, framework="qkeras", models={})
    result, figures, text = run_one_step(
        step,
        {"firmware": cfg, "name": "demo", "seed": 0},
        tmp_path / "run",
        Console(file=io.StringIO()),
        quantize=quantized,
    )
    out = figures["firmware"]
    assert set(out) == {
        "project",
        "backend",
        "strategy",
        "clock_period_ns",
        "latency_cycles",
        "latency_ns",
        "ii_cycles",
        "luts",
        "ffs",
        "dsps",
        "brams",
        "estimate_source",
        "beside",
        "latency_budget_ns",
        "within_budget",
        "csim_events",
        "csim_mismatches",
        "emulator_library",
        "emulator_mismatches",
        "estimate_error",
    }
    assert out["estimate_error"]["hls4ml_latency_model"]["dsps"]["min"] > 0
    assert (
        out["project"] == "hls_projects/demo"
        and (tmp_path / "hls_projects" / "demo" / "build_prj.tcl").exists()
    )
    assert (
        out["csim_mismatches"] == 0 and out["csim_events"] == 250 and out["within_budget"] is True
    )
    assert out["ii_cycles"] == 1 and out["latency_ns"] == out["latency_cycles"] * 5.0
    # firmware.strategy: latency, so the Latency model's figures are the headline, da4ml's beside
    assert out["strategy"] == "latency" and out["estimate_source"].startswith(
        "hls4ml Latency model"
    )
    assert out["beside"]["strategy"] == "distributed_arithmetic"
    assert out["beside"]["source"].startswith("da4ml") and out["beside"]["dsps"] == 0
    nets = (tmp_path / "hls_projects" / "demo" / "firmware" / "trigger_nets.cpp").read_text()
    assert "nnet::dense_da_" not in nets and "nnet::dense<" in nets
    assert (
        out["emulator_library"] == "hls_projects/demo/emulator/demo.so"
        and out["emulator_mismatches"] == 0
    )
    assert (tmp_path / out["emulator_library"]).is_file()
    assert "Hardware cost by source" in text and "budget verdict: within budget" in text
    assert result.build.project.path.name == "demo"


def test_event_words_are_file_or_toy_events_then_a_quarter_of_edge_words(tmp_path):
    import numpy as np

    from firmware.example import event_words, toy_words
    from offline.ad.model import AEConfig
    from offline.events import write_events
    from offline.preprocess import to_hardware
    from quantize.precision import QuantConfig
    from tests.conftest import make_toy_events

    spec, _ = default_model(
        seed=4,
        n_fit=500,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4),
        score_outputs=(0, 3),
    )
    events = make_toy_events(300, seed=5)
    write_events(tmp_path / "ev.h5", events, {"process": "wlnu"})
    words = event_words(str(tmp_path / "ev.h5"), 200, spec, seed=1)
    assert words.shape == (250, 57) and words.dtype == np.int64
    assert np.array_equal(words[:200], to_hardware(events.features)[:200])
    assert (words[200:212] == 0).all()  # the edge words start with all-empty events
    assert (words[200:] == spec.hardware_input.max_int).any()
    toy = event_words(None, 40, spec, seed=2)
    assert toy.shape == (50, 57) and np.array_equal(toy[:40], toy_words(40, 2))
    assert np.array_equal(toy, event_words(None, 40, spec, seed=2))  # deterministic in the seed
