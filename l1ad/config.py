"""Run configuration: built-in defaults of every step, overridden by a YAML/JSON file.

A config file holds one mapping per step (named as the step), plus ``name``,
``seed``, ``runs_dir`` and ``cache_dir``. Unknown steps or keys are errors, so
typos do not pass silently.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import yaml

GLOBAL_DEFAULTS: dict[str, Any] = {
    "name": "default",
    "seed": 1234,
    "runs_dir": "runs",
    "cache_dir": os.environ.get("L1AD_CACHE", "cache"),
}


def default_config(step_defaults: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {**copy.deepcopy(GLOBAL_DEFAULTS), **copy.deepcopy(step_defaults)}


def _merge(
    base: dict[str, Any], override: dict[str, Any], file: str, prefix: str = ""
) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        name = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            where = f" in {prefix[:-1]}" if prefix else ""
            raise ValueError(f"{file}: unknown key {key!r}{where} (known: {known})")
        value = _check_type(base[key], value, file, name)
        if isinstance(base[key], dict) and base[key]:
            merged[key] = _merge(base[key], value, file, f"{name}.")
        else:
            merged[key] = value
    return merged


def _kind(default: Any) -> tuple[tuple[type, ...], str] | None:
    """The types a value may have where the default is ``default``; None where anything goes."""
    if default is None:
        return None  # optional settings: the step checks them
    if isinstance(default, bool):
        return (bool,), "true or false"
    if isinstance(default, int):
        return (int,), "an integer"
    if isinstance(default, float):
        return (int, float), "a number"
    if isinstance(default, str):
        return (str,), "a string"
    if isinstance(default, dict):
        return (dict,), "a mapping"
    if isinstance(default, list | tuple):
        return (list,), "a list"
    return None


def _check_type(default: Any, value: Any, file: str, name: str) -> Any:
    """``value``, checked to have the type of the built-in default (bools are not numbers; lists item
    by item). YAML reads ``1e-3`` as a string: where a number is due, such a string becomes one."""
    kind = _kind(default)
    if kind is None:
        return value
    types, described = kind
    if float in types and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
    if wrong:  # a name of its own: narrowing by a tuple of types would leave value an object
        shown = "null" if value is None else f"{type(value).__name__} {value!r}"
        raise ValueError(f"{file}: {name} must be {described}, got {shown}")
    if isinstance(default, int) and not isinstance(default, bool) and default >= 0 and value < 0:
        raise ValueError(f"{file}: {name} must be >= 0, got {value}")  # counts, sizes, seeds
    if isinstance(default, list | tuple) and default:
        item_kind = _kind(default[0])
        if item_kind is not None and all(_kind(d) == item_kind for d in default):
            value = [
                _check_type(default[0], item, file, f"{name}[{i}]") for i, item in enumerate(value)
            ]
    return value


def load_config(
    path: str | os.PathLike[str] | None, step_defaults: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The resolved config: defaults, with the file's values (if any) on top."""
    config = default_config(step_defaults)
    if path is None:
        return config
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: config file does not exist")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not valid YAML/JSON: {err}") from None
    if data is None:
        return config
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping, got {type(data).__name__}")
    return _merge(config, data, str(path))
