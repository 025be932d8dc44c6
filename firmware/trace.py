"""The whole trigger traced as integer logic with da4ml (for cost estimates and RTL).

da4ml's ``FixedVariableArray`` records numpy-style operations on fixed-point values
(constant-matrix products become shift-and-add trees, "distributed arithmetic") and
gives a ``CombLogic``: a LUT estimate, an adder-depth latency, an interpreter and
Verilog. The function below is the same computation as the HLS wrapper (and
``emulation.emulate_trigger``): preprocessing, both autoencoders, the scores, thresholds,
regions and trigger bit; the tests check the traced logic against the emulator bit
for bit.

da4ml rounds only by truncation or half-up; ``AP_RND_CONV`` (half to even, what
QKeras/Brevitas and the spec's activations use) is built here from those:
``floor((m + 2**(d-1) - 1 + b) / 2**d)`` with ``b`` the lowest kept bit.
Accumulators must be exact (products never rounded), as ``quantize.build_spec`` makes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from offline.ad.abcd import fire_mask, region_masks
from offline.events.schema import N_FEATURES
from quantize.spec import (
    LATENT_NORM,
    REGIONS,
    AutoencoderSpec,
    FirmwareSpec,
    FixedType,
    product_type,
    sums_in_one_go,
    weight_key,
)

# outputs of the traced logic, in this order
OUTPUTS = ("r1", "r2", "region_a", "region_b", "region_c", "region_d", "trigger")
_ROUND_NATIVE = {"AP_TRN": "TRN", "AP_RND": "RND"}
_OVERFLOW_NATIVE = {"AP_WRAP": "WRAP", "AP_SAT": "SAT", "AP_SAT_SYM": "SAT_SYM"}


def kif(t: FixedType) -> tuple[int, int, int]:
    """da4ml's (keep_negative, integer bits without sign, fractional bits) of an ap_fixed type."""
    return (1 if t.signed else 0, t.integer - (1 if t.signed else 0), t.fractional)


def _cast_var(v: Any, t: FixedType) -> Any:
    k, i, f = kif(t)
    if t.overflow not in _OVERFLOW_NATIVE:
        raise ValueError(
            f"{t}: overflow mode {t.overflow} is not traceable with da4ml (WRAP, SAT, SAT_SYM are)"
        )
    ovf = _OVERFLOW_NATIVE[t.overflow]
    if t.rounding in _ROUND_NATIVE:
        return v.quantize(k, i, f, ovf, _ROUND_NATIVE[t.rounding])
    if t.rounding != "AP_RND_CONV":
        raise ValueError(
            f"{t}: rounding {t.rounding} is not traceable with da4ml (TRN, RND, RND_CONV are)"
        )
    fx = int(v.kif[2]) if hasattr(v, "kif") else f
    if fx <= f:  # nothing below the new LSB: no rounding
        return v.quantize(k, i, f, ovf, "TRN")
    lsb_kept = v.quantize(0, -f + 1, f, "WRAP", "TRN")  # the bit of weight 2**-f
    bias = 2.0 ** (-f - 1) - 2.0 ** (-fx)
    up = v + bias + lsb_kept * 2.0 ** (f - fx)
    wide_i = max(i, int(v.kif[1]) + 1)
    rounded = up.quantize(k if k else 1, wide_i, f, "WRAP", "TRN")  # exact: enough integer bits
    return rounded.quantize(k, i, f, ovf, "TRN")


def cast(x: Any, t: FixedType) -> Any:
    """ap_fixed assignment to type ``t`` of every element of a FixedVariableArray."""
    from da4ml.trace import FixedVariableArray

    flat = [_cast_var(v, t) for v in x._vars.ravel()]
    return FixedVariableArray(
        np.array(flat, dtype=object).reshape(x.shape), x.solver_options, hwconf=x.hwconf
    )


def _check_exact(layer: Any, x_type: FixedType) -> None:
    prod = product_type(layer.weight, x_type)
    acc = layer.accumulator
    if prod.fractional > acc.fractional:
        raise ValueError(
            f"{layer.name}: accumulator {acc} drops product bits ({prod}); da4ml tracing needs exact products"
        )


# da4ml's constant-matrix solver: ``hard_dc=0`` asks for the minimal adder depth of every
# matrix-vector product (the default, -1, trades depth for fewer adders): the trigger's
# latency budget (50 ns), not its LUTs, is the binding constraint (~+5 % LUTs, -20 levels
# on the default trigger)
SOLVER_OPTIONS: dict[str, Any] = {"hard_dc": 0}

# widest difference whose square is traced as a lookup table rather than a multiplier
SQUARE_TABLE_MAX_BITS = 8


def square(diff: Any, diff_type: FixedType, square_type: FixedType) -> Any:
    """``square_type(diff * diff)``. da4ml costs a variable product of W-bit operands as a chain of W
    adders (W levels); the square of a narrow difference is instead a ROM of ``2**W`` entries
    (da4ml: ``max(W - 6, 1)`` levels, LUT6-based), the same numbers with less depth and fewer LUTs
    for W <= SQUARE_TABLE_MAX_BITS. Wider differences keep the multiplier (the table would not fit)."""
    if diff_type.width > SQUARE_TABLE_MAX_BITS or square_type.rounding not in _ROUND_NATIVE:
        return cast(diff * diff, square_type)
    if square_type.overflow not in _OVERFLOW_NATIVE:
        raise ValueError(
            f"{square_type}: overflow mode {square_type.overflow} is not traceable with da4ml"
        )
    return diff.apply(np.square).quantize(
        *kif(square_type),
        _OVERFLOW_NATIVE[square_type.overflow],
        _ROUND_NATIVE[square_type.rounding],
    )


