"""``l1ad emulate``: bit-accurate emulation of an hls4ml project (plain dense/ReLU network mode)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from offline.artifacts import atomic_path

NAME = "emulation"
DEFAULTS: dict[str, Any] = {}
run = None  # the pipeline stage (trigger mode) comes later


def _load_inputs(path: Path) -> np.ndarray:
    if not path.exists():
        raise ValueError(f"{path}: inputs file does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array: {err}") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise ValueError(f"{path}: expected a numeric array, got {getattr(x, 'dtype', type(x))}")
    return x


def emulate_plain(
    model: Path, inputs: Path, out: Path, compare_csim: int = 0, console: Console | None = None
) -> dict[str, Any]:
    """Emulate an hls4ml project on ``inputs`` (.npy, (N, n_in) floats); write outputs (N, n_out) float64."""
    from emulation.hls_project import load_hls_project
    from emulation.network import emulate_project

    console = console or Console(stderr=True)
    project = load_hls_project(model)
    x = _load_inputs(inputs)
    if x.ndim != 2 or x.shape[1] != project.n_inputs:
        raise ValueError(f"{inputs}: shape {x.shape}, the project {project.top} expects (N, {project.n_inputs})")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"emulating {project.top}", total=len(x))
        result = emulate_project(project, x, progress=lambda n: bar.advance(task, n))
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, result.outputs)
    summary: dict[str, Any] = {
        "events_emulated": len(x),
        "events_per_s": result.events_per_s,
        "overflows": result.overflows.as_dict(),
    }
    if compare_csim > 0:
        from emulation.csim import CSimulation

        n = min(compare_csim, len(x))
        sim = CSimulation(model)
        start = time.perf_counter()
        expected = sim.predict(x[:n])
        seconds = time.perf_counter() - start
        summary["csim_events_compared"] = n
        summary["csim_mismatches"] = int(np.any(expected != result.outputs[:n], axis=1).sum())
        summary["csim_events_per_s"] = n / seconds if seconds > 0 else None
    return summary


def emulate(
    model: Annotated[Path, typer.Option(help="hls4ml project directory (firmware/defines.h, parameters.h, weights/).")],
    inputs: Annotated[Path | None, typer.Option(help="Float inputs (N, n_in) as .npy; cast to input_t like the C simulation.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the exact fixed-point outputs (N, n_out) here as float64 .npy.")] = None,
    compare_csim: Annotated[int, typer.Option(help="Also run hls4ml C simulation on the first N events and count mismatches.")] = 0,
) -> None:
    """Emulate an hls4ml dense/ReLU project bit-accurately on many events at once."""
    if inputs is None or out is None:
        raise ValueError("--inputs and --out are required to emulate a plain hls4ml project")
    console = Console()
    summary = emulate_plain(model, inputs, out, compare_csim, Console(stderr=True))
    console.print(
        f"emulated {summary['events_emulated']} events ({summary['events_per_s']:.3g} events/s) -> {out}"
    )
    table = Table(title="overflows (values outside the target type: wrapped or saturated)")
    for col in ("cast", "overflows", "values"):
        table.add_column(col, justify="right" if col != "cast" else "left")
    for name, row in summary["overflows"].items():
        table.add_row(name, str(row["overflows"]), str(row["values"]))
    console.print(table)
    if "csim_mismatches" in summary:
        console.print(
            f"C simulation: {summary['csim_events_compared']} events compared, "
            f"{summary['csim_mismatches']} mismatches ({summary['csim_events_per_s']:.3g} events/s)"
        )
        if summary["csim_mismatches"]:
            raise ValueError(f"{summary['csim_mismatches']} events differ from hls4ml C simulation")


def register(app: typer.Typer) -> None:
    app.command()(emulate)
