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


def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            known = ", ".join(sorted(base))
            raise ValueError(f"{where}: unknown key {key!r} (known: {known})")
        if isinstance(base[key], dict) and base[key] and isinstance(value, dict):
            merged[key] = _merge(base[key], value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def load_config(path: str | os.PathLike[str] | None, step_defaults: dict[str, dict[str, Any]]) -> dict[str, Any]:
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
