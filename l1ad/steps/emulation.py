"""``l1ad emulate``: the bit-accurate trigger emulator on event files, and plain hls4ml network projects.

Trigger mode (``--events``): the FirmwareSpec of a run (``runs/NAME``) or a spec directory,
per-event scores and bits to HDF5, rate, efficiencies, ABCD counts, optionally checked
against the C simulation of the firmware project. Plain mode (``--inputs``/``--out``): any
hls4ml dense/ReLU project on float inputs."""

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
DEFAULTS: dict[str, Any] = {"compare_csim_events": 10000, "chunk_size": 200000, "workers": 1}


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


def _csim_words(background: list[Path], n: int, spec, seed: int = 0) -> np.ndarray:
    """The first events of the background files plus edge words (empty, saturating, extreme): n in all."""
    from firmware.example import edge_words
    from offline.events.io import iter_events
    from offline.preprocess import to_hardware

    n_edges = max(8, n // 10)
    blocks, have = [], 0
    for path in background:
        for block in iter_events(path, max(1, n - n_edges - have)):
            blocks.append(to_hardware(block.features))
            have += len(block)
            break
        if have >= n - n_edges:
            break
    words = np.concatenate(blocks) if blocks else np.zeros((0, 57), dtype=np.int64)
    return np.concatenate([words[: n - n_edges], edge_words(spec, np.random.default_rng(seed), n - min(len(words), n - n_edges))])


def _overflow_table(overflows) -> Any:
    frame = overflows.report()
    return frame[frame["overflows"] > 0].set_index("name") if len(frame) else frame


def emulate_trigger_files(
    model: Path,
    events: list[Path],
    out: Path,
    compare_csim: int = 0,
    project: Path | None = None,
    chunk_size: int = 200_000,
    console: Console | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Trigger mode of ``l1ad emulate``; returns the ``emulation`` summary (plus ``table``/``overflows``)."""
    import tempfile

    from emulation.events import emulate_events, load_trigger
    from emulation.trigger_csim import (
        compare_trigger_csim,
        find_trigger_project,
        write_trigger_project,
    )
    from offline.events.io import event_count

    console = console or Console(stderr=True)
    spec, weights, spec_path = load_trigger(model)
    total = sum(event_count(p) if p.exists() else 0 for p in events)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("emulating the trigger", total=total)
        result = emulate_events((spec, weights), events, chunk_size, out, lambda n: bar.advance(task, n), workers)
    summary: dict[str, Any] = result.summary()
    summary.update({"spec": str(spec_path), "out": str(out), "rate_sigma_khz": summary["rate_sigma_khz"],
                    "csim_events_compared": 0, "csim_mismatches": None, "csim_events_per_s": None})
    if compare_csim > 0:
        words = _csim_words(events, compare_csim, spec)
        project = project or find_trigger_project(model)
        with tempfile.TemporaryDirectory(prefix="l1ad_trigger_prj_") as tmp:
            if project is None:
                console.print("no firmware project recorded for this model: writing one (hls4ml, QKeras frontend)")
                project = write_trigger_project(spec, weights, Path(tmp) / "trigger", words)
            comparison = compare_trigger_csim(spec, weights, project, words)
        summary.update({"csim_events_compared": comparison.events, "csim_mismatches": comparison.mismatches,
                        "csim_events_per_s": comparison.csim_events_per_s, "csim_project": str(project)})
    summary["table"] = result.table
    summary["overflows"] = result.overflows
    return summary


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
    compare_csim: Annotated[int, typer.Option(help="Also run the C simulation on N events and count mismatches.")] = 0,
    project: Annotated[Path | None, typer.Option(help="Trigger mode: the firmware project to C-simulate (default: the run's).")] = None,
    chunk_size: Annotated[int, typer.Option(help="Events read per block.")] = DEFAULTS["chunk_size"],
    workers: Annotated[int, typer.Option(help="Threads emulating each block (more pays off on idle cores).")] = 1,
) -> None:
    """Emulate the trigger bit-accurately on event files, or an hls4ml dense/ReLU project on inputs."""
    console = Console()
    files = list(events or []) + list(more_events or [])
    if inputs is not None:
        if files:
            raise ValueError("give either --events (trigger mode) or --inputs (plain network mode), not both")
        if out is None:
            raise ValueError("--inputs and --out are required to emulate a plain hls4ml project")
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
    elif files:
        out = out or Path("emulation.h5")
        summary = emulate_trigger_files(model, files, out, compare_csim, project, chunk_size, Console(stderr=True), workers)
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
        over = _overflow_table(summary["overflows"])
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
                                    int(cfg["workers"]))
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
        f"({summary['events_per_s']:.3g} events/s). "
        + (f"Rate {rate:.4g} ± {summary['rate_sigma_khz']:.2g} kHz at 40 MHz. " if rate is not None else "")
        + csim,
    )
    if len(table):
        report.table(table, caption="Per process: fired fraction (± binomial) and ABCD region counts (N raw, W weighted)")
    over = _overflow_table(overflows)
    if len(over):
        report.table(over, caption="Overflows per cast (values outside the target type: saturated or wrapped)")
    else:
        report.text("No value overflowed any fixed-point type.")
    ctx.artifacts[NAME] = {"scores": out}
    keys = ("events_emulated", "events_per_s", "csim_events_compared", "csim_mismatches", "csim_events_per_s",
            "rate_khz", "efficiency")
    return {NAME: {k: summary[k] for k in keys}}
