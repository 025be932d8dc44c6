"""``l1ad firmware`` and the ``firmware`` pipeline stage: the HLS project of the whole trigger,
its bit-exact C simulation, its hardware cost and the budget check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from firmware.defaults import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_CLOCK_PERIOD_NS,
    DEFAULT_CSIM_EVENTS,
    DEFAULT_LATENCY_BUDGET_NS,
    DEFAULT_PART,
    DEFAULT_STRATEGY,
    STRATEGIES,
)
from offline.ad.defaults import DEFAULT_RATE_KHZ

if TYPE_CHECKING:
    from firmware.stage import FirmwareStageResult
    from l1ad.pipeline import RunContext
    from quantize.stage import QuantizeStageResult

NAME = "firmware"
DEFAULTS: dict[str, Any] = {
    "backend": DEFAULT_BACKEND,
    "part": DEFAULT_PART,
    "clock_period_ns": DEFAULT_CLOCK_PERIOD_NS,
    "latency_budget_ns": DEFAULT_LATENCY_BUDGET_NS,
    # dense layers: da4ml's distributed arithmetic (what the headline estimate describes) or Latency
    "strategy": DEFAULT_STRATEGY,
    "name": None,  # default: the run's name
    "csim_events": DEFAULT_CSIM_EVENTS,
    "tb_events": 1000,  # written to tb_data for the C testbench
    "rtl_events": 2000,  # simulated with Verilator when it is installed
    "yosys": False,  # Yosys synthesis of the default model takes many minutes: opt in (l1ad firmware does)
    # the hls4mlEmulator::Model library (hls_projects/NAME/emulator/): g++ -O2 of the default model
    # takes minutes, so opt in (l1ad firmware --emulator)
    "emulator": False,
    "fail_over_budget": False,  # True: the run stops with the budget error; False: the report shows it
}
NEEDS = ("quantize",)
HLS_PROJECTS = Path("hls_projects")


def firmware(
    quantized: Annotated[
        Path,
        typer.Option(help="Quantized model directory (spec.json, weights, ae*.onnx or ae*.h5)."),
    ],
    backend: Annotated[
        str, typer.Option(help=f"hls4ml backend: {', '.join(BACKENDS)}.")
    ] = DEFAULTS["backend"],
    part: Annotated[str, typer.Option(help="FPGA part.")] = DEFAULTS["part"],
    # clock and budget are checked together (firmware.options.check_options: one line, before anything is written)
    clock_period: Annotated[
        float, typer.Option("--clock-period", help="Clock period in ns.")
    ] = DEFAULTS["clock_period_ns"],
    strategy: Annotated[
        str,
        typer.Option(
            help=f"Dense-layer implementation: {', '.join(STRATEGIES)} (hls4ml strategies; the "
            "headline cost estimate describes the one chosen)."
        ),
    ] = DEFAULTS["strategy"],
    name: Annotated[
        str | None, typer.Option(help="Project name: writes hls_projects/NAME.")
    ] = None,
    latency_budget: Annotated[
        float,
        typer.Option(
            "--latency-budget", help="Latency budget in ns (L1 goal for this algorithm: 50)."
        ),
    ] = DEFAULTS["latency_budget_ns"],
    framework: Annotated[
        str | None, typer.Option(help="brevitas or qkeras (default: what the directory holds).")
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(help="Event file for tb_data and the C simulation (default: toy events)."),
    ] = None,
    csim_events: Annotated[int, typer.Option(help="Events to C-simulate.", min=1)] = DEFAULTS[
        "csim_events"
    ],
    yosys: Annotated[bool, typer.Option(help="Synthesise with Yosys when installed.")] = True,
    verilator: Annotated[
        bool, typer.Option(help="Simulate the RTL with Verilator when installed.")
    ] = True,
    emulator: Annotated[
        bool,
        typer.Option(
            help="Also write, build and check the hls4mlEmulator::Model library (NAME/emulator/)."
        ),
    ] = DEFAULTS["emulator"],
    output_root: Annotated[Path, typer.Option(help="Where projects go.")] = HLS_PROJECTS,
    scan_latency: Annotated[
        bool,
        typer.Option(
            "--scan-latency",
            help="Instead of a project: latency vs trigger efficiency per signal "
            "over the score-feature knob (needs --events and --signal); writes OUTPUT_ROOT/NAME-latency-scan.",
        ),
    ] = False,
    signal: Annotated[
        list[str] | None,
        typer.Option(help="NAME=PATH signal events for --scan-latency, repeatable."),
    ] = None,
    scan_features: Annotated[
        str | None,
        typer.Option(
            help="Score feature counts for --scan-latency, e.g. 57,28,14 (default: halving)."
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option(help="Working trigger rate in kHz for --scan-latency.", min=0)
    ] = DEFAULT_RATE_KHZ,
) -> None:
    """Write the HLS project of the whole trigger, check it bit for bit, estimate its cost, check the budget."""
    from firmware.options import CLI_NAMES, check_options
    from firmware.project import PROJECT_KIND
    from firmware.stage import firmware_stage
    from offline.artifacts import check_replaceable, plain_name

    console = Console(markup=False)
    # every option is checked before anything is loaded or written
    settings = check_options(
        backend, part, clock_period, latency_budget, strategy=strategy, names=CLI_NAMES
    )
    if name is None:
        project_name = plain_name(
            quantized.resolve().name, "--name (default: the --quantized directory's name)"
        )
    else:
        project_name = plain_name(name, "--name")
    check_replaceable(output_root / project_name, PROJECT_KIND)
    if scan_latency:
        _scan(quantized, framework, events, signal, scan_features, rate, settings.clock_period_ns, latency_budget,
              output_root / f"{project_name}-latency-scan", console, settings.part)  # fmt: skip
        return
    firmware_stage(
        quantized,
        output_root / project_name,
        settings,
        latency_budget,
        framework=framework,
        events=events,
        csim_events=csim_events,
        use_verilator=verilator,
        use_yosys=yosys,
        emulator=emulator,
        fail_over_budget=True,
        console=console,
    )


def _scan(quantized: Path, framework: str | None, events: Path | None, signal: list[str] | None, features: str | None,
          rate_khz: float, clock_period_ns: float, budget_ns: float, out: Path, console: Console,
          part: str) -> None:  # fmt: skip
    """``--scan-latency``: :func:`firmware.latency_scan.scan_latency_files` (the emulator's exact scores)."""
    from firmware.build import load_quantized
    from firmware.latency_scan import scan_latency_files
    from l1ad.options import named_paths
    from offline.ad.metrics import BUNCH_CROSSING_KHZ

    signals = named_paths(signal)
    if events is None or not signals:
        raise ValueError(
            "--scan-latency needs background events (--events FILE) and at least one --signal NAME=PATH"
        )
    try:
        counts = None if features is None else [int(k) for k in features.split(",")]
    except ValueError:
        raise ValueError(
            f"--scan-features expects comma-separated integers, got {features!r}"
        ) from None
    if not 0 < rate_khz < BUNCH_CROSSING_KHZ:
        raise ValueError(f"--rate must be in (0, {BUNCH_CROSSING_KHZ:g}) kHz, got {rate_khz:g}")

    from rich.progress import Progress

    model = load_quantized(quantized, framework)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("latency scan (score features)", total=None)
        frame, paths = scan_latency_files(
            model.spec, model.weights, events, signals, clock_period_ns, out, counts, rate_khz, budget_ns,
            progress=lambda done, total: bar.update(task, completed=done, total=total), part=part,
        )  # fmt: skip
    console.print(f"latency vs trigger efficiency at {rate_khz:g} kHz (knob: score features, largest background "
                  f"variance first; latency: da4ml's stages timed with {part}'s delays, {clock_period_ns:g} ns "
                  "clock)")  # fmt: skip
    console.print(frame.to_string(index=False))
    console.print(f"wrote {paths['csv']}, {paths['json']}, {paths['png']}")


def firmware_reports(
    project: Annotated[
        Path, typer.Argument(help="Project written by l1ad firmware (hls_projects/NAME).")
    ],
) -> None:
    """Put the Vivado/Vitis reports of a built project beside l1ad's estimates (cost/cost.csv), with their ratio."""
    from firmware.cost import add_vendor_report, read_cost_table
    from offline.artifacts import read_json, write_json

    summary_path = project / "cost" / "summary.json"
    if not summary_path.is_file():
        raise ValueError(
            f"{summary_path}: no cost summary; run l1ad firmware for this project first"
        )
    summary = read_json(summary_path)
    report = read_cost_table(
        project, float(summary["clock_period_ns"]), summary.get("strategy", "latency")
    )
    if not add_vendor_report(report, project):
        raise ValueError(
            f"{project}: no readable Vivado/Vitis report (run vitis_hls -f build_prj.tcl there first)"
            + "".join(f"; {note}" for note in report.notes)
        )
    table = report.table()
    table.to_csv(project / "cost" / "cost.csv")
    ratios = {m: report.estimate_error(m) for m in table.index}
    summary["estimate_vs_reported"] = {m: r for m, r in ratios.items() if r is not None}
    summary["vendor_reports"] = [n for n in report.notes if "(reported):" in n]
    write_json(summary_path, summary)
    console = Console(markup=False)
    console.print(table.to_string())
    for note in report.notes:
        console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.command()(firmware)
    app.command("firmware-reports")(firmware_reports)


def run(ctx: RunContext, quantize: QuantizeStageResult) -> FirmwareStageResult:
    """Project for the quantize stage's model under hls_projects/<name>: checked, costed, budget-checked
    on the events stage's background (toy events without one)."""
    from firmware.options import check_options
    from firmware.stage import firmware_stage
    from offline.artifacts import plain_name

    cfg = ctx.config[NAME]
    names = {
        k: f"{NAME}.{k}"
        for k in (
            "backend",
            "part",
            "clock_period_ns",
            "latency_budget_ns",
            "reuse_factor",
            "strategy",
        )
    }
    settings = check_options(
        cfg["backend"], cfg["part"], cfg["clock_period_ns"], cfg["latency_budget_ns"],
        strategy=cfg["strategy"], names=names,
    )  # fmt: skip
    name = plain_name(
        cfg["name"] or ctx.config.get("name", "l1ad"), "firmware.name (default: the run's name)"
    )
    return firmware_stage(
        quantize.out_dir,
        HLS_PROJECTS / name,
        settings,
        float(cfg["latency_budget_ns"]),
        framework=quantize.framework,
        models=list(quantize.models.values()),
        events=ctx.events.background if ctx.events is not None else None,
        csim_events=int(cfg["csim_events"]),
        seed=ctx.seed,
        tb_events=int(cfg["tb_events"]),
        rtl_events=int(cfg["rtl_events"]),
        use_yosys=bool(cfg["yosys"]),
        emulator=bool(cfg["emulator"]),
        fail_over_budget=bool(cfg["fail_over_budget"]),
        console=ctx.console,
    )
