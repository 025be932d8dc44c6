"""Version-1 ``spec.json`` files, read through a converter to version 2.

Version 1 held ``autoencoders``: two, each ``{name, layers: [dense...], score: {difference,
square, score, outputs}}``, always the reconstruction error. Version 2 holds ``scores``: two
named node lists, the dense layers (the same fields, with ``op: "dense"``) then the reduction
node (``op: "reconstruction"`` with the same four fields). Every type, name and output index is
carried over unchanged, so a converted spec computes the same bits.
"""

from __future__ import annotations

import copy
from typing import Any

from emulation.spec import RECONSTRUCTION, SpecError


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(where, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(where, f"must be a list, got {type(value).__name__}")
    return value


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """The version-2 dict of a version-1 one (not validated here: the version-2 reader does that;
    a malformed version-1 layout raises SpecError naming the version-1 field)."""
    if data.get("version") != 1:
        raise SpecError("version", f"{data.get('version')!r} is not 1: nothing to convert")
    out = {k: copy.deepcopy(v) for k, v in data.items() if k != "autoencoders"}
    if "autoencoders" not in data:
        raise SpecError("autoencoders", "is missing")
    scores = []
    for i, raw in enumerate(_list(data["autoencoders"], "autoencoders")):
        ae = _object(raw, f"autoencoders[{i}]")
        layers = _list(ae.get("layers"), f"autoencoders[{i}].layers")
        nodes = [
            {"op": "dense", **_object(d, f"autoencoders[{i}].layers[{k}]")}
            for k, d in enumerate(layers)
        ]
        score = _object(ae.get("score"), f"autoencoders[{i}].score")
        nodes.append({"op": RECONSTRUCTION, **score})
        scores.append({"name": ae.get("name"), "nodes": copy.deepcopy(nodes)})
    out["scores"] = scores
    out["version"] = 2
    return out
