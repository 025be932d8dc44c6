"""One place that turns bad input into a one-line error and a non-zero exit, for every command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

# markup=False: messages carry user text (file names, spec types such as ap_fixed<4,1>[...]) that
# rich would otherwise parse as markup and eat; styled parts are rich Text, never markup strings
err_console = Console(stderr=True, markup=False)

# What bad input raises in the library: ValueError (and its subclasses such as
# EventFileError, SpecError), OSError for unreadable paths, KeyError for missing entries.
USER_ERRORS = (ValueError, OSError, KeyError)


def report_error(err: BaseException) -> None:
    """Print ``error: MESSAGE`` on stderr, the message verbatim."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(err)), soft_wrap=True)


def reporting_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command: a user error prints ``error: ...`` in red and exits 1 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as err:
            report_error(err)
            raise typer.Exit(1) from None

    return wrapper


class ErrorReportingTyper:
    """A typer app whose ``command()`` registers commands wrapped by :func:`reporting_errors`."""

    def __init__(self, app: typer.Typer) -> None:
        self.app = app

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        def decorator(func: Callable[..., Any]) -> Any:
            return self.app.command(*args, **kwargs)(reporting_errors(func))

        return decorator

    def add_typer(self, *args: Any, **kwargs: Any) -> None:
        self.app.add_typer(*args, **kwargs)
