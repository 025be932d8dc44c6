"""The ``l1ad`` command line: a thin layer over the library (every command works from Python too)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from l1ad import __version__
from l1ad.steps import STEPS

app = typer.Typer(
    name="l1ad",
    help="Anomaly-detection trigger for the LHC: events, training, ABCD, QAT, hls4ml firmware, emulation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


class _ErrorReportingTyper:
    """Registers commands so that bad input prints one clear line and exits 1, not a traceback."""

    def __init__(self, app: typer.Typer) -> None:
        self._app = app

    def command(self, *args, **kwargs):
        def decorator(func):
            @functools.wraps(func)
            def wrapper(*a, **kw):
                try:
                    return func(*a, **kw)
                except (ValueError, OSError, KeyError) as err:
                    err_console.print(f"[bold red]error:[/] {err}")
                    raise typer.Exit(1) from None

            return self._app.command(*args, **kwargs)(wrapper)

        return decorator

    def add_typer(self, *args, **kwargs):
        return self._app.add_typer(*args, **kwargs)


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
    _step.register(_ErrorReportingTyper(app))


@_ErrorReportingTyper(app).command()
def run(
    config: Annotated[Path | None, typer.Option(help="YAML/JSON run config; built-in defaults if omitted.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (directory under runs/); overrides the config.")] = None,
) -> None:
    """Run every stage in order into runs/NAME/ (summary.json, report.md, plots); runs/latest points at it."""
    from l1ad.pipeline import resolve_config, run_pipeline

    resolved = resolve_config(config)
    if name is not None:
        resolved["name"] = name
    run_dir = run_pipeline(resolved, err_console)
    err_console.print(f"[bold green]run finished:[/] {run_dir}/summary.json, {run_dir}/report.md")
