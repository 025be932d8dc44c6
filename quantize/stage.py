"""The ``quantize`` stage of ``l1ad run``: QAT of the float pair into a FirmwareSpec, optionally a
bit width x sparsity scan beside it."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from quantize.defaults import DEFAULT_SCAN_BITS, DEFAULT_SCAN_EPOCHS, DEFAULT_SCAN_SPARSITY
from quantize.precision import QuantConfig
from quantize.qat import QATConfig, weight_sparsity
from quantize.scan import run_scan
from quantize.workflow import QuantizeResult, quantize_checkpoint

SCAN_DIR = "scan"


@dataclass(frozen=True)
class ScanSettings:
    """The scan's grid; each point is a QAT of ``epochs`` epochs."""

    bits: tuple[int, ...] = DEFAULT_SCAN_BITS
    sparsity: tuple[float, ...] = DEFAULT_SCAN_SPARSITY
    epochs: int = DEFAULT_SCAN_EPOCHS


@dataclass
class QuantizeStageResult:
    """The quantized pair (spec, exported models, float comparison) and, if asked, the scan."""

    quantized: QuantizeResult
    qat: QATConfig
    rate_khz: float
    weight_sparsity: float
    scan: pd.DataFrame | None = None

    @property
    def out_dir(self) -> Path:
        return self.quantized.out_dir

    @property
    def framework(self) -> str:
        return self.quantized.framework

    @property
    def spec_path(self) -> Path:
        return self.quantized.spec_path

    @property
    def models(self) -> dict[str, Path]:
        """The exported models (QONNX or Keras files), by autoencoder."""
        return self.quantized.models

    @property
    def scan_table(self) -> Path:
        return self.out_dir / SCAN_DIR / "scan.csv"

    @property
    def scan_plot(self) -> Path:
        return self.out_dir / SCAN_DIR / "scan.png"


def quantize_stage(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    framework: str,
    background: Path,
    signals: dict[str, Path],
    quant_config: QuantConfig,
    qat: QATConfig,
    rate_khz: float,
    fire_on: tuple[str, ...] = ("A",),
    scan: ScanSettings | None = None,
) -> QuantizeStageResult:
    """:func:`quantize.workflow.quantize_checkpoint` into ``out_dir``; with ``scan``, also
    :func:`quantize.scan.run_scan` into ``out_dir/scan``."""
    out_dir = Path(out_dir)
    result = quantize_checkpoint(
        checkpoint, out_dir, framework, background, signals, quant_config, qat, rate_khz, fire_on
    )
    frame = None
    if scan is not None:
        frame = run_scan(
            checkpoint,
            out_dir / SCAN_DIR,
            dict(signals),
            framework,
            background,
            scan.bits,
            scan.sparsity,
            quant_config,
            replace(qat, epochs=scan.epochs),
            rate_khz,
        )
    return QuantizeStageResult(result, qat, rate_khz, weight_sparsity(result.weights), frame)
