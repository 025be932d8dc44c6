"""``l1ad firmware`` end to end on a small quantized model directory."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from firmware.example import default_model
from l1ad.cli import app

pytestmark = pytest.mark.hls


def test_firmware_command_writes_checked_project_and_fails_an_unmeetable_budget(tmp_path):
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    spec, weights = default_model(
        seed=2, n_fit=1000, quantile=0.9, ae_config=AEConfig(hidden=(4,), latent=2, bias=True),
        quant_config=QuantConfig().uniform(6), score_outputs=(0, 3, 6),
    )
    qdir = tmp_path / "quantized"
    spec.save(qdir, weights)  # no exported model: the QKeras pair is built from the spec
    args = ["firmware", "--quantized", str(qdir), "--backend", "Vivado", "--clock-period", "4", "--name", "small",
            "--output-root", str(tmp_path / "hls_projects"), "--csim-events", "400", "--no-yosys", "--no-verilator"]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [*args, "--latency-budget", "1"])
    assert result.exit_code == 1, result.output
    assert "latency [ns]" in result.output and "exceeds 1" in result.output
    assert "largest contributors" in result.output
    summary = json.loads((tmp_path / "hls_projects" / "small" / "cost" / "summary.json").read_text())
    assert summary["csim_mismatches"] == 0 and summary["csim_events"] == 500
    assert summary["within_budget"] is False and summary["backend"] == "Vivado"
    assert "da4ml" in summary["estimate_source"]
