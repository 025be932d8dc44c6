"""``l1ad emulate``: the bit-accurate trigger emulator on event files, and plain hls4ml network projects.

Trigger mode (``--events``): the FirmwareSpec of a run (``runs/NAME``) or a spec directory,
per-event scores and bits to HDF5, rate, efficiencies, ABCD counts, optionally checked
against the C simulation of the firmware project. Plain mode (``--inputs``/``--out``): any
hls4ml dense/ReLU project on float inputs. Both are :mod:`emulation.workflow` functions; this
module parses the options and prints."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

NAME = "emulation"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


# speed_events: the emulator's speed is measured on at least this many events (the test set repeated)
DEFAULTS: dict[str, Any] = {"compare_csim_events": 10000, "chunk_size": 200000, "workers": 1, "speed_events": 100000}


def _print_table(console: Console, frame, title: str) -> None:
    table = Table(title=title)
    table.add_column(frame.index.name or "")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for idx, *row in frame.itertuples(name=None):  # keeps each column's type (iterrows upcasts ints)
        table.add_row(str(idx), *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def emulate(
    model: Annotated[Path, typer.Option(help="Run directory (runs/NAME), directory with spec.json (trigger mode) or hls4ml project (plain mode).")],
    events: Annotated[list[Path] | None, typer.Option(help="Event files (HDF5) to emulate the trigger on; repeat or list after it.")] = None,
    more_events: Annotated[list[Path] | None, typer.Argument(help="More event files.", show_default=False)] = None,
    inputs: Annotated[Path | None, typer.Option(help="Plain mode: float inputs (N, n_in) as .npy; cast to input_t like the C simulation.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output: per-event scores and bits (.h5, trigger mode) or outputs (.npy, plain mode).")] = None,
    compare_csim: Annotated[int, typer.Option(help="Also run the C simulation on N events and count mismatches.", min=0)] = 0,
    project: Annotated[Path | None, typer.Option(help="Trigger mode: the firmware project to C-simulate (default: the run's).")] = None,
    chunk_size: Annotated[int, typer.Option(help="Events read per block.", min=1)] = DEFAULTS["chunk_size"],
    workers: Annotated[int, typer.Option(help="Threads emulating each block (more pays off on idle cores).", min=1)] = 1,
    device: Annotated[Device, typer.Option(help="Where the exact float path runs: cpu (numpy), cuda (torch on the GPU), auto (CUDA when present).")] = Device.cpu,
) -> None:
    """Emulate the trigger bit-accurately on event files, or an hls4ml dense/ReLU project on inputs."""
    from emulation import emulate_plain, emulate_trigger_files, overflow_table

    console = Console(markup=False)
    files = list(events or []) + list(more_events or [])
    if inputs is not None:
        if files:
            raise ValueError("give either --events (trigger mode) or --inputs (plain network mode), not both")
        if out is None:
            raise ValueError("--inputs and --out are required to emulate a plain hls4ml project")
        summary = emulate_plain(model, inputs, out, compare_csim, Console(stderr=True, markup=False), device.value)
        console.print(
            f"emulated {summary['events_emulated']} events ({summary['events_per_s']:.3g} events/s) -> {out}"
        )
        table = Table(title="overflows (values outside the target type: wrapped or saturated)")
        for col in ("cast", "overflows", "values"):
            table.add_column(col, justify="right" if col != "cast" else "left")
        for name, row in summary["overflows"].items():
            table.add_row(name, str(row["overflows"]), str(row["values"]))
        console.print(table)
    elif files:
        out = out or Path("emulation.h5")
        summary = emulate_trigger_files(model, files, out, compare_csim, project, chunk_size, Console(stderr=True, markup=False), workers,
                                        device.value)  # fmt: skip
        console.print(
            f"emulated {summary['events_emulated']} events ({summary['events_per_s']:.3g} events/s) -> {out}"
        )
        if summary["rate_khz"] is not None:
            console.print(f"trigger rate {summary['rate_khz']:.4g} ± {summary['rate_sigma_khz']:.2g} kHz at 40 MHz")
        for name, eff in summary["efficiency"].items():
            console.print(f"efficiency {name}: {eff:.4g}")
        if len(summary["table"]):
            frame = summary["table"]
            compact = frame[["events", "N_A", "N_B", "N_C", "N_D"]].copy()
            compact.insert(1, "fired", [f"{v:.4g} ± {e:.2g}" for v, e in zip(frame["fired"], frame["fired_sigma"], strict=True)])
            _print_table(console, compact, "per process: fired fraction (weighted) and ABCD events")
        over = overflow_table(summary["overflows"])
        if len(over):
            _print_table(console, over, "overflows (values outside the target type: wrapped or saturated)")
        else:
            console.print("no overflows")
    else:
        raise ValueError(
            "--inputs and --out are required to emulate a plain hls4ml project; give --events FILE... to emulate the trigger"
        )
    if summary.get("csim_events_compared"):
        console.print(
            f"C simulation: {summary['csim_events_compared']} events compared, "
            f"{summary['csim_mismatches']} mismatches ({summary['csim_events_per_s']:.3g} events/s)"
        )
        if summary["csim_mismatches"]:
            raise ValueError(f"{summary['csim_mismatches']} events differ from the C simulation")


def register(app: typer.Typer) -> None:
    app.command()(emulate)


def run(ctx) -> dict[str, dict]:
    """Emulate the quantize stage's trigger on every event file; check it against the firmware's C simulation."""
    from emulation import emulate_trigger_files, overflow_table

    cfg = ctx.config[NAME]
    try:
        spec_dir = Path(ctx.artifacts["quantize"]["dir"])
        ev = ctx.artifacts["events"]
        background = [Path(ev["background"])]
        signals = {k: Path(v) for k, v in ev["signals"].items()}
    except KeyError as err:
        raise ValueError(f"emulation stage needs the events and quantize stages' artifacts (missing {err})") from None
    project = ctx.artifacts.get("firmware", {}).get("project")
    out = ctx.step_dir(NAME) / "trigger.h5"
    n_csim = int(cfg["compare_csim_events"]) if project is not None else 0
    summary = emulate_trigger_files(spec_dir, background + list(signals.values()), out, n_csim,
                                    Path(project) if project else None, int(cfg["chunk_size"]), ctx.console,
                                    int(cfg["workers"]), speed_events=int(cfg.get("speed_events", DEFAULTS["speed_events"])))
    table, overflows = summary.pop("table"), summary.pop("overflows")
    report = ctx.report
    rate = summary["rate_khz"]
    csim = (
        f"C simulation of `{summary.get('csim_project')}` on {summary['csim_events_compared']} events "
        f"(background plus empty, saturating and extreme words): {summary['csim_mismatches']} mismatches."
        if n_csim else "No firmware project in this run: no C-simulation comparison."
    )
    report.section(
        "Trigger emulation",
        f"Bit-exact emulation of the FirmwareSpec on {summary['events_emulated']} events "
        f"({summary['events_per_s']:.3g} events/s, {summary.get('events_per_cpu_s') or float('nan'):.3g} per CPU second, "
        f"measured on {summary.get('speed_events', summary['events_emulated'])} events). "
        + (f"Rate {rate:.4g} ± {summary['rate_sigma_khz']:.2g} kHz at 40 MHz. " if rate is not None else "")
        + csim,
    )
    if len(table):
        report.table(table, caption="Per process: fired fraction (± binomial) and ABCD region counts (N raw, W weighted)")
    over = overflow_table(overflows)
    if len(over):
        report.table(over, caption="Overflows per cast (values outside the target type: saturated or wrapped)")
    else:
        report.text("No value overflowed any fixed-point type.")
    ctx.artifacts[NAME] = {"scores": out}
    keys = ("events_emulated", "events_per_s", "events_per_cpu_s", "speed_events", "csim_events_compared",
            "csim_mismatches", "csim_events_per_s", "rate_khz", "efficiency")
    return {NAME: {k: summary.get(k) for k in keys}}
