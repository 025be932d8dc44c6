"""``l1ad quantize`` and the ``quantize`` pipeline stage: QAT (Brevitas or QKeras) -> FirmwareSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from l1ad import options
from l1ad.options import named_paths
from offline.ad.defaults import DEFAULT_RATE_KHZ
from quantize.precision import QuantConfig
from quantize.qat import QATConfig

NAME = "quantize"
DEFAULTS: dict[str, Any] = {
    "framework": "brevitas",
    "precision": QuantConfig().to_dict(),
    # Pruning (sparsity 0.5) is on by default: with the default types it cuts the trigger by ~4
    # adder levels (55 -> 50 ns, the latency goal) and 59k -> 51k da4ml LUTs, at 100-109 % of the
    # float TPR at 400 kHz on the default events (see quantize/precision.py) -- set qat.sparsity to trade.
    "qat": {k: v for k, v in QATConfig().to_dict().items() if k not in ("seed", "progress")},
    "rate_khz": None,  # None: the ad stage's rate
    "fire_on": ["A"],
    "scan": False,
    "scan_bits": [4, 6, 8],
    "scan_sparsity": [0.0, 0.5],
    "scan_epochs": 3,
}


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} expects comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{what} needs at least one value")
    return values


def quantize(
    checkpoint: Annotated[Path | None, typer.Option(help="Float checkpoint directory (l1ad train).")] = None,
    run: Annotated[Path | None, typer.Option("--run", help="A finished run directory: its ad checkpoint and signals.")] = None,
    events: Annotated[Path | None, typer.Option(help="Background events (default: the checkpoint's).")] = None,
    signal: Annotated[list[str] | None, typer.Option(help="NAME=PATH signal events, repeatable.")] = None,
    framework: Annotated[str, typer.Option(help="brevitas or qkeras.")] = DEFAULTS["framework"],
    out: Annotated[Path, typer.Option(help="Output directory (spec.json, weights, exported models).")] = Path("quantized"),
    precision: Annotated[Path | None, typer.Option(help="JSON file of a QuantConfig (bit widths per layer).")] = None,
    weight_bits: Annotated[int | None, typer.Option(help="Uniform weight/activation width (integer bits kept).", min=1)] = None,
    epochs: Annotated[int, typer.Option(help="QAT epochs.", min=1)] = DEFAULTS["qat"]["epochs"],
    sparsity: Annotated[float, typer.Option(help="Magnitude-pruning target (fraction of zero weights).", min=0.0, max=1.0)] = DEFAULTS[
        "qat"
    ]["sparsity"],
    lr: Annotated[float, typer.Option(help="QAT learning rate.", callback=options.positive)] = DEFAULTS["qat"]["lr"],
    batch_size: Annotated[int, typer.Option(help="QAT batch size.", min=1)] = DEFAULTS["qat"]["batch_size"],
    rate_khz: Annotated[float, typer.Option(help="L1 rate (kHz at 40 MHz) of the thresholds.", callback=options.positive)] = DEFAULT_RATE_KHZ,
    scan: Annotated[bool, typer.Option("--scan", help="Scan bit widths x sparsity instead (table + Pareto plot).")] = False,
    scan_bits: Annotated[str, typer.Option(help="Bit widths of the scan.")] = "4,6,8",
    scan_sparsity: Annotated[str, typer.Option(help="Sparsities of the scan.")] = "0,0.5",
    seed: Annotated[int, typer.Option(help="QAT seed.")] = 1234,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Quantization-aware training of the float pair; writes the FirmwareSpec and the exported models."""
    from emulation import exact_trigger
    from offline.artifacts import read_json
    from quantize.workflow import find_run_inputs, quantize_checkpoint

    console = Console(stderr=True, markup=False)
    signals = named_paths(signal)
    if run is not None:
        checkpoint, run_signals = find_run_inputs(run)
        signals = {**run_signals, **signals}
    if checkpoint is None:
        raise ValueError("pass --checkpoint or --run")
    qconf = QuantConfig.from_dict(read_json(precision, "--precision file")) if precision else QuantConfig()
    if weight_bits is not None:
        try:
            qconf = qconf.uniform(weight_bits)
        except ValueError as err:
            raise ValueError(f"--weight-bits {weight_bits}: {err}") from None
    qat = QATConfig(epochs=epochs, sparsity=sparsity, lr=lr, batch_size=batch_size, seed=seed, progress=progress)
    if scan:
        from quantize.scan import run_scan

        frame = run_scan(checkpoint, out, signals, framework, events, tuple(int(b) for b in _floats(scan_bits, "--scan-bits")),
                         tuple(_floats(scan_sparsity, "--scan-sparsity")), qconf, qat, rate_khz, exact=exact_trigger())
        console.print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        console.print(f"wrote {out / 'scan.csv'} and {out / 'scan.png'}")
        return
    result = quantize_checkpoint(checkpoint, out, framework, events, signals, qconf, qat, rate_khz, exact=exact_trigger())
    if len(result.comparison):
        console.print(result.comparison.to_string(float_format=lambda v: f"{v:.4g}"))
    t = result.spec.trigger
    console.print(f"thresholds R1 > {t.threshold_r1:g}, R2 > {t.threshold_r2:g} (regions {', '.join(t.fire_on)})")
    console.print(f"wrote {result.spec_path} and {', '.join(str(p) for p in result.models.values())}")


