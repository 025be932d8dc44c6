"""A complete FirmwareSpec with random on-grid weights, for tests and benchmarks.

It has the shape of the default firmware model (``offline.ad.model.PRESETS["firmware"]``:
57-32-16-4-16-32-57 with bias, two of them) and the types a QKeras model with
``quantized_bits(8, 2, alpha=1)`` weights and ``quantized_relu(8, 3)`` activations
has, so the firmware can be exercised before (or without) a trained quantized model.
``quantize.precision`` makes the real one.
"""

from __future__ import annotations

import numpy as np

from offline.events.schema import N_FEATURES
from offline.preprocess import Preprocessing
from quantize.spec import (
    AutoencoderSpec,
    DenseSpec,
    FirmwareSpec,
    FixedType,
    ScoreSpec,
    TriggerSpec,
    exact_accumulator,
    weight_key,
)

SIZES = (N_FEATURES, 32, 16, 4, 16, 32, N_FEATURES)
WEIGHT = FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT")  # quantized_bits(8, 2, alpha=1)
HIDDEN = FixedType(8, 3, False, "AP_RND_CONV", "AP_SAT")  # quantized_relu(8, 3)
OUTPUT = FixedType(16, 6, True, "AP_RND_CONV", "AP_SAT")  # quantized_bits(16, 5, alpha=1)
INPUT = FixedType(16, 6, True, "AP_TRN", "AP_SAT")
HARDWARE = FixedType(16, 16, True)


def example_spec(preprocessing: Preprocessing, threshold_r1: float = 8.0, threshold_r2: float = 8.0) -> FirmwareSpec:
    """The default-shaped spec with exact accumulators and a truncating, saturating score."""
    aes = []
    for a in range(2):
        layers, x_t = [], INPUT
        for k, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
            last = k == len(SIZES) - 2
            acc = exact_accumulator(WEIGHT, x_t, n_in, WEIGHT)
            act_t = OUTPUT if last else HIDDEN
            layers.append(
                DenseSpec(f"ae{a + 1}_dense{k}", n_in, n_out, WEIGHT, WEIGHT, acc, acc, "linear" if last else "relu", act_t)
            )
            x_t = act_t
        score = ScoreSpec(
            difference=FixedType(17, 7, True),
            square=FixedType(20, 12, False, "AP_TRN", "AP_SAT"),
            score=FixedType(24, 16, False, "AP_TRN", "AP_SAT"),
        )
        aes.append(AutoencoderSpec(f"ae{a + 1}", tuple(layers), score))
    return FirmwareSpec(
        hardware_input=HARDWARE,
        preprocessing=preprocessing,
        input=INPUT,
        autoencoders=(aes[0], aes[1]),
        trigger=TriggerSpec(threshold_r1, threshold_r2, ("A",)),
        metadata={"origin": "firmware.example (random weights)"},
    )


def example_weights(spec: FirmwareSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights on each layer's grid, scaled like a trained network (~1/sqrt(n_in))."""
    rng = np.random.default_rng(seed)
    weights = {}
    for a, ae in enumerate(spec.autoencoders):
        for k, d in enumerate(ae.layers):
            w = rng.normal(0, 1.5 / np.sqrt(d.n_in), (d.n_out, d.n_in))
            weights[weight_key(a, k, "weight")] = _on_grid(w, d.weight)
            if d.bias is not None:
                weights[weight_key(a, k, "bias")] = _on_grid(rng.normal(0, 0.25, d.n_out), d.bias)
    return weights


def _on_grid(values: np.ndarray, ftype: FixedType) -> np.ndarray:
    mant = np.clip(np.rint(np.ldexp(values, ftype.fractional)), ftype.min_int, ftype.max_int)
    return np.ldexp(mant, -ftype.fractional)


def edge_words(spec: FirmwareSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Hardware words at the edges: all-empty events, zeros, saturating pT, extreme eta/phi words."""
    hw = spec.hardware_input
    words = np.zeros((n, N_FEATURES), dtype=np.int64)  # first block: all-empty events
    q = n // 4
    pt_cols = np.arange(0, N_FEATURES, 3)
    # saturating pT: the largest word the input type holds, in random objects
    mask = rng.random((q, len(pt_cols))) < 0.5
    words[q : 2 * q, pt_cols] = np.where(mask, hw.max_int, 0)
    # every word at the type's extremes
    words[2 * q : 3 * q] = rng.choice([hw.min_int, hw.max_int, 0, 1, -1], size=(q, N_FEATURES))
    # random words anywhere in the type's range
    words[3 * q :] = rng.integers(hw.min_int, hw.max_int + 1, size=(n - 3 * q, N_FEATURES))
    return words
