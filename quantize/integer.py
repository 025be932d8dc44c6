"""The quantized pair in exact integer arithmetic, straight from a FirmwareSpec and its weights.

This is the reference both QAT frameworks are checked against, and what sets the
thresholds and scores the quantized pair (R1, R2 on the score grid) independently of
Brevitas or QKeras. Values are int64 mantissas (``value * 2**fractional``), so the
result is exact by construction. Semantics, in the order the firmware applies them:

- input: ``(word - offset) << (F - shift)`` (exact with F fractional bits), cast to ``input``;
- dense: ``acc = sum_i w_ji x_i + b_j`` exactly, cast to ``accumulator`` then ``result``;
  ReLU (``max(0, .)``) or linear, cast to ``activation_result``;
- score: ``difference_j = cast(x_j - xhat_j)``, ``square_j = cast(difference_j**2)``,
  ``score = score + square_j`` accumulated in ``score``'s type one output at a time in
  the order of ``outputs`` (each addition cast, as ``score_t acc; acc += sq`` does).
"""

from __future__ import annotations

import numpy as np

from offline.preprocess import to_hardware
from quantize.fixed import cast, from_float, to_float
from quantize.spec import AutoencoderSpec, FirmwareSpec, FixedType, weight_key

__all__ = ["autoencoder_output", "input_mantissa", "model_inputs", "scores", "scores_from_features"]


def input_mantissa(spec: FirmwareSpec, words: np.ndarray) -> np.ndarray:
    """Hardware words (N, 57) -> mantissas of the autoencoders' input (type ``spec.input``)."""
    frac = spec.preprocessing.fractional_bits
    return cast(spec.preprocessing.apply_integer(words, frac), frac, spec.input)


def model_inputs(spec: FirmwareSpec, features: np.ndarray) -> np.ndarray:
    """Physical features (N, 57) -> the float values the quantized models see (on the input grid)."""
    return to_float(input_mantissa(spec, to_hardware(features)), spec.input)


def _layer_mantissas(ae: AutoencoderSpec, i: int, weights: dict[str, np.ndarray]):
    for k, d in enumerate(ae.layers):
        w = from_float(weights[weight_key(i, k, "weight")], d.weight)
        b = None if d.bias is None else from_float(weights[weight_key(i, k, "bias")], d.bias)
        yield d, w, b


def autoencoder_output(
    spec: FirmwareSpec, weights: dict[str, np.ndarray], x: np.ndarray, ae: int, trace: bool = False
) -> np.ndarray | list[np.ndarray]:
    """Output mantissas (type of the last ``activation_result``) of autoencoder ``ae`` for input mantissas ``x``.

    With ``trace=True`` returns the mantissas after every layer's activation instead.
    """
    aspec = spec.autoencoders[ae]
    t_in: FixedType = spec.input
    h = np.asarray(x, dtype=np.int64)
    steps = []
    for d, w, b in _layer_mantissas(aspec, ae, weights):
        frac = t_in.fractional + d.weight.fractional
        if b is not None:
            frac = max(frac, d.bias.fractional)
        acc = (h @ w.T) << (frac - t_in.fractional - d.weight.fractional)
        if b is not None:
            acc = acc + (b << (frac - d.bias.fractional))
        acc = cast(acc, frac, d.accumulator)
        res = cast(acc, d.accumulator.fractional, d.result)
        if d.activation == "relu":
            res = np.maximum(res, 0)
        h = cast(res, d.result.fractional, d.activation_result)
        t_in = d.activation_result
        steps.append(h)
    return steps if trace else h


def scores(spec: FirmwareSpec, weights: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R1, R2) as floats on the score grids, for input mantissas ``x`` (N, 57)."""
    out = []
    for i, aspec in enumerate(spec.autoencoders):
        xhat = autoencoder_output(spec, weights, x, i)
        t_out = aspec.layers[-1].activation_result
        s = aspec.score
        frac = max(spec.input.fractional, t_out.fractional)
        diff = (x << (frac - spec.input.fractional)) - (xhat << (frac - t_out.fractional))
        diff = cast(diff, frac, s.difference)
        sq = cast(diff * diff, 2 * s.difference.fractional, s.square)
        acc = np.zeros(len(x), dtype=np.int64)
        frac = max(s.score.fractional, s.square.fractional)
        for j in s.outputs:
            total = (acc << (frac - s.score.fractional)) + (sq[:, j] << (frac - s.square.fractional))
            acc = cast(total, frac, s.score)
        out.append(to_float(acc, s.score))
    return out[0], out[1]


def scores_from_features(
    spec: FirmwareSpec, weights: dict[str, np.ndarray], features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(R1, R2) of physical features (N, 57): hardware words, preprocessing, the pair, the score."""
    return scores(spec, weights, input_mantissa(spec, to_hardware(features)))
