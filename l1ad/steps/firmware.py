"""``l1ad firmware`` and the ``firmware`` pipeline stage: the HLS project of the whole trigger,
its bit-exact C simulation, its hardware cost and the budget check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from emulation import TriggerEmulator
from firmware.budget import BudgetError, part_capacity
from firmware.build import DEFAULT_LATENCY_BUDGET_NS, FirmwareResult, build_firmware, load_quantized
from firmware.convert import BACKENDS, DEFAULT_PART, ConversionSettings
from firmware.example import event_words
from l1ad import options

NAME = "firmware"
DEFAULTS: dict[str, Any] = {
    "backend": "Vitis",
    "part": DEFAULT_PART,
    "clock_period_ns": 5.0,
    "latency_budget_ns": DEFAULT_LATENCY_BUDGET_NS,
    "name": None,  # default: the run's name
    "csim_events": 10_000,  # C-simulated and compared with the emulator (plus edge-value events)
    "tb_events": 1000,  # written to tb_data for the C testbench
    "rtl_events": 2000,  # simulated with Verilator when it is installed
    "yosys": False,  # Yosys synthesis of the default model takes many minutes: opt in (l1ad firmware does)
    "fail_over_budget": False,  # True: the run stops with the budget error; False: the report shows it
}
HLS_PROJECTS = Path("hls_projects")


def _print_result(result: FirmwareResult, console: Console) -> None:
    # console: markup=False (the table holds ap_fixed<...>[...] text rich would parse)
    console.print(f"wrote {result.project.path} ({result.settings.backend}, {result.project.frontend} frontend)")
    console.print(
        f"C simulation (g++) of the whole trigger vs the integer emulator: "
        f"{result.csim_mismatches} mismatching events of {result.csim_events}"
    )
    if result.cost.rtl_mismatches is not None:
        console.print(f"RTL (Verilator) vs emulator: {result.cost.rtl_mismatches} mismatches of {result.cost.rtl_events}")
    console.print(result.cost.table().to_string())
    for note in result.cost.notes:
        console.print(f"note: {note}")
    console.print(result.verdict.summary())


def firmware(
    quantized: Annotated[Path, typer.Option(help="Quantized model directory (spec.json, weights, ae*.onnx or ae*.h5).")],
    backend: Annotated[str, typer.Option(help=f"hls4ml backend: {', '.join(BACKENDS)}.")] = DEFAULTS["backend"],
    part: Annotated[str, typer.Option(help="FPGA part.")] = DEFAULTS["part"],
    clock_period: Annotated[float, typer.Option("--clock-period", help="Clock period in ns.", callback=options.positive)] = DEFAULTS[
        "clock_period_ns"
    ],
    name: Annotated[str | None, typer.Option(help="Project name: writes hls_projects/NAME.")] = None,
    latency_budget: Annotated[float, typer.Option("--latency-budget", help="Latency budget in ns (L1 goal for this algorithm: 50).", callback=options.positive)] = DEFAULTS[
        "latency_budget_ns"
    ],
    framework: Annotated[str | None, typer.Option(help="brevitas or qkeras (default: what the directory holds).")] = None,
    events: Annotated[Path | None, typer.Option(help="Event file for tb_data and the C simulation (default: toy events).")] = None,
    csim_events: Annotated[int, typer.Option(help="Events to C-simulate.", min=1)] = DEFAULTS["csim_events"],
    yosys: Annotated[bool, typer.Option(help="Synthesise with Yosys when installed.")] = True,
    verilator: Annotated[bool, typer.Option(help="Simulate the RTL with Verilator when installed.")] = True,
    output_root: Annotated[Path, typer.Option(help="Where projects go.")] = HLS_PROJECTS,
) -> None:
    """Write the HLS project of the whole trigger, check it bit for bit, estimate its cost, check the budget."""
    console = Console(markup=False)
    part_capacity(part)  # an unknown part fails now, not after the build
    model = load_quantized(quantized, framework)
    settings = ConversionSettings(backend=backend, part=part, clock_period_ns=clock_period)
    project_name = name or quantized.resolve().name
    words = event_words(events, csim_events, model.spec)
    result = build_firmware(
        model, output_root / project_name, settings, words, latency_budget, use_verilator=verilator, use_yosys=yosys,
        reference=TriggerEmulator(model.spec, model.weights),
    )
    _print_result(result, console)
    if result.csim_mismatches:
        raise ValueError(f"C simulation differs from the emulator in {result.csim_mismatches} events")
    result.verdict.raise_if_over()


def register(app: typer.Typer) -> None:
    app.command()(firmware)


def run(ctx) -> dict[str, dict]:
    """Project for the quantize stage's model under hls_projects/<name>, cost table and verdict in the report."""
    cfg = ctx.config[NAME]
    try:
        q = ctx.artifacts["quantize"]
        qdir = Path(q["dir"])
    except KeyError as err:
        raise ValueError(f"firmware stage needs the quantize stage's artifacts (missing {err})") from None
    exported = q.get("qonnx") or q.get("keras")
    paths = list(exported.values()) if isinstance(exported, dict) else None
    part_capacity(cfg["part"])
    model = load_quantized(qdir, q.get("framework"), paths)
    background = ctx.artifacts.get("events", {}).get("background")
    words = event_words(Path(background) if background else None, int(cfg["csim_events"]), model.spec, ctx.seed)
    settings = ConversionSettings(cfg["backend"], cfg["part"], float(cfg["clock_period_ns"]))
    name = cfg["name"] or ctx.config.get("name", "l1ad")
    result = build_firmware(
        model,
        HLS_PROJECTS / name,
        settings,
        words,
        float(cfg["latency_budget_ns"]),
        tb_events=int(cfg["tb_events"]),
        rtl_events=int(cfg["rtl_events"]),
        use_yosys=bool(cfg["yosys"]),
        reference=TriggerEmulator(model.spec, model.weights),
    )
    _print_result(result, ctx.console)
    report = ctx.report
    report.section(
        "Firmware: hls4ml project of the whole trigger",
        f"`{result.project.path}` ({settings.backend}, part {settings.part}, clock {settings.clock_period_ns:g} ns, "
        f"{model.frontend} frontend from {model.origin}). Top `trigger_top`: 19 L1 objects as hardware words → "
        f"preprocessing → both autoencoders (one hls4ml function) → reconstruction errors → ABCD and trigger bits. "
        f"C simulation (g++) vs the integer emulator: {result.csim_mismatches} mismatching events of "
        f"{result.csim_events} (incl. all-empty, saturating-pT and extreme-word events). "
        + (
            f"RTL (Verilator) vs emulator: {result.cost.rtl_mismatches} of {result.cost.rtl_events}. "
            if result.cost.rtl_mismatches is not None
            else ""
        )
        + "Figures are estimates from the sources named in each column (no vendor tool was run unless a "
        "Vivado/Vitis column shows).",
    )
    report.table(result.cost.table(), caption="Hardware cost by source")
    report.text("```\n" + result.verdict.summary() + "\n```")
    if not result.verdict.within_budget:
        report.text("```\n" + result.verdict.error_message() + "\n```")
    for note in result.cost.notes:
        report.text(f"- {note}")
    ctx.artifacts[NAME] = {"project": result.project.path, "cost": result.project.path / "cost" / "summary.json"}
    if result.csim_mismatches:
        raise ValueError(f"firmware: C simulation differs from the emulator in {result.csim_mismatches} events")
    if not result.verdict.within_budget and cfg["fail_over_budget"]:
        raise BudgetError(result.verdict.error_message())
    keys = ("project", "backend", "clock_period_ns", "latency_cycles", "latency_ns", "ii_cycles", "luts", "ffs",
            "dsps", "brams", "estimate_source", "latency_budget_ns", "within_budget", "csim_events", "csim_mismatches")
    summary = result.summary()
    return {NAME: {k: summary[k] for k in keys}}
