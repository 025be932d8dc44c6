"""Integer reference of the whole trigger, with hls4ml's operation order.

The firmware must reproduce this bit for bit; it is what ``tb_data`` holds as
expected outputs and what the C simulation and the RTL are checked against.
It follows the FirmwareSpec and the order hls4ml's ``dense_latency`` computes in:
every product is cast to the accumulator type, the accumulator starts at the bias
and adds the products input by input, the sum is cast to the layer's result type,
then the activation casts to its own result type. ``emulation`` owns the general
emulator; this one exists because ``firmware`` may not import ``emulation``
(imports run ``emulation`` -> ``firmware``) and needs the integer form anyway to
trace the hardware-cost model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offline.events.schema import N_FEATURES
from quantize.fixed import cast
from quantize.spec import (
    DenseSpec,
    FirmwareSpec,
    FixedType,
    ScoreSpec,
    product_type,
    sum_type,
    weight_key,
)

REGION_BITS = ("A", "B", "C", "D")


@dataclass
class TriggerOutputs:
    """Per event: R1, R2 as mantissas of the score types, the ABCD bits, the trigger bit."""

    r1: np.ndarray  # int64 mantissas of spec.autoencoders[0].score.score
    r2: np.ndarray
    regions: np.ndarray  # (N, 4) uint8, columns A, B, C, D
    trigger: np.ndarray  # (N,) uint8
    inputs: np.ndarray  # (N, 57) mantissas of spec.input
    reconstructions: tuple[np.ndarray, np.ndarray]  # mantissas of each AE's output type


def preprocess_type(spec: FirmwareSpec) -> FixedType:
    """Exact type of ``(word - offset) >> shift`` before the cast to the input type."""
    pre = spec.preprocessing
    hw = spec.hardware_input
    frac = pre.fractional_bits
    left = max(0, *(-s for s in pre.shifts))
    span = max(abs(o) for o in pre.offsets)
    # word - offset needs one bit more than the wider of the word and the offset
    int_bits = max(hw.integer + (0 if hw.signed else 1), span.bit_length() + 1) + 1 + left
    return FixedType(int_bits + frac, int_bits, True)


def preprocess(spec: FirmwareSpec, words: np.ndarray) -> np.ndarray:
    """Hardware words (N, 57) -> mantissas of ``spec.input`` (the autoencoders' input)."""
    words = np.asarray(words, dtype=np.int64)
    if words.ndim != 2 or words.shape[1] != N_FEATURES:
        raise ValueError(f"expected hardware words of shape (N, {N_FEATURES}), got {words.shape}")
    hw = spec.hardware_input
    if hw.fractional != 0:
        raise ValueError(f"hardware_input {hw} must be an integer type")
    words = cast(words, 0, hw)  # the words arrive as hardware_input: out-of-range values wrap/saturate as it says
    frac = spec.preprocessing.fractional_bits
    mant = spec.preprocessing.apply_integer(words, frac)
    return cast(mant, frac, spec.input)


def dense(layer: DenseSpec, x: np.ndarray, x_type: FixedType, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """One dense layer plus activation on mantissas; returns mantissas of ``activation_result``."""
    acc_t = layer.accumulator
    w_m = np.rint(np.ldexp(w, layer.weight.fractional)).astype(np.int64)  # (out, in)
    prod_frac = product_type(layer.weight, x_type).fractional
    acc = (
        cast(np.rint(np.ldexp(b, layer.bias.fractional)).astype(np.int64), layer.bias.fractional, acc_t)
        if b is not None
        else np.zeros(layer.n_out, dtype=np.int64)
    )
    acc = np.broadcast_to(acc, (len(x), layer.n_out)).copy()
    exact_products = prod_frac <= acc_t.fractional and acc_t.overflow == "AP_WRAP"
    if exact_products:
        # cast of each product is exact and wrapping is associative: sum once, wrap once
        shift = acc_t.fractional - prod_frac
        acc = cast(acc + ((x @ w_m.T) << shift), acc_t.fractional, acc_t)
    else:
        for i in range(layer.n_in):
            p = cast(x[:, i : i + 1] * w_m[:, i][None, :], prod_frac, acc_t)
            acc = cast(acc + p, acc_t.fractional, acc_t)
    res = cast(acc, acc_t.fractional, layer.result)
    if layer.activation == "relu":
        res = np.maximum(res, 0)
    return cast(res, layer.result.fractional, layer.activation_result)


def network(spec: FirmwareSpec, weights: dict[str, np.ndarray], ae: int, x: np.ndarray) -> np.ndarray:
    """Mantissas of autoencoder ``ae``'s reconstruction from input mantissas."""
    x_type = spec.input
    for k, layer in enumerate(spec.autoencoders[ae].layers):
        b = weights.get(weight_key(ae, k, "bias")) if layer.bias is not None else None
        x = dense(layer, x, x_type, np.asarray(weights[weight_key(ae, k, "weight")]), b)
        x_type = layer.activation_result
    return x


def score(spec: FirmwareSpec, ae: int, x: np.ndarray, xhat: np.ndarray) -> np.ndarray:
    """Reconstruction error: sum over the score's outputs of cast(square, cast(difference, x - xhat)**2)."""
    s = spec.autoencoders[ae].score
    out_t = spec.autoencoders[ae].layers[-1].activation_result
    frac = max(spec.input.fractional, out_t.fractional)
    diff = (x << (frac - spec.input.fractional)) - (xhat << (frac - out_t.fractional))
    diff = cast(diff, frac, s.difference)
    sq = cast(diff * diff, 2 * s.difference.fractional, s.square)
    total = np.zeros(len(x), dtype=np.int64)
    frac = max(s.score.fractional, s.square.fractional)
    for o in s.outputs:  # sequential, as the HLS loop adds (matters only for saturating score types)
        term = sq[:, o] << (frac - s.square.fractional)
        total = cast((total << (frac - s.score.fractional)) + term, frac, s.score)
    return total


def score_sum_type(s: ScoreSpec) -> FixedType:
    """Type the wrapper adds the squares in: exact (then one cast to the score type) when that
    equals the spec's one-by-one saturating additions, else the score type itself.

    Squares are never negative (unsigned, or saturating), so with a saturating or wrapping
    score type and no rounding (score.fractional >= square.fractional) every partial sum
    that saturates stays saturated: sat(sum) == sequential sat. The exact sum is an adder
    tree of depth log2(N) instead of a chain of N saturating adders.
    """
    nonneg = not s.square.signed or s.square.overflow in ("AP_SAT", "AP_SAT_SYM", "AP_SAT_ZERO")
    ok_overflow = s.score.overflow in ("AP_SAT", "AP_WRAP") and (s.score.overflow == "AP_WRAP" or s.score.min_int <= 0)
    if not (nonneg and ok_overflow and s.score.fractional >= s.square.fractional):
        return s.score
    exact = sum_type(s.square, len(s.outputs))
    extra = s.score.fractional - s.square.fractional
    return FixedType(exact.width + extra, exact.integer, exact.signed)


def threshold_mantissas(spec: FirmwareSpec) -> tuple[int, int]:
    t = spec.trigger
    f1 = spec.autoencoders[0].score.score.fractional
    f2 = spec.autoencoders[1].score.score.fractional
    return int(np.ldexp(t.threshold_r1, f1)), int(np.ldexp(t.threshold_r2, f2))


def trigger_reference(spec: FirmwareSpec, weights: dict[str, np.ndarray], words: np.ndarray) -> TriggerOutputs:
    """Every output of the trigger for hardware words (N, 57), exactly as the firmware computes it."""
    x = preprocess(spec, words)
    recos, scores = [], []
    for ae in range(2):
        xhat = network(spec, weights, ae, x)
        recos.append(xhat)
        scores.append(score(spec, ae, x, xhat))
    t1, t2 = threshold_mantissas(spec)
    hi1, hi2 = scores[0] > t1, scores[1] > t2
    regions = np.stack([hi1 & hi2, hi1 & ~hi2, ~hi1 & hi2, ~hi1 & ~hi2], axis=1).astype(np.uint8)
    fire = np.zeros(len(x), dtype=bool)
    for r in spec.trigger.fire_on:
        fire |= regions[:, REGION_BITS.index(r)].astype(bool)
    return TriggerOutputs(scores[0], scores[1], regions, fire.astype(np.uint8), x, (recos[0], recos[1]))
