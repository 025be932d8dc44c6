"""Checks on everything a firmware build is asked for, run before anything is written.

One function per kind of input, each raising ``ValueError`` (``SpecError`` for the spec) with
one line that names the option or field: :func:`check_options` for backend, part, clock and
latency budget (the CLI and the pipeline call it with their own option names), and
:func:`check_spec_types` for the types a FirmwareSpec may hold but the generated project
cannot carry exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from firmware.budget import part_capacity
from firmware.convert import ConversionSettings
from quantize.spec import DOUBLE_BITS, FirmwareSpec, FixedType, SpecError

__all__ = ["CLI_NAMES", "DOUBLE_BITS", "check_options", "check_spec_types"]

# What each option is called where the user typed it (the pipeline passes its config keys).
PLAIN_NAMES = {
    "backend": "backend",
    "part": "part",
    "clock_period_ns": "clock period",
    "latency_budget_ns": "latency budget",
    "reuse_factor": "reuse factor",
}
CLI_NAMES = {
    "backend": "--backend",
    "part": "--part",
    "clock_period_ns": "--clock-period",
    "latency_budget_ns": "--latency-budget",
    "reuse_factor": "--reuse-factor",
}


def _number(value: object, name: str, unit: str = " ns") -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}{unit}")
    return number


def check_options(
    backend: str,
    part: str,
    clock_period_ns: float,
    latency_budget_ns: float,
    reuse_factor: int = 1,
    names: Mapping[str, str] = PLAIN_NAMES,
) -> ConversionSettings:
    """The conversion settings, after checking every option (unknown part, clock period <= 0, a
    latency budget under one clock period, ...); the first problem raises ``ValueError``."""
    try:
        part_capacity(part)
    except ValueError as err:
        raise ValueError(f"{names['part']}: {err}") from None
    clock = _number(clock_period_ns, names["clock_period_ns"])
    budget = _number(latency_budget_ns, names["latency_budget_ns"])
    if budget < clock:
        raise ValueError(
            f"{names['latency_budget_ns']} {budget:g} ns is under one clock period ({names['clock_period_ns']} "
            f"{clock:g} ns): no registered design can meet it"
        )
    try:
        return ConversionSettings(backend, part, clock, reuse_factor)
    except ValueError as err:
        which = "backend" if "backend" in str(err) else "reuse_factor"
        raise ValueError(f"{names[which]}: {err}") from None


def _types(spec: FirmwareSpec) -> list[tuple[str, FixedType, str]]:
    """(field, type, why it must fit a double) for every type that crosses a float64."""
    out = []
    for i, ae in enumerate(spec.autoencoders):
        for k, layer in enumerate(ae.layers):
            where = f"scores[{i}].nodes[{k}]"
            out.append((f"{where}.weight", layer.weight, "hls4ml writes weights from float64"))
            if layer.bias is not None:
                out.append((f"{where}.bias", layer.bias, "hls4ml writes biases from float64"))
        out.append(
            (
                f"scores[{i}].nodes[{len(ae.layers)}].score",
                ae.score.score,
                "the testbench and C simulation read scores as doubles",
            )
        )
    return out


def check_spec_types(spec: FirmwareSpec, origin: str | None = None) -> None:
    """Raise ``SpecError`` naming the first type the hls4ml project cannot carry exactly."""
    for field, t, why in _types(spec):
        if t.width > DOUBLE_BITS:
            where = f" (in {origin})" if origin else ""
            raise SpecError(
                field, f"{t} is {t.width} bits wide; {why}, so at most {DOUBLE_BITS} bits{where}"
            )
