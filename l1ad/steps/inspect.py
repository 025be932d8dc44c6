"""``l1ad inspect``: what is in an event file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

NAME = "inspect"
DEFAULTS: dict = {}
run = None  # not a pipeline step


def inspect(
    file: Annotated[Path, typer.Argument(help="Event file in the ADC2021 HDF5 layout.")],
    plots: Annotated[
        Path | None, typer.Option(help="Write PNG histograms (pT, eta, phi, multiplicity) here.")
    ] = None,
) -> None:
    """Summarise an event file: events, object multiplicities, pT/eta/phi ranges, labels, weights."""
    from offline.events.summary import plot_summary, summarize

    summary = summarize(file)
    console = Console(markup=False)
    table = Table(title=f"{file} — {summary.events} events")
    frame = summary.table()
    table.add_column("object")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for obj, row in frame.iterrows():
        table.add_row(str(obj), *(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    if summary.has_weights:
        console.print(
            f"weights: sum {summary.weight_sum:.6g}, min {summary.weight_min:.3g}, max {summary.weight_max:.3g}"
        )
    else:
        console.print("weights: none (every event counts 1)")
    if summary.label_counts:
        console.print(
            "labels: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.label_counts.items()))
        )
    else:
        console.print("labels: none")
    if summary.metadata:
        console.print(
            f"generator: {summary.metadata.get('process', '?')}, seed {summary.metadata.get('seed', '?')}"
        )
    if plots is not None:
        for path in plot_summary(summary, plots):
            console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command()(inspect)
