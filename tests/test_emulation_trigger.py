"""The trigger emulator against an independent, literal, one-event-at-a-time reference in Python ints."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

from emulation import (
    OverflowCounter,
    TriggerEmulator,
    emulate_trigger,
    input_mantissas,
    place_thresholds,
)
from emulation.events import binomial_efficiency, edge_words, trigger_rate
from offline.ad.model import AEConfig
from offline.events.schema import N_FEATURES
from offline.preprocess import Preprocessing
from quantize.precision import QuantConfig, build_spec, random_quantized_weights, snap_to_grid
from quantize.spec import FirmwareSpec, FixedType, weight_key

ROUNDING = (
    "AP_TRN",
    "AP_TRN_ZERO",
    "AP_RND",
    "AP_RND_ZERO",
    "AP_RND_MIN_INF",
    "AP_RND_INF",
    "AP_RND_CONV",
)
OVERFLOW = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")


# ---- the reference: exact rationals, Python ints, the spec's order of operations read literally ----


def _q(value: Fraction, t: FixedType) -> Fraction:
    """ap_fixed assignment of an exact rational ``value`` to ``t``."""
    scaled = value * 2**t.fractional
    fl = math.floor(scaled)
    rem = scaled - fl
    half = Fraction(1, 2)
    r = t.rounding
    if r == "AP_TRN" or rem == 0:
        m = fl
    elif r == "AP_TRN_ZERO":
        m = fl + 1 if scaled < 0 else fl
    elif rem != half:
        m = fl + (rem > half)
    else:  # exact tie
        m = {"AP_RND": fl + 1, "AP_RND_MIN_INF": fl, "AP_RND_ZERO": fl + (scaled < 0),
             "AP_RND_INF": fl + (scaled > 0), "AP_RND_CONV": fl + (fl % 2)}[r]  # fmt: skip
    lo, hi = t.min_int, t.max_int
    if t.overflow == "AP_SAT_SYM" and t.signed:
        lo = -hi
    if not lo <= m <= hi:
        if t.overflow == "AP_WRAP":
            m = (m - t.min_int) % (1 << t.width) + t.min_int
        elif t.overflow == "AP_SAT_ZERO":
            m = 0
        else:
            m = min(max(m, lo), hi)
    return Fraction(m, 2**t.fractional)


def reference_event(
    spec: FirmwareSpec, weights: dict, words: list[int]
) -> tuple[Fraction, Fraction]:
    pre = spec.preprocessing
    x = []
    for word, off, sh in zip(words, pre.offsets, pre.shifts, strict=True):
        v = _q(Fraction(word), spec.hardware_input)
        x.append(_q((v - off) / Fraction(2) ** sh, spec.input))
    scores = []
    for a, ae in enumerate(spec.autoencoders):
        h = x
        for k, d in enumerate(ae.layers):
            w = weights[weight_key(a, k, "weight")]
            b = weights.get(weight_key(a, k, "bias"))
            out = []
            for j in range(d.n_out):
                acc = _q(Fraction(float(b[j])), d.accumulator) if b is not None else Fraction(0)
                for i in range(d.n_in):
                    acc = _q(
                        acc + _q(h[i] * Fraction(float(w[j, i])), d.accumulator), d.accumulator
                    )
                res = _q(acc, d.result)
                if d.activation == "relu" and res < 0:
                    res = Fraction(0)
                out.append(_q(res, d.activation_result))
            h = out
        s = ae.score
        total = Fraction(0)
        for o in s.outputs:
            diff = _q(x[o] - h[o], s.difference)
            total = _q(total + _q(diff * diff, s.square), s.score)
        scores.append(total)
    return scores[0], scores[1]


# ---- random specs ----------------------------------------------------------------------------


def _rand_type(rng, width, integer, signed=True) -> FixedType:
    return FixedType(
        int(width), int(integer), signed, str(rng.choice(ROUNDING)), str(rng.choice(OVERFLOW))
    )


def random_spec(seed: int, narrow: bool = True) -> tuple[FirmwareSpec, dict]:
    """A small pair (57-6-3-6-57) with random preprocessing, weights and (if ``narrow``) narrow
    types of every rounding/overflow mode, so that casts round, saturate and wrap."""
    rng = np.random.default_rng(seed)
    words = rng.integers(-40, 200, (500, N_FEATURES))
    spec = build_spec(
        AEConfig(hidden=(6,), latent=3), QuantConfig(hardware_input=10), Preprocessing.fit(words)
    )
    weights = random_quantized_weights(spec, seed, sparsity=0.2)
    if narrow:
        aes = []
        for ae in spec.autoencoders:
            layers = []
            for d in ae.layers:
                acc = _rand_type(rng, rng.integers(10, 20), rng.integers(3, 8))
                res = _rand_type(rng, rng.integers(6, 14), rng.integers(2, 6))
                act = _rand_type(
                    rng,
                    rng.integers(6, 14),
                    rng.integers(2, 6),
                    signed=d.activation != "relu" or rng.random() < 0.5,
                )
                layers.append(
                    dataclasses.replace(d, accumulator=acc, result=res, activation_result=act)
                )
            score = dataclasses.replace(
                ae.score,
                difference=_rand_type(rng, rng.integers(6, 12), rng.integers(2, 6)),
                square=_rand_type(
                    rng, rng.integers(8, 14), rng.integers(3, 8), signed=rng.random() < 0.3
                ),
                score=_rand_type(
                    rng, rng.integers(10, 16), rng.integers(5, 10), signed=rng.random() < 0.3
                ),
                outputs=tuple(
                    int(i) for i in rng.permutation(N_FEATURES)[: rng.integers(5, N_FEATURES + 1)]
                ),
            )
            aes.append(dataclasses.replace(ae, layers=tuple(layers), score=score))
        hw = _rand_type(rng, 9, 9)
        inp = _rand_type(rng, rng.integers(8, 14), rng.integers(3, 7))
        inp = dataclasses.replace(
            inp, width=max(inp.width, inp.integer + max(spec.preprocessing.shifts))
        )
        spec = dataclasses.replace(spec, autoencoders=tuple(aes), hardware_input=hw, input=inp)
    return spec, weights


def _words(spec: FirmwareSpec, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    words = rng.integers(-40, 200, (n, N_FEATURES))
    words[rng.random((n, N_FEATURES)) < 0.3] = 0
    return np.concatenate(
        [
            words,
            edge_words(spec, np.random.default_rng(seed), max(8, n // 4)),
            rng.integers(-2000, 2000, (8, N_FEATURES)),
        ]
    )


@pytest.mark.parametrize("seed", range(4))
def test_emulator_equals_literal_rational_reference_on_random_narrow_specs(seed):
    spec, weights = random_spec(seed)
    words = _words(spec, 40, seed)
    counter = OverflowCounter()
    out = emulate_trigger(spec, weights, words, counter)
    f1 = spec.autoencoders[0].score.score.fractional
    f2 = spec.autoencoders[1].score.score.fractional
    for e in range(len(words)):
        r1, r2 = reference_event(spec, weights, [int(v) for v in words[e]])
        assert (out.r1[e], out.r2[e]) == (int(r1 * 2**f1), int(r2 * 2**f2)), f"event {e}"
    assert counter.total > 0  # narrow types: the test really exercises rounding/saturation/wrapping


def test_emulator_equals_reference_on_default_types_with_thresholds_regions_and_trigger():
    spec, weights = random_spec(11, narrow=False)
    words = _words(spec, 40, 11)
    r = [reference_event(spec, weights, [int(v) for v in w]) for w in words]
    r1 = np.array([float(a) for a, _ in r])
    r2 = np.array([float(b) for _, b in r])
    t1 = snap_to_grid(float(np.median(r1)), spec.autoencoders[0].score.score)
    t2 = snap_to_grid(float(np.median(r2)), spec.autoencoders[1].score.score)
    trig = dataclasses.replace(spec.trigger, threshold_r1=t1, threshold_r2=t2, fire_on=("A", "C"))
    spec = dataclasses.replace(spec, trigger=trig)
    out = emulate_trigger(spec, weights, words)
    assert np.array_equal(out.r1_float, r1) and np.array_equal(out.r2_float, r2)
    hi1, hi2 = r1 > t1, r2 > t2
    expected = np.stack([hi1 & hi2, hi1 & ~hi2, ~hi1 & hi2, ~hi1 & ~hi2], axis=1)
    assert np.array_equal(out.regions.astype(bool), expected)
    assert np.array_equal(out.trigger.astype(bool), expected[:, 0] | expected[:, 2])
    assert out.regions.sum(axis=1).tolist() == [1] * len(words)


def test_empty_events_give_the_score_of_the_zero_word_and_no_events_give_empty_outputs():
    spec, weights = random_spec(3)
    out = emulate_trigger(spec, weights, np.zeros((5, N_FEATURES), dtype=np.int64))
    r1, r2 = reference_event(spec, weights, [0] * N_FEATURES)
    assert set(out.r1_float.tolist()) == {float(r1)} and set(out.r2_float.tolist()) == {float(r2)}
    none = emulate_trigger(spec, weights, np.zeros((0, N_FEATURES), dtype=np.int64))
    assert len(none) == 0 and none.regions.shape == (0, 4)


def test_fast_paths_and_chunking_do_not_change_a_bit():
    spec, weights = random_spec(5, narrow=False)
    words = _words(spec, 3000, 5)
    em = TriggerEmulator(spec, weights)
    assert all(p.all_float for p in em.programs) and all(
        em.score_dtypes
    )  # default types: float path
    a = em(words, chunk_size=777, keep_intermediates=True)
    slow = TriggerEmulator(spec, weights, float_path=False)  # the integer loops
    assert not any(p.all_float for p in slow.programs)
    b = slow(words, chunk_size=100000, keep_intermediates=True)
    assert not a.mismatches(b).any()
    assert np.array_equal(a.inputs, b.inputs)
    c1, c2 = OverflowCounter(), OverflowCounter()
    threaded = em(words, c1, chunk_size=500, workers=2, keep_intermediates=True)
    assert not threaded.mismatches(a).any() and np.array_equal(threaded.inputs, a.inputs)
    em(words, c2, chunk_size=3000)

    def per_value(c):  # bias casts are counted once per chunk, everything else once per value
        return {k: v for k, v in c.as_dict().items() if not k.endswith(".bias")}

    assert per_value(c1) == per_value(c2)
    assert all(
        np.array_equal(x, y) for x, y in zip(a.reconstructions, b.reconstructions, strict=True)
    )


def test_input_stage_alone_equals_the_whole_trigger_inputs():
    """``input_mantissas`` (what QAT trains on, no weights needed) is the emulator's own first stage."""
    for seed in (30, 31):
        spec, weights = random_spec(seed, narrow=seed > 30)
        words = np.random.default_rng(seed).integers(-40, 200, (3000, N_FEATURES))
        got = emulate_trigger(spec, weights, words, keep_intermediates=True)
        assert np.array_equal(input_mantissas(spec, words), got.inputs)


