"""The HLS top function of the whole trigger, filled from the FirmwareSpec.

``trigger_top(objects[19][3], r1, r2, region_a..d, trigger)``: the 19 L1 objects as
hardware words (``hw_word_t`` = the spec's ``hardware_input``; column 0 pT in 0.5 GeV
steps, 1 eta in 0.0435 steps, 2 phi in 2pi/144 steps, empty objects all zero),
preprocessing ``(word - offset) >> shift`` written out per feature (constant shifts:
wiring, one subtractor each), the hls4ml network function holding both autoencoders
(one call, two outputs), the two scores (reconstruction error or latent norm) in the
spec's difference / square / score types, the threshold compare and the ABCD and trigger bits. The
templates live in ``firmware/templates``; this module only fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from firmware.convert import NETS_NAME
from offline.events.schema import N_FEATURES, N_OBJECTS
from quantize.spec import (
    LATENT_NORM,
    REGIONS,
    AutoencoderSpec,
    FirmwareSpec,
    FixedType,
    preprocess_type,
    score_sum_type,
)

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


def _score_types(i: int, ae: AutoencoderSpec) -> str:
    """The typedefs of score ``i`` (1 or 2): difference (reconstruction only), square, score, sum."""
    s = ae.score
    lines = [] if s.difference is None else [f"typedef {_ctype(s.difference)} diff{i}_t;"]
    lines += [
        f"typedef {_ctype(s.square)} square{i}_t;",
        f"typedef {_ctype(s.score)} score{i}_t;",
        f"typedef {_ctype(score_sum_type(s))} sum{i}_t;",
    ]
    if i == 1:
        lines[-1] += "          // where the squares are added (see reconstruction_error)"
    return "\n".join(lines)


def _score_call(i: int, ae: AutoencoderSpec, out_t: str) -> str:
    """The C++ expression of score ``i``: the reconstruction error of x, or the latent norm."""
    n = len(ae.score.outputs)
    if ae.score.kind == LATENT_NORM:
        n_mu = ae.layers[-1].n_out
        return f"latent_norm<square{i}_t, sum{i}_t, score{i}_t, {out_t}, {n_mu}, {n}>(xhat{i}, features{i})"
    return (
        f"reconstruction_error<diff{i}_t, square{i}_t, sum{i}_t, score{i}_t, {out_t}, {n}>"
        f"(x, xhat{i}, features{i})"
    )


def render(spec: FirmwareSpec, nets: NetsInterface) -> dict[str, str]:
    """``{file name: text}`` of the wrapper: ``trigger_top.h`` and ``trigger_top.cpp`` (under firmware/)."""
    ae1, ae2 = spec.autoencoders
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
        "score_types": "\n".join(_score_types(i + 1, ae) for i, ae in enumerate((ae1, ae2))),
        "score_kinds": f"{ae1.score.kind}, {ae2.score.kind}",
        "score1_call": _score_call(1, ae1, nets.ae1_out_t),
        "score2_call": _score_call(2, ae2, nets.ae2_out_t),
        "n_out1": ae1.layers[-1].n_out,
        "n_out2": ae2.layers[-1].n_out,
        "n_outputs1": len(ae1.score.outputs),
        "n_outputs2": len(ae2.score.outputs),
        "outputs1": ", ".join(map(str, ae1.score.outputs)),
        "outputs2": ", ".join(map(str, ae2.score.outputs)),
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
