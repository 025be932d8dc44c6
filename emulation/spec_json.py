"""A FirmwareSpec and its JSON form, version 2; version-1 dicts are read through :mod:`emulation.spec_v1`.

Version 2: ``scores`` holds two ``{name, nodes}``; ``nodes`` are the network's dense layers
(``op: "dense"``) then one reduction (``op: "reconstruction"`` or ``"latent_norm"``). Reading
checks every field's presence and JSON type and names the one that is wrong
(``scores[1].nodes[2].outputs``); :class:`emulation.spec.FirmwareSpec` validates the rest.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from emulation.spec import (
    LATENT_NORM,
    RECONSTRUCTION,
    SCORE_KINDS,
    SPEC_VERSION,
    AutoencoderSpec,
    DenseSpec,
    FirmwareSpec,
    FixedType,
    ScoreSpec,
    SpecError,
    TriggerSpec,
)
from emulation.spec_v1 import v1_to_v2
from offline.preprocess import Preprocessing

__all__ = ["spec_from_dict", "spec_to_dict"]


def spec_to_dict(spec: FirmwareSpec) -> dict[str, Any]:
    """The version-2 JSON form: each score a named node list, its dense layers then its reduction."""
    return {
        "version": spec.version,
        "hardware_input": str(spec.hardware_input),
        "preprocessing": spec.preprocessing.to_dict(),
        "input": str(spec.input),
        "scores": [
            {
                "name": ae.name,
                "nodes": [*map(_dense_node, ae.layers), _reduction_node(ae.score)],
            }
            for ae in spec.autoencoders
        ],
        "trigger": {
            "threshold_r1": spec.trigger.threshold_r1,
            "threshold_r2": spec.trigger.threshold_r2,
            "fire_on": list(spec.trigger.fire_on),
        },
        "metadata": spec.metadata,
    }


def spec_from_dict(data: Any) -> FirmwareSpec:
    """A validated FirmwareSpec from a version-2 dict, or a version-1 one through the converter
    (whose problems then name version-2 fields, except a malformed version-1 layout)."""
    reader = _Reader(data, "")
    version = reader.get("version", int)
    if version == 1:
        reader = _Reader(v1_to_v2(data), "")
    elif version != SPEC_VERSION:
        raise SpecError(
            "version",
            f"{version} is not supported (this l1ad reads versions 1 and {SPEC_VERSION})",
        )
    try:
        preprocessing = Preprocessing.from_dict(reader.get("preprocessing", dict))
    except ValueError as err:
        raise SpecError("preprocessing", str(err)) from None
    scores = reader.get("scores", list)
    if len(scores) != 2:
        raise SpecError("scores", f"must hold 2 scores (R1, R2), found {len(scores)}")
    trig = reader.child("trigger")
    ae1, ae2 = (_read_score(reader.child(f"scores[{i}]", sc)) for i, sc in enumerate(scores))
    return FirmwareSpec(
        hardware_input=reader.type("hardware_input"),
        preprocessing=preprocessing,
        input=reader.type("input"),
        autoencoders=(ae1, ae2),
        trigger=TriggerSpec(
            threshold_r1=trig.get("threshold_r1", (int, float)),
            threshold_r2=trig.get("threshold_r2", (int, float)),
            fire_on=tuple(trig.get("fire_on", list)),
        ),
        metadata=data.get("metadata", {}) if isinstance(data, dict) else {},
    )


class _Reader:
    """Reads typed fields from nested JSON, raising SpecError with the field's path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SpecError(path or "<root>", f"must be an object, got {type(data).__name__}")
        self.data, self.path = data, path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.data:
            raise SpecError(self._name(key), "is missing")
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise SpecError(self._name(key), f"has the wrong type ({type(value).__name__})")
        return value

    def child(self, key: str, value: Any = None) -> _Reader:
        if value is None:
            return _Reader(self.get(key, dict), self._name(key))
        return _Reader(value, self._name(key))

    def type(self, key: str) -> FixedType:
        return FixedType.parse(self.get(key, str), self._name(key))

    def optional_type(self, key: str) -> FixedType | None:
        return None if self.data.get(key, ...) is None else self.type(key)


def _dense_node(d: DenseSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"op": "dense", **asdict(d)}
    for key in ("weight", "bias", "accumulator", "result", "activation_result"):
        out[key] = None if getattr(d, key) is None else str(getattr(d, key))
    return out


def _reduction_node(s: ScoreSpec) -> dict[str, Any]:
    types = {"square": str(s.square), "score": str(s.score), "outputs": list(s.outputs)}
    if s.kind == RECONSTRUCTION:
        return {"op": s.kind, "difference": str(s.difference), **types}
    return {"op": s.kind, **types}


def _read_score(reader: _Reader) -> AutoencoderSpec:
    """A score: its dense nodes, then exactly one reduction node (the last)."""
    nodes = reader.get("nodes", list)
    if not nodes:
        raise SpecError(reader._name("nodes"), "is empty")
    layers = []
    for k, raw in enumerate(nodes[:-1]):
        r = reader.child(f"nodes[{k}]", raw)
        if r.get("op", str) != "dense":
            raise SpecError(
                r._name("op"),
                f"{r.data['op']!r}: only the last node is a reduction, others are dense",
            )
        layers.append(
            DenseSpec(
                name=r.get("name", str),
                n_in=r.get("n_in", int),
                n_out=r.get("n_out", int),
                weight=r.type("weight"),
                bias=r.optional_type("bias"),
                accumulator=r.type("accumulator"),
                result=r.type("result"),
                activation=r.get("activation", str),
                activation_result=r.type("activation_result"),
            )
        )
    s = reader.child(f"nodes[{len(nodes) - 1}]", nodes[-1])
    kind = s.get("op", str)
    if kind not in SCORE_KINDS:
        raise SpecError(
            s._name("op"),
            f"{kind!r}: the last node must be a reduction, one of {', '.join(SCORE_KINDS)}",
        )
    if kind == LATENT_NORM and "difference" in s.data:
        raise SpecError(s._name("difference"), "a latent_norm score has no difference")
    score = ScoreSpec(
        s.type("difference") if kind == RECONSTRUCTION else None,
        s.type("square"),
        s.type("score"),
        tuple(s.get("outputs", list)),
        kind,
    )
    return AutoencoderSpec(reader.get("name", str), tuple(layers), score)