def _tree_sum(x: Any) -> Any:
    terms = [x[j : j + 1] for j in range(x.shape[0])]
    while len(terms) > 1:
        terms = [
            terms[j] + terms[j + 1] if j + 1 < len(terms) else terms[j]
            for j in range(0, len(terms), 2)
        ]
    return terms[0]


def score_logic(ae: AutoencoderSpec, x: Any, h: Any) -> Any:
    """The score of network output ``h`` (input ``x``): the squares of ``x - h`` or of ``h`` itself,
    added one by one in the score type, or as an exact adder tree cast once where that is provably
    the same (``quantize.spec.sums_in_one_go``; the wrapper does the same)."""
    s = ae.score
    idx = list(s.outputs)
    if s.kind == LATENT_NORM:
        term = h[idx]
    else:
        assert s.difference is not None  # validated: a reconstruction has a difference type
        term = cast(x[idx] - h[idx], s.difference)
    sq = square(term, ae.term_type, s.square)
    if sums_in_one_go(s):
        return cast(_tree_sum(sq), s.score)
    total = cast(sq[0:1], s.score)
    for j in range(1, len(idx)):
        total = cast(total + sq[j : j + 1], s.score)
    return total


def trigger_logic(spec: FirmwareSpec, weights: dict[str, np.ndarray], words: Any) -> Any:
    """Trace the trigger on a FixedVariableArray of 57 hardware words; returns the 7 outputs (OUTPUTS)."""
    pre = spec.preprocessing
    w = cast(words, spec.hardware_input)
    x = (w - np.asarray(pre.offsets, dtype=np.float64)) * np.exp2(
        -np.asarray(pre.shifts, dtype=np.float64)
    )
    x = cast(x, spec.input)
    outs = []
    for a, ae in enumerate(spec.autoencoders):
        h, h_type = x, spec.input
        for k, d in enumerate(ae.layers):
            _check_exact(d, h_type)
            wmat = np.asarray(weights[weight_key(a, k, "weight")], dtype=np.float64).T  # (in, out)
            acc = h @ wmat
            if d.bias is not None:
                acc = acc + np.asarray(weights[weight_key(a, k, "bias")], dtype=np.float64)
            res = cast(cast(acc, d.accumulator), d.result)
            if d.activation == "relu":
                res = np.maximum(res, 0.0)
            h = cast(res, d.activation_result)
            h_type = d.activation_result
        outs.append(score_logic(ae, x, h))
    t = spec.trigger
    regions = region_masks(outs[0], outs[1], t.threshold_r1, t.threshold_r2)
    fire = fire_mask(regions, t.fire_on)
    return np.concatenate([outs[0], outs[1], *(regions[r] for r in REGIONS), fire])


def trace_trigger(spec: FirmwareSpec, weights: dict[str, np.ndarray]) -> Any:
    """da4ml ``CombLogic`` of the whole trigger: 57 hardware words in, OUTPUTS out."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    hw = spec.hardware_input
    inp = FixedVariableArrayInput((57,), solver_options=dict(SOLVER_OPTIONS))
    words = inp.quantize(*kif(hw), "WRAP", "TRN")
    out = trigger_logic(spec, weights, words)
    return comb_trace(inp, out)


def breakdown(spec: FirmwareSpec, weights: dict[str, np.ndarray]) -> list[tuple[str, float, float]]:
    """(block, LUT estimate, adder depth) of each part of the trigger, traced on its own.

    Each block starts from fresh inputs of its declared type, so the figures add up to
    about (not exactly) the whole design: enough to name the largest contributors.
    """
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    def fresh(n: int, t: FixedType) -> tuple[Any, Any]:
        inp = FixedVariableArrayInput((n,), solver_options=dict(SOLVER_OPTIONS))
        return inp, inp.quantize(*kif(t), "WRAP", "TRN")

    rows = []
    pre = spec.preprocessing
    inp, w = fresh(len(pre.offsets), spec.hardware_input)
    x = (w - np.asarray(pre.offsets, dtype=np.float64)) * np.exp2(
        -np.asarray(pre.shifts, dtype=np.float64)
    )
    comb = comb_trace(inp, cast(x, spec.input))
    rows.append(("preprocessing", comb.cost, comb.latency[1]))
    for a, ae in enumerate(spec.autoencoders):
        h_type = spec.input
        for k, d in enumerate(ae.layers):
            inp, h = fresh(d.n_in, h_type)
            acc = h @ np.asarray(weights[weight_key(a, k, "weight")], dtype=np.float64).T
            if d.bias is not None:
                acc = acc + np.asarray(weights[weight_key(a, k, "bias")], dtype=np.float64)
            res = cast(cast(acc, d.accumulator), d.result)
            if d.activation == "relu":
                res = np.maximum(res, 0.0)
            comb = comb_trace(inp, cast(res, d.activation_result))
            rows.append((f"{ae.name} {d.name} ({d.n_in}x{d.n_out})", comb.cost, comb.latency[1]))
            h_type = d.activation_result
        n = len(ae.score.outputs)
        inp_x = FixedVariableArrayInput(
            (N_FEATURES + ae.layers[-1].n_out,), solver_options=dict(SOLVER_OPTIONS)
        )
        xv = inp_x[:N_FEATURES].quantize(*kif(spec.input), "WRAP", "TRN")
        hv = inp_x[N_FEATURES:].quantize(*kif(h_type), "WRAP", "TRN")
        comb = comb_trace(inp_x, score_logic(ae, xv, hv))
        rows.append((f"{ae.name} score ({n} squares)", comb.cost, comb.latency[1]))
    return rows