def test_place_thresholds_gives_the_requested_background_efficiency():
    spec, weights = random_spec(8, narrow=False)
    rng = np.random.default_rng(8)
    words = rng.integers(-40, 200, (20000, N_FEATURES))
    w = rng.uniform(0.5, 1.5, len(words))
    for eps in (0.01, 0.05):
        placed = place_thresholds(spec, weights, words, w, eps)
        for value, ae in ((placed.trigger.threshold_r1, 0), (placed.trigger.threshold_r2, 1)):
            assert spec.autoencoders[ae].score.score.on_grid(np.array([value]))[0]
        out = emulate_trigger(placed, weights, words)
        eff_a = w[out.regions[:, 0].astype(bool)].sum() / w.sum()
        eff_r1 = w[out.r1_float > placed.trigger.threshold_r1].sum() / w.sum()
        assert abs(eff_r1 - math.sqrt(eps)) < 0.01
        assert abs(eff_a - eps) < 0.25 * eps
        assert placed.trigger.fire_on == spec.trigger.fire_on


def test_rate_and_efficiency_are_weighted_binomial():
    fired = np.array([1, 0, 0, 1, 0], dtype=bool)
    eff, sigma = binomial_efficiency(fired)
    assert eff == pytest.approx(0.4) and sigma == pytest.approx(math.sqrt(0.4 * 0.6 / 5))
    w = np.array([2.0, 1.0, 1.0, 2.0, 4.0])
    eff, sigma = binomial_efficiency(fired, w)
    assert eff == pytest.approx(0.4)
    assert sigma == pytest.approx(math.sqrt(0.6**2 * 8 + 0.4**2 * 18) / 10)
    rate, rate_sigma = trigger_rate(fired, w)
    assert rate == pytest.approx(16000.0) and rate_sigma == pytest.approx(40000 * sigma)
    assert all(math.isnan(v) for v in binomial_efficiency(np.zeros(0, dtype=bool)))


def test_bad_inputs_give_clear_errors():
    spec, weights = random_spec(1, narrow=False)
    with pytest.raises(ValueError, match=r"shape \(N, 57\)"):
        emulate_trigger(spec, weights, np.zeros((3, 56), dtype=np.int64))
    with pytest.raises(ValueError, match="missing"):
        emulate_trigger(
            spec,
            {k: v for k, v in weights.items() if "ae2" not in k},
            np.zeros((1, 57), dtype=np.int64),
        )
    with pytest.raises(ValueError, match="FirmwareSpec"):
        emulate_trigger({"not": "a spec"}, weights, np.zeros((1, 57), dtype=np.int64))
    with pytest.raises(ValueError, match="eps_b"):
        place_thresholds(spec, weights, np.zeros((10, 57), dtype=np.int64), None, 1.5)
