"""Option parsing shared by several commands."""

from __future__ import annotations

from pathlib import Path


def named_paths(values: list[str] | None, option: str = "--signal") -> dict[str, Path]:
    """``["NAME=PATH", ...]`` -> ``{NAME: Path}``; a malformed item is a clear error."""
    out: dict[str, Path] = {}
    for item in values or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{option} expects NAME=PATH, got {item!r}")
        out[name] = Path(path)
    return out
