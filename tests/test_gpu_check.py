"""benchmarks/gpu_check.py on the CPU: every check runs with device='cpu' (small sizes), the
comparison logic accepts agreement and flags disagreement, and without CUDA it exits 0."""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_compare_accepts_agreement_and_flags_disagreement_and_non_finite(gpu_check):
    assert gpu_check.compare("c", "f", 1.0, 1.009, 1e-2, relative=True).ok
    assert not gpu_check.compare("c", "f", 1.0, 1.02, 1e-2, relative=True).ok
    assert gpu_check.compare("c", "f", 100.0, 100.5, 1.0, relative=False).ok
    assert not gpu_check.compare("c", "f", 100.0, 101.5, 1.0, relative=False).ok
    assert not gpu_check.compare("c", "f", 1.0, math.nan, 1e9, relative=False).ok
    assert not gpu_check.compare("c", "f", math.inf, math.inf, 1e9, relative=False).ok


def test_every_check_has_tolerances_for_figures_it_returns(gpu_check):
    assert set(gpu_check.CHECKS) == set(gpu_check.TOLERANCES)


def test_run_check_compares_every_figure_and_catches_a_device_that_differs(gpu_check, monkeypatch):
    monkeypatch.setitem(
        gpu_check.CHECKS, "disco_batch_10000", functools.partial(gpu_check.check_disco, n=2000)
    )
    rows, info = gpu_check.run_check("disco_batch_10000", "cpu")
    assert {r.figure for r in rows} == set(gpu_check.TOLERANCES["disco_batch_10000"]) and all(
        r.ok for r in rows
    )
    assert info["cpu_seconds"] > 0 and info["device_seconds"] > 0

    def off_by_one_percent(device):
        out = gpu_check.check_disco("cpu", n=2000)
        return out if device == "cpu" else {k: v * 1.01 for k, v in out.items()}

    monkeypatch.setitem(gpu_check.CHECKS, "disco_batch_10000", off_by_one_percent)
    rows, _ = gpu_check.run_check("disco_batch_10000", "cpu:0")  # "device" cpu:0 vs reference cpu
    assert not any(r.ok for r in rows if r.figure == "disco_sq")


def test_disco_and_autocast_forward_on_cpu_are_exact_math(gpu_check):
    from offline.ad.disco import disco_sq

    got = gpu_check.check_disco("cpu", n=1500)
    assert 0 < got["disco_sq"] < 1 and got["grad_norm"] > 0
    # float32 on the device vs float64: the check's own tolerance holds on the CPU
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.exponential(1.0, 1500)
    y = 0.3 * x + rng.exponential(1.0, 1500)
    w = rng.uniform(0.5, 1.5, 1500)
    exact = float(disco_sq(*(torch.tensor(v, dtype=torch.float64) for v in (x, y, w))))
    assert gpu_check.compare(
        "d",
        "disco_sq",
        exact,
        got["disco_sq"],
        *gpu_check.TOLERANCES["disco_batch_10000"]["disco_sq"],
    ).ok
    forward = gpu_check.check_ae_forward("cpu", n=256)
    assert all(math.isfinite(v) and v > 0 for v in forward.values())


@pytest.mark.slow
def test_training_omnifold_and_diffusion_checks_run_on_cpu(gpu_check):
    training = gpu_check.check_ae_training("cpu", n=2000, epochs=2)
    assert math.isfinite(training["val_loss_cpu_fp32"]) and 0 <= training["val_disco"] <= 1
    unfolded = gpu_check.check_omnifold("cpu", n=6000, epochs=10)
    assert (
        abs(unfolded["unfolded_mean"] - 0.4) < 0.15
    )  # moved from the prior (0) to the truth (0.4)
    showers = gpu_check.check_diffusion("cpu", n=300, epochs=2, iterations=10)
    assert (
        0 < showers["teacher_deposit_fraction"] <= 1
        and 0 < showers["distilled_1_deposit_fraction"] <= 1
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_without_cuda_it_says_so_exits_0_and_writes_nothing(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "r.json")]) == 0
    assert "no CUDA" in capsys.readouterr().out
    assert not (tmp_path / "r.json").exists()


def test_cpu_against_cpu_writes_the_results_file(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setitem(
        gpu_check.CHECKS, "disco_batch_10000", functools.partial(gpu_check.check_disco, n=1000)
    )
    out = tmp_path / "r.json"
    assert (
        gpu_check.main(["--device", "cpu", "--only", "disco_batch_10000", "--out", str(out)]) == 0
    )
    import json

    record = json.loads(out.read_text())
    assert record["all_ok"] is True and {c["figure"] for c in record["comparisons"]} == {
        "disco_sq",
        "grad_norm",
        "grad_first",
    }


@pytest.mark.gpu
def test_gpu_check_passes_on_cuda(gpu_check, tmp_path):
    assert (
        gpu_check.main(
            [
                "--only",
                "disco_batch_10000",
                "ae_forward_autocast",
                "--out",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
