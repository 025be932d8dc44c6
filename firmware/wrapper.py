"""The HLS top function of the whole trigger, filled from the FirmwareSpec.

``trigger_top(objects[19][3], r1, r2, region_a..d, trigger)``: the 19 L1 objects as
hardware words (``hw_word_t`` = the spec's ``hardware_input``; column 0 pT in 0.5 GeV
steps, 1 eta in 0.0435 steps, 2 phi in 2pi/144 steps, empty objects all zero),
preprocessing ``(word - offset) >> shift`` written out per feature (constant shifts:
wiring, one subtractor each), the hls4ml network function holding both autoencoders
(one call, two outputs), the two reconstruction errors in the spec's difference /
square / score types, the threshold compare and the ABCD and trigger bits. The
templates live in ``firmware/templates``; this module only fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from firmware.convert import NETS_NAME
from offline.events.schema import N_FEATURES, N_OBJECTS
from quantize.spec import REGIONS, FirmwareSpec, FixedType, ScoreSpec, preprocess_type, sum_type

TOP_NAME = "trigger_top"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class NetsInterface:
    """C++ type names of the hls4ml network function's input and its two outputs."""

    input_t: str
    ae1_out_t: str
    ae2_out_t: str

    @classmethod
    def from_model(cls, hls_model: Any) -> NetsInterface:
        ins = hls_model.get_input_variables()
        outs = hls_model.get_output_variables()
        if len(ins) != 1 or len(outs) != 2:
            raise ValueError(
                f"network function needs 1 input and 2 outputs, has {len(ins)} and {len(outs)}"
            )
        return cls(ins[0].type.name, outs[0].type.name, outs[1].type.name)


def score_sum_type(s: ScoreSpec) -> FixedType:
    """Type the wrapper adds the squares in: exact (then one cast to the score type) when that
    equals the spec's one-by-one saturating additions, else the score type itself.

    Squares are never negative (unsigned, or saturating), so with a saturating or wrapping
    score type and no rounding (score.fractional >= square.fractional) every partial sum
    that saturates stays saturated: sat(sum) == sequential sat. The exact sum is an adder
    tree of depth log2(N) instead of a chain of N saturating adders.
    """
    nonneg = not s.square.signed or s.square.overflow in ("AP_SAT", "AP_SAT_SYM", "AP_SAT_ZERO")
    ok_overflow = s.score.overflow in ("AP_SAT", "AP_WRAP") and (
        s.score.overflow == "AP_WRAP" or s.score.min_int <= 0
    )
    if not (nonneg and ok_overflow and s.score.fractional >= s.square.fractional):
        return s.score
    exact = sum_type(s.square, len(s.outputs))
    extra = s.score.fractional - s.square.fractional
    return FixedType(exact.width + extra, exact.integer, exact.signed)


def _ctype(t: FixedType) -> str:
    if t.fractional == 0 and (t.rounding, t.overflow) == ("AP_TRN", "AP_WRAP"):
        return (
            f"ap_{'' if t.signed else 'u'}int<{t.width}>"  # same bits, the usual spelling for words
        )
    return str(t)


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def _preprocessing_lines(spec: FirmwareSpec) -> str:
    pre = spec.preprocessing
    lines = []
    for i, (offset, shift) in enumerate(zip(pre.offsets, pre.shifts, strict=True)):
        word = f"objects[{i // 3}][{i % 3}]"
        value = f"pre_t(pre_t({word}) - pre_t({offset}))"
        if shift > 0:
            value = f"pre_t({value} >> {shift})"
        elif shift < 0:
            value = f"pre_t({value} << {-shift})"
        lines.append(f"    x[{i}] = {value};")
    return "\n".join(lines)


def _literal(value: float) -> str:
    return repr(float(value))


def render(spec: FirmwareSpec, nets: NetsInterface) -> dict[str, str]:
    """``{file name: text}`` of the wrapper: ``trigger_top.h`` and ``trigger_top.cpp`` (under firmware/)."""
    s1, s2 = spec.autoencoders[0].score, spec.autoencoders[1].score
    fire = " || ".join(f"{r.lower()}" for r in spec.trigger.fire_on)
    for r in spec.trigger.fire_on:
        if r not in REGIONS:
            raise ValueError(f"trigger.fire_on: unknown region {r!r}")
    lsb = spec.preprocessing.lsb
    values = {
        "nets": NETS_NAME,
        "nets_input_t": nets.input_t,
        "ae1_out_t": nets.ae1_out_t,
        "ae2_out_t": nets.ae2_out_t,
        "n_objects": N_OBJECTS,
        "n_features": N_FEATURES,
        "hw_word_t": _ctype(spec.hardware_input),
        "pre_t": _ctype(preprocess_type(spec)),
        "input_t": _ctype(spec.input),
        "diff1_t": _ctype(s1.difference),
        "square1_t": _ctype(s1.square),
        "score1_t": _ctype(s1.score),
        "diff2_t": _ctype(s2.difference),
        "square2_t": _ctype(s2.square),
        "score2_t": _ctype(s2.score),
        "sum1_t": _ctype(score_sum_type(s1)),
        "sum2_t": _ctype(score_sum_type(s2)),
        "n_outputs1": len(s1.outputs),
        "n_outputs2": len(s2.outputs),
        "outputs1": ", ".join(map(str, s1.outputs)),
        "outputs2": ", ".join(map(str, s2.outputs)),
        "threshold_r1": _literal(spec.trigger.threshold_r1),
        "threshold_r2": _literal(spec.trigger.threshold_r2),
        "trigger_expr": fire,
        "preprocessing": _preprocessing_lines(spec),
        "pt_lsb": lsb.get("pt"),
        "eta_lsb": lsb.get("eta"),
        "phi_lsb": lsb.get("phi"),
        "fire_on": ", ".join(spec.trigger.fire_on),
    }
    return {
        f"{TOP_NAME}.h": _template("trigger_top.h.tpl").substitute(values),
        f"{TOP_NAME}.cpp": _template("trigger_top.cpp.tpl").substitute(values),
    }


def render_testbench() -> str:
    return _template("trigger_top_test.cpp.tpl").substitute(n_features=N_FEATURES)


def render_bridge() -> str:
    return _template("trigger_bridge.cpp.tpl").substitute(n_features=N_FEATURES)
