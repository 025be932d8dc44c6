"""Option parsing and validation shared by several commands, checked at parse time.

Callbacks raise ``typer.BadParameter``, so a bad value stops the command before it
touches a file, with one line naming the option.
"""

from __future__ import annotations

from pathlib import Path

import typer


def named_paths(values: list[str] | None, option: str = "--signal") -> dict[str, Path]:
    """``["NAME=PATH", ...]`` -> ``{NAME: Path}``; a malformed item is a clear error."""
    out: dict[str, Path] = {}
    for item in values or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{option} expects NAME=PATH, got {item!r}")
        out[name] = Path(path)
    return out


def device(value: str | None) -> str | None:
    """Callback of ``--device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (a GPU that exists)."""
    if value is None:
        return value
    from offline.distributed import pick_device

    try:
        pick_device(value)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    return value


def positive(value: float | None) -> float | None:
    """Callback of a float option that must be > 0 (typer's ``min=`` allows the bound itself)."""
    if value is not None and not value > 0:  # also refuses NaN
        raise typer.BadParameter(f"must be > 0, got {value}")
    return value


def halving_targets(text: str, steps: int, option: str = "--distill") -> tuple[int, ...]:
    """Comma-separated distillation targets: each reachable from ``steps`` by halving (1 <= t < steps)."""
    from offline.generative.distill import check_targets

    try:
        targets = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"{option} expects comma-separated step counts, got {text!r}") from None
    try:
        check_targets(steps, targets)
    except ValueError as err:
        raise ValueError(f"{option}: {err}") from None
    return targets
