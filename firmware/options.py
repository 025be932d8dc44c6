"""Checks on everything a firmware build is asked for, run before anything is written.

One function per kind of input, each raising ``ValueError`` (``SpecError`` for the spec) with
one line that names the option or field: :func:`check_options` for backend, part, clock,
latency budget, reuse factor and strategy (the CLI and the pipeline call it with their own
option names), and :func:`check_spec_types` for the types a FirmwareSpec may hold but the
generated project cannot carry exactly (with the distributed_arithmetic strategy: an accumulator
that rounds or overflows, which DA would not reproduce).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from firmware.budget import part_capacity
from firmware.convert import ConversionSettings
from firmware.defaults import DEFAULT_STRATEGY
from quantize.spec import DOUBLE_BITS, FirmwareSpec, FixedType, SpecError, exact_accumulator

__all__ = ["CLI_NAMES", "DOUBLE_BITS", "check_options", "check_spec_types"]

# What each option is called where the user typed it (the pipeline passes its config keys).
PLAIN_NAMES = {
    "backend": "backend",
    "part": "part",
    "clock_period_ns": "clock period",
    "latency_budget_ns": "latency budget",
    "reuse_factor": "reuse factor",
    "strategy": "strategy",
}
CLI_NAMES = {
    "backend": "--backend",
    "part": "--part",
    "clock_period_ns": "--clock-period",
    "latency_budget_ns": "--latency-budget",
    "reuse_factor": "--reuse-factor",
    "strategy": "--strategy",
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
    strategy: str = DEFAULT_STRATEGY,
    names: Mapping[str, str] = PLAIN_NAMES,
) -> ConversionSettings:
    """The conversion settings, after checking every option (unknown part, clock period <= 0, a
    latency budget under one clock period, an unknown strategy, ...); the first problem raises
    ``ValueError``."""
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
        return ConversionSettings(backend, part, clock, reuse_factor, strategy)
    except ValueError as err:
        text = str(err)
        which = next((k for k in ("backend", "strategy") if text.startswith(k)), "reuse_factor")
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


def _holds(acc: FixedType, exact: FixedType) -> bool:
    """Whether every value of ``exact`` (signed) is a value of ``acc``."""
    return acc.signed and acc.fractional >= exact.fractional and acc.integer >= exact.integer


def check_spec_types(
    spec: FirmwareSpec, origin: str | None = None, strategy: str = DEFAULT_STRATEGY
) -> None:
    """Raise ``SpecError`` naming the first type the hls4ml project cannot carry exactly.

    With the distributed_arithmetic strategy every dense accumulator must hold each weighted sum
    exactly: DA computes the exact sum and casts it once to the result type (hls4ml ignores the
    accumulator type), while the emulator and the Latency strategy round and overflow in the
    accumulator first; with exact accumulators (what ``quantize`` writes) the two agree bit for bit."""
    where = f" (in {origin})" if origin else ""
    for field, t, why in _types(spec):
        if t.width > DOUBLE_BITS:
            raise SpecError(
                field, f"{t} is {t.width} bits wide; {why}, so at most {DOUBLE_BITS} bits{where}"
            )
    if strategy != "distributed_arithmetic":
        return
    for i, ae in enumerate(spec.autoencoders):
        x_type = spec.input
        for k, layer in enumerate(ae.layers):
            exact = exact_accumulator(layer.weight, x_type, layer.n_in, layer.bias)
            if not _holds(layer.accumulator, exact):
                raise SpecError(
                    f"scores[{i}].nodes[{k}].accumulator",
                    f"layer {layer.name}: {layer.accumulator} does not hold every weighted sum "
                    f"exactly ({exact} would); the distributed_arithmetic strategy computes the exact "
                    f"sum and would differ from the emulator: use strategy latency{where}",
                )
            x_type = layer.activation_result
