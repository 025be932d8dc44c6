"""Toy inputs and the default firmware model with random on-grid weights, for tests and benchmarks,
and the words ``l1ad firmware`` simulates (:func:`event_words`: events or toy events, then edge values).

``latent_norm_model`` replaces R2 by the latent norm of an encoder (the deployed
variational triggers' score): the second score architecture, through the same firmware path.

``default_model`` is the shape of ``offline.ad.model.PRESETS["firmware"]`` (57-16-4-16-57
with bias, twice) at the default ``quantize.QuantConfig``, so the firmware can be exercised
and costed before (or without) a trained quantized model; ``quantize`` makes the real one.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from emulation.events import edge_words
from emulation.spec import LATENT_NORM, AutoencoderSpec, FirmwareSpec, FixedType, ScoreSpec
from emulation.trigger import emulate_trigger
from offline.events.io import read_events
from offline.events.schema import N_FEATURES
from offline.preprocess import Preprocessing, to_hardware


def toy_words(n: int, seed: int) -> np.ndarray:
    """Hardware words of loosely physics-shaped toy events (exponential pT, uniform eta/phi, random
    multiplicities, zero-padded): for fitting a preprocessing and exercising the firmware, never physics."""
    rng = np.random.default_rng(seed)
    feats = np.zeros((n, 19, 3))
    feats[:, 0, 0] = rng.exponential(30.0, n)
    feats[:, 0, 2] = rng.uniform(-np.pi, np.pi, n)
    for first, count in ((1, 4), (5, 4), (9, 10)):
        k = rng.integers(0, count + 1, n)
        present = np.arange(count)[None, :] < k[:, None]
        pt = np.sort(rng.exponential(25.0, (n, count)) + 3.0, axis=1)[:, ::-1]
        feats[:, first : first + count, 0] = np.where(present, pt, 0)
        feats[:, first : first + count, 1] = np.where(
            present, rng.uniform(-2.5, 2.5, (n, count)), 0
        )
        feats[:, first : first + count, 2] = np.where(
            present, rng.uniform(-np.pi, np.pi, (n, count)), 0
        )
    return to_hardware(feats.reshape(n, N_FEATURES))


def default_model(
    seed: int = 0,
    n_fit: int = 5000,
    quantile: float = 0.99,
    ae_config: Any = None,
    quant_config: Any = None,
    score_outputs: tuple[int, ...] | None = None,
) -> tuple[FirmwareSpec, dict[str, np.ndarray]]:
    """The default firmware model (``PRESETS["firmware"]`` at ``QuantConfig()``) with random grid weights,
    preprocessing fitted on toy words and thresholds at the given background quantile of R1 and R2.

    The thresholds are placed on the exact R1, R2 mantissas of the trigger emulator
    (:func:`emulation.emulate_trigger`). ``ae_config``/``quant_config``/``score_outputs`` shrink the
    model (tests: a small network, a score over a few features)."""
    from offline.ad.model import PRESETS
    from quantize.precision import QuantConfig, build_spec, random_quantized_weights

    words = toy_words(n_fit, seed)
    spec = build_spec(
        ae_config or PRESETS["firmware"], quant_config or QuantConfig(), Preprocessing.fit(words)
    )
    if score_outputs is not None:
        first, second = (
            dataclasses.replace(
                ae, score=dataclasses.replace(ae.score, outputs=tuple(score_outputs))
            )
            for ae in spec.autoencoders
        )
        spec = dataclasses.replace(spec, autoencoders=(first, second))
    weights = random_quantized_weights(spec, seed)
    return _thresholds_at(spec, weights, words, quantile), weights


def _thresholds_at(
    spec: FirmwareSpec, weights: dict[str, np.ndarray], words: np.ndarray, quantile: float,
    fire_on: tuple[str, ...] | None = None,
) -> FirmwareSpec:  # fmt: skip
    """The spec with R1 and R2 thresholds at ``quantile`` of the emulated scores of ``words``."""
    from quantize.precision import snap_to_grid

    ref = emulate_trigger(spec, weights, words)
    t = []
    for ae, r in enumerate((ref.r1, ref.r2)):
        score_t = spec.autoencoders[ae].score.score
        t.append(snap_to_grid(float(np.quantile(r, quantile)) * 2.0**-score_t.fractional, score_t))
    trig = dataclasses.replace(spec.trigger, threshold_r1=t[0], threshold_r2=t[1])
    if fire_on is not None:
        trig = dataclasses.replace(trig, fire_on=fire_on)
    return dataclasses.replace(spec, trigger=trig)


def latent_norm_model(
    seed: int = 0,
    n_fit: int = 3000,
    ae_config: Any = None,
    encoder_widths: tuple[int, ...] = (57, 16, 4),
    mu_type: FixedType | None = None,
    square_type: FixedType | None = None,
    score_type: FixedType | None = None,
    quantile: float = 0.5,
) -> tuple[FirmwareSpec, dict[str, np.ndarray]]:
    """R1 = the reconstruction error of ``default_model``'s first autoencoder, R2 = sum of mu**2
    over an encoder ``encoder_widths`` (ReLU hidden layers, a linear last layer whose output, cast
    to ``mu_type``, is the latent mean), random on-grid weights, thresholds at ``quantile``.

    The default types round and saturate mu and saturate the squares and the sum, so edge words
    exercise every cast of the latent-norm score."""
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig, build_spec, random_quantized_weights

    spec, _ = default_model(seed, n_fit, ae_config=ae_config or AEConfig(hidden=(8,), latent=3))
    hidden = encoder_widths[1:-1]
    # the encoder half of an autoencoder at the default precisions: its layers and exact accumulators
    shape = AEConfig(hidden=tuple(hidden), latent=encoder_widths[-1])
    half = build_spec(shape, QuantConfig(), spec.preprocessing).autoencoders[1].layers
    layers = list(half[: len(encoder_widths) - 1])
    mu_t = mu_type or FixedType(10, 4, True, "AP_RND_CONV", "AP_SAT")
    layers[-1] = dataclasses.replace(layers[-1], activation="linear", activation_result=mu_t)
    score = ScoreSpec(
        None,
        square_type or FixedType(12, 6, False, "AP_TRN", "AP_SAT"),
        score_type or FixedType(12, 7, False, "AP_TRN", "AP_SAT"),
        tuple(range(encoder_widths[-1])),
        LATENT_NORM,
    )
    encoder = AutoencoderSpec("enc2", tuple(layers), score)
    zero = dataclasses.replace(spec.trigger, threshold_r2=0.0)  # placed below, on R2's own grid
    spec = dataclasses.replace(spec, autoencoders=(spec.autoencoders[0], encoder), trigger=zero)
    weights = random_quantized_weights(spec, seed)
    return _thresholds_at(spec, weights, toy_words(n_fit, seed), quantile, ("A", "B")), weights


def event_words(
    events: str | os.PathLike[str] | None, n: int, spec: FirmwareSpec, seed: int = 0
) -> np.ndarray:
    """Hardware words to simulate: the first ``n`` events of a file (or toy events), then edge values
    (all-empty events, saturating pT, extreme words) — a quarter as many again."""
    if events is not None:
        words = to_hardware(read_events(events).features)[:n]
    else:
        words = toy_words(n, seed)
    edges = edge_words(spec, np.random.default_rng(seed + 1), max(8, n // 4))
    return np.concatenate([words, edges])
