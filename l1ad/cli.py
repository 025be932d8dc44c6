"""The ``l1ad`` command line: a thin layer over the library (every command works from Python too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from l1ad import __version__
from l1ad.errors import ErrorReportingTyper, err_console
from l1ad.interrupts import (
    Interrupted,
    exit_on_sigterm,
    handling_interrupts,
    raise_if_interrupted,
)
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
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """l1ad: from offline training to Level-1 firmware."""
    # a batch system stops jobs with SIGTERM: exit through Python, so no partial output stays
    ctx.call_on_close(exit_on_sigterm())


for _step in STEPS:
    _step.register(ErrorReportingTyper(app))


@ErrorReportingTyper(app).command()
def run(
    config: Annotated[
        Path | None, typer.Option(help="YAML/JSON run config; built-in defaults if omitted.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Run name (directory under runs/); overrides the config.")
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(
            help="Only these steps, comma-separated (e.g. events,ad); each needs the steps it reads from."
        ),
    ] = None,
) -> None:
    """Run every stage in order into runs/NAME/ (summary.json, report.md, plots); runs/latest points at it."""
    from l1ad.pipeline import pipeline_steps, resolve_config, run_pipeline

    selected = None if steps is None else [s.strip() for s in steps.split(",") if s.strip()]
    pipeline_steps(selected)  # an unknown step stops here, before the config is read
    resolved = resolve_config(config)
    if name is not None:
        resolved["name"] = name
    # SIGTERM (batch systems) and Ctrl-C unwind through the atomic run directory: nothing partial stays
    run_dir = None
    with handling_interrupts():
        try:
            run_dir = run_pipeline(resolved, err_console, selected)
            raise_if_interrupted()
        except Interrupted as err:
            if run_dir is None:
                where = Path(resolved["runs_dir"]) / str(resolved["name"])
                state = f"{where} was not written (an earlier run of that name is kept)"
            else:
                state = f"it came after {run_dir} was complete"
            err_console.print(
                Text.assemble(("interrupted", "bold red"), f" by {err.signal_name}: {state}")
            )
            raise typer.Exit(err.exit_code) from None
    err_console.print(
        Text.assemble(
            ("run finished:", "bold green"), f" {run_dir}/summary.json, {run_dir}/report.md"
        )
    )