def register(app) -> None:
    app.command()(quantize)


def run(ctx) -> dict[str, dict]:
    """QAT of the ad stage's pair in the configured framework; spec, export, float-vs-quantized report."""
    import pandas as pd

    from emulation import exact_trigger
    from quantize.qat import weight_sparsity
    from quantize.workflow import quantize_checkpoint

    cfg = ctx.config[NAME]
    try:
        checkpoint = Path(ctx.artifacts["ad"]["checkpoint"])
        events = ctx.artifacts["events"]
        background = Path(events["background"])
        signals = {k: Path(v) for k, v in events["signals"].items()}
    except KeyError as err:
        raise ValueError(f"quantize stage needs the events and ad stages' artifacts (missing {err})") from None
    rate = cfg["rate_khz"] if cfg["rate_khz"] is not None else ctx.config.get("ad", {}).get("rate_khz", DEFAULT_RATE_KHZ)
    rate = float(rate)
    framework = cfg["framework"]
    qconf = QuantConfig.from_dict(cfg["precision"])
    qat = QATConfig.from_dict({**cfg["qat"], "seed": ctx.seed})
    out = ctx.step_dir(NAME)
    result = quantize_checkpoint(checkpoint, out, framework, background, signals, qconf, qat, rate, tuple(cfg["fire_on"]),
                                 exact=exact_trigger())

    t = result.spec.trigger
    sparsity = weight_sparsity(result.weights)
    report = ctx.report
    report.section(
        "Quantization-aware training",
        f"Framework `{framework}`; weights/biases/activations per layer as in `{result.spec_path.name}` "
        f"(default weights {result.spec.autoencoders[0].layers[0].weight}, hidden activations "
        f"{result.spec.autoencoders[0].layers[0].activation_result}, input {result.spec.input}); exact "
        f"accumulators; score {result.spec.autoencoders[0].score.score}. QAT: {qat.epochs} epochs from the "
        f"float checkpoint with the same loss (λ from the float training), weight sparsity {sparsity:.1%}. "
        f"QAT inputs and quantized scores are the bit-exact trigger emulator's. Thresholds at {rate:g} kHz "
        f"(validation background): R1 > {t.threshold_r1:g}, R2 > {t.threshold_r2:g}, trigger = region(s) "
        f"{', '.join(t.fire_on)}. Compared on the held-out test background.",
    )
    if len(result.comparison):
        report.table(result.comparison, caption=f"Float vs quantized: AUC and trigger efficiency at {rate:g} kHz")
    layers = pd.DataFrame([
        {"layer": d.name, "shape": f"{d.n_in}x{d.n_out}", "weight": str(d.weight), "bias": str(d.bias),
         "accumulator": str(d.accumulator), "output": str(d.activation_result)}
        for d in result.spec.autoencoders[0].layers
    ]).set_index("layer")
    report.table(layers, caption="Fixed-point types of ae1 (ae2 identical)")
    artifacts: dict[str, Any] = {"dir": out, "spec": result.spec_path, "weights": out / "weights.safetensors",
                                 "framework": framework}
    artifacts["qonnx" if framework == "brevitas" else "keras"] = result.models

    if cfg["scan"]:
        from quantize.scan import run_scan

        scan_qat = QATConfig.from_dict({**cfg["qat"], "seed": ctx.seed, "epochs": int(cfg["scan_epochs"])})
        frame = run_scan(checkpoint, out / "scan", signals, framework, background,
                         tuple(int(b) for b in cfg["scan_bits"]), tuple(float(s) for s in cfg["scan_sparsity"]),
                         qconf, scan_qat, rate, exact=exact_trigger())
        report.table(frame.set_index("model"), caption="Bit width x sparsity scan (cost: bit operations)")
        report.figure(out / "scan" / "scan.png", "Performance vs BOPs, with the Pareto front")
        artifacts["scan"] = out / "scan" / "scan.csv"
    ctx.artifacts[NAME] = artifacts
    return {
        "quantize": {
            "framework": framework,
            "spec": str(result.spec_path),
            "tpr_ratio_vs_float": result.tpr_ratio,
            "rate_khz": rate,
            "thresholds": [t.threshold_r1, t.threshold_r2],
            "weight_sparsity": sparsity,
        }
    }
