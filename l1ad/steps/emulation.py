"""``l1ad emulate``: the bit-accurate trigger emulator on event files, and plain hls4ml network projects.

Trigger mode (``--events``): the FirmwareSpec of a run (``runs/NAME``) or a spec directory,
per-event scores and bits to HDF5, rate, efficiencies, ABCD counts, optionally checked
against the C simulation of the firmware project. Plain mode (``--inputs``/``--out``): any
hls4ml dense/ReLU project on float inputs. Both are :mod:`emulation.workflow` functions, the
C-simulation checks :mod:`firmware.csim` and :mod:`firmware.trigger_csim` ones; this module parses
the options and prints."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from emulation.stage import TriggerEmulation
    from l1ad.pipeline import RunContext
    from offline.events.stage import EventSamples
    from quantize.stage import QuantizeStageResult

NAME = "emulation"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


# speed_events: the emulator's speed is measured on at least this many events (the test set repeated)
DEFAULTS: dict[str, Any] = {
    "compare_csim_events": 10000,
    "chunk_size": 200000,
    "workers": 1,
    "speed_events": 100000,
}
NEEDS = (
    "events",
    "quantize",
)  # and the firmware step's project, when it ran, for the C-simulation check


def _print_table(console: Console, frame, title: str) -> None:
    table = Table(title=title)
    table.add_column(frame.index.name or "")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for idx, *row in frame.itertuples(
        name=None
    ):  # keeps each column's type (iterrows upcasts ints)
        table.add_row(str(idx), *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def emulate(
    model: Annotated[
        Path,
        typer.Option(
            help="Run directory (runs/NAME), directory with spec.json (trigger mode) or hls4ml project (plain mode)."
        ),
    ],
    events: Annotated[
        list[Path] | None,
        typer.Option(help="Event files (HDF5) to emulate the trigger on; repeat or list after it."),
    ] = None,
    more_events: Annotated[
        list[Path] | None, typer.Argument(help="More event files.", show_default=False)
    ] = None,
    inputs: Annotated[
        Path | None,
        typer.Option(
            help="Plain mode: float inputs (N, n_in) as .npy; cast to input_t like the C simulation."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output: per-event scores and bits (.h5, trigger mode) or outputs (.npy, plain mode)."
        ),
    ] = None,
    compare_csim: Annotated[
        int, typer.Option(help="Also run the C simulation on N events and count mismatches.", min=0)
    ] = 0,
    project: Annotated[
        Path | None,
        typer.Option(help="Trigger mode: the firmware project to C-simulate (default: the run's)."),
    ] = None,
    chunk_size: Annotated[int, typer.Option(help="Events read per block.", min=1)] = DEFAULTS[
        "chunk_size"
    ],
    workers: Annotated[
        int, typer.Option(help="Threads emulating each block (more pays off on idle cores).", min=1)
    ] = DEFAULTS["workers"],
    device: Annotated[
        Device,
        typer.Option(
            help="Where the exact float path runs: cpu (numpy), cuda (torch on the GPU), auto (CUDA when present)."
        ),
    ] = Device.cpu,
) -> None:
    """Emulate the trigger bit-accurately on event files, or an hls4ml dense/ReLU project on inputs."""
    from emulation import emulate_plain, emulate_trigger_files, load_inputs, overflow_table

    console = Console(markup=False)
    files = list(events or []) + list(more_events or [])
    if inputs is not None:
        if files:
            raise ValueError(
                "give either --events (trigger mode) or --inputs (plain network mode), not both"
            )
        if out is None:
            raise ValueError("--inputs and --out are required to emulate a plain hls4ml project")
        summary = emulate_plain(
            model, inputs, out, Console(stderr=True, markup=False), device.value
        )
        if compare_csim > 0:
            import numpy as np

            from firmware.csim import compare_plain_csim

            summary.update(
                compare_plain_csim(
                    model, load_inputs(inputs), np.load(out, allow_pickle=False), compare_csim
                )
            )
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
        summary = emulate_trigger_files(model, files, out, chunk_size, Console(stderr=True, markup=False), workers,
                                        device.value)  # fmt: skip
        if compare_csim > 0:
            from firmware.trigger_csim import compare_trigger_files_csim

            summary.update(
                compare_trigger_files_csim(
                    model, files, compare_csim, project, Console(stderr=True, markup=False)
                )
            )
        console.print(
            f"emulated {summary['events_emulated']} events ({summary['events_per_s']:.3g} events/s) -> {out}"
        )
        if summary["rate_khz"] is not None:
            console.print(
                f"trigger rate {summary['rate_khz']:.4g} ± {summary['rate_sigma_khz']:.2g} kHz at 40 MHz"
            )
        for name, eff in summary["efficiency"].items():
            console.print(f"efficiency {name}: {eff:.4g}")
        if len(summary["table"]):
            frame = summary["table"]
            compact = frame[["events", "N_A", "N_B", "N_C", "N_D"]].copy()
            compact.insert(
                1,
                "fired",
                [
                    f"{v:.4g} ± {e:.2g}"
                    for v, e in zip(frame["fired"], frame["fired_sigma"], strict=True)
                ],
            )
            _print_table(console, compact, "per process: fired fraction (weighted) and ABCD events")
        over = overflow_table(summary["overflows"])
        if len(over):
            _print_table(
                console, over, "overflows (values outside the target type: wrapped or saturated)"
            )
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


def run(ctx: RunContext, events: EventSamples, quantize: QuantizeStageResult) -> TriggerEmulation:
    """Emulate the quantize stage's trigger on every event file; check it against the firmware's C simulation."""
    from emulation.stage import emulate_stage

    cfg = ctx.config[NAME]
    project = ctx.firmware.build.project.path if ctx.firmware is not None else None
    files = [
        events.background,
        *events.signals.values(),
    ]  # background first: the C simulation takes its events
    result = emulate_stage(
        quantize.out_dir,
        files,
        ctx.step_dir(NAME) / "trigger.h5",
        int(cfg["chunk_size"]),
        ctx.console,
        int(cfg["workers"]),
        int(cfg.get("speed_events", DEFAULTS["speed_events"])),
    )
    n_csim = int(cfg["compare_csim_events"])
    if project is None or n_csim <= 0:
        return result
    from firmware.trigger_csim import check_emulation

    return check_emulation(result, quantize.out_dir, files, project, n_csim, ctx.console)
