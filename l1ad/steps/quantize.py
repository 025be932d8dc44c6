"""``l1ad quantize`` and the ``quantize`` pipeline stage: QAT (Brevitas or QKeras) -> FirmwareSpec."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from l1ad import options
from l1ad.config import GLOBAL_DEFAULTS
from l1ad.options import named_paths
from offline.ad.defaults import DEFAULT_RATE_KHZ
from quantize.defaults import (
    DEFAULT_FRAMEWORK,
    DEFAULT_SCAN_BITS,
    DEFAULT_SCAN_EPOCHS,
    DEFAULT_SCAN_SPARSITY,
)
from quantize.precision import QuantConfig
from quantize.qat import QATConfig

if TYPE_CHECKING:
    from l1ad.pipeline import RunContext
    from offline.ad.stage import ADStageResult
    from offline.events.stage import EventSamples
    from quantize.stage import QuantizeStageResult

NAME = "quantize"
DEFAULTS: dict[str, Any] = {
    "framework": DEFAULT_FRAMEWORK,
    "precision": QuantConfig().to_dict(),
    # Pruning (sparsity 0.5) is on by default: with the default types it cuts the trigger by ~4
    # adder levels (55 -> 50 ns, the latency goal) and 59k -> 51k da4ml LUTs, at 100-109 % of the
    # float TPR at 400 kHz on the default events (see quantize/precision.py) -- set qat.sparsity to trade.
    "qat": {k: v for k, v in QATConfig().to_dict().items() if k not in ("seed", "progress")},
    "rate_khz": None,  # None: the ad stage's rate
    "fire_on": ["A"],
    "scan": False,
    "scan_bits": list(DEFAULT_SCAN_BITS),
    "scan_sparsity": list(DEFAULT_SCAN_SPARSITY),
    "scan_epochs": DEFAULT_SCAN_EPOCHS,
}
NEEDS = ("events", "ad")


def _joined(values: list[Any]) -> str:
    """A list default as the comma-separated text its option takes."""
    return ",".join(f"{v:g}" for v in values)


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} expects comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{what} needs at least one value")
    return values


def quantize(
    checkpoint: Annotated[
        Path | None, typer.Option(help="Float checkpoint directory (l1ad train).")
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option("--run", help="A finished run directory: its ad checkpoint and signals."),
    ] = None,
    events: Annotated[
        Path | None, typer.Option(help="Background events (default: the checkpoint's).")
    ] = None,
    signal: Annotated[
        list[str] | None, typer.Option(help="NAME=PATH signal events, repeatable.")
    ] = None,
    framework: Annotated[str, typer.Option(help="brevitas or qkeras.")] = DEFAULTS["framework"],
    out: Annotated[
        Path, typer.Option(help="Output directory (spec.json, weights, exported models).")
    ] = Path("quantized"),
    precision: Annotated[
        Path | None, typer.Option(help="JSON file of a QuantConfig (bit widths per layer).")
    ] = None,
    weight_bits: Annotated[
        int | None, typer.Option(help="Uniform weight/activation width (integer bits kept).", min=1)
    ] = None,
    epochs: Annotated[int, typer.Option(help="QAT epochs.", min=1)] = DEFAULTS["qat"]["epochs"],
    sparsity: Annotated[
        float,
        typer.Option(help="Magnitude-pruning target (fraction of zero weights).", min=0.0, max=1.0),
    ] = DEFAULTS["qat"]["sparsity"],
    lr: Annotated[
        float, typer.Option(help="QAT learning rate.", callback=options.positive)
    ] = DEFAULTS["qat"]["lr"],
    batch_size: Annotated[int, typer.Option(help="QAT batch size.", min=1)] = DEFAULTS["qat"][
        "batch_size"
    ],
    rate_khz: Annotated[
        float,
        typer.Option(help="L1 rate (kHz at 40 MHz) of the thresholds.", callback=options.positive),
    ] = DEFAULT_RATE_KHZ,
    scan: Annotated[
        bool,
        typer.Option("--scan", help="Scan bit widths x sparsity instead (table + Pareto plot)."),
    ] = DEFAULTS["scan"],
    scan_bits: Annotated[str, typer.Option(help="Bit widths of the scan.")] = _joined(
        DEFAULTS["scan_bits"]
    ),
    scan_sparsity: Annotated[str, typer.Option(help="Sparsities of the scan.")] = _joined(
        DEFAULTS["scan_sparsity"]
    ),
    seed: Annotated[int, typer.Option(help="QAT seed.")] = GLOBAL_DEFAULTS["seed"],
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Quantization-aware training of the float pair; writes the FirmwareSpec and the exported models."""
    from offline.artifacts import read_json
    from quantize.workflow import find_run_inputs, quantize_checkpoint

    console = Console(stderr=True, markup=False)
    signals = named_paths(signal)
    if run is not None:
        checkpoint, run_signals = find_run_inputs(run)
        signals = {**run_signals, **signals}
    if checkpoint is None:
        raise ValueError("pass --checkpoint or --run")
    qconf = (
        QuantConfig.from_dict(read_json(precision, "--precision file"))
        if precision
        else QuantConfig()
    )
    if weight_bits is not None:
        try:
            qconf = qconf.uniform(weight_bits)
        except ValueError as err:
            raise ValueError(f"--weight-bits {weight_bits}: {err}") from None
    qat = QATConfig(
        epochs=epochs, sparsity=sparsity, lr=lr, batch_size=batch_size, seed=seed, progress=progress
    )
    if scan:
        from quantize.scan import run_scan

        frame = run_scan(
            checkpoint,
            out,
            signals,
            framework,
            events,
            tuple(int(b) for b in _floats(scan_bits, "--scan-bits")),
            tuple(_floats(scan_sparsity, "--scan-sparsity")),
            qconf,
            qat,
            rate_khz,
        )
        console.print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        console.print(f"wrote {out / 'scan.csv'} and {out / 'scan.png'}")
        return
    result = quantize_checkpoint(checkpoint, out, framework, events, signals, qconf, qat, rate_khz)
    if len(result.comparison):
        console.print(result.comparison.to_string(float_format=lambda v: f"{v:.4g}"))
    t = result.spec.trigger
    console.print(
        f"thresholds R1 > {t.threshold_r1:g}, R2 > {t.threshold_r2:g} (regions {', '.join(t.fire_on)})"
    )
    console.print(
        f"wrote {result.spec_path} and {', '.join(str(p) for p in result.models.values())}"
    )


def register(app) -> None:
    app.command()(quantize)


def run(ctx: RunContext, events: EventSamples, ad: ADStageResult) -> QuantizeStageResult:
    """QAT of the ad stage's pair in the configured framework: spec, export, float-vs-quantized comparison."""
    from quantize.stage import ScanSettings, quantize_stage

    cfg = ctx.config[NAME]
    rate = (
        cfg["rate_khz"]
        if cfg["rate_khz"] is not None
        else ctx.config.get("ad", {}).get("rate_khz", DEFAULT_RATE_KHZ)
    )
    scan = (
        ScanSettings(
            tuple(int(b) for b in cfg["scan_bits"]),
            tuple(float(s) for s in cfg["scan_sparsity"]),
            int(cfg["scan_epochs"]),
        )
        if cfg["scan"]
        else None
    )
    return quantize_stage(
        ad.checkpoint,
        ctx.step_dir(NAME),
        cfg["framework"],
        events.background,
        events.signals,
        QuantConfig.from_dict(cfg["precision"]),
        QATConfig.from_dict({**cfg["qat"], "seed": ctx.seed}),
        float(rate),
        tuple(cfg["fire_on"]),
        scan,
    )
