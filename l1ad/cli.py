"""The ``l1ad`` command line: a thin layer over the library (every command works from Python too)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from l1ad import __version__
from l1ad.errors import ErrorReportingTyper, err_console
from l1ad.steps import STEPS

app = typer.Typer(
    name="l1ad",
    help="Anomaly-detection trigger for the LHC: events, training, ABCD, QAT, hls4ml firmware, emulation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"l1ad {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """l1ad: from offline training to Level-1 firmware."""


for _step in STEPS:
    _step.register(ErrorReportingTyper(app))


@ErrorReportingTyper(app).command()
def run(
    config: Annotated[Path | None, typer.Option(help="YAML/JSON run config; built-in defaults if omitted.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (directory under runs/); overrides the config.")] = None,
) -> None:
    """Run every stage in order into runs/NAME/ (summary.json, report.md, plots); runs/latest points at it."""
    from l1ad.pipeline import resolve_config, run_pipeline

    # a batch system stops jobs with SIGTERM: exit through Python so the partial run directory is removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    resolved = resolve_config(config)
    if name is not None:
        resolved["name"] = name
    run_dir = run_pipeline(resolved, err_console)
    err_console.print(Text.assemble(("run finished:", "bold green"), f" {run_dir}/summary.json, {run_dir}/report.md"))
