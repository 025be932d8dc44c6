"""Firmware-friendly preprocessing: integer offsets, power-of-two shifts, float == integer form."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.preprocess import HARDWARE_LSB, Preprocessing, from_hardware, to_hardware


@pytest.fixture(scope="module")
def fitted(toy_events):
    words = to_hardware(toy_events.features)
    return Preprocessing.fit(words, toy_events.weights), words


def test_hardware_words_are_integers_within_half_an_lsb_of_the_physics_values(toy_events):
    words = to_hardware(toy_events.features)
    assert words.dtype == np.int64
    lsb = np.tile([HARDWARE_LSB["pt"], HARDWARE_LSB["eta"], HARDWARE_LSB["phi"]], 19)
    assert np.all(np.abs(from_hardware(words) - toy_events.features) <= lsb / 2 + 1e-6)


def test_scaled_background_has_spread_between_half_and_one(fitted):
    prep, words = fitted
    scaled = prep.apply(words)
    std = scaled.std(axis=0)
    varying = words.std(axis=0) > 0
    assert np.all((std[varying] > 0.45) & (std[varying] <= 1.05))


def test_float_and_integer_forms_agree_exactly_on_the_integer_grid(fitted):
    prep, words = fitted
    frac = prep.fractional_bits
    as_int = prep.apply_integer(words)
    np.testing.assert_array_equal(as_int * 2.0**-frac, prep.apply(words))


@settings(max_examples=200, deadline=None)
@given(
    word=st.integers(-(2**15), 2**15 - 1),
    offset=st.integers(-1000, 1000),
    shift=st.integers(-3, 10),
)
def test_shift_form_equals_division_for_any_word(word, offset, shift):
    prep = Preprocessing((offset,) * 57, (shift,) * 57)
    words = np.full((1, 57), word)
    frac = max(shift, 0)
    assert prep.apply_integer(words, frac)[0, 0] == (word - offset) * 2 ** (frac - shift)
    assert prep.apply(words)[0, 0] == (word - offset) / 2.0**shift


def test_json_round_trip_keeps_offsets_and_shifts(tmp_path, fitted):
    prep, _ = fitted
    prep.save(tmp_path / "p.json")
    assert Preprocessing.load(tmp_path / "p.json") == prep


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("features"), "missing field 'features'"),
        (lambda d: d["features"].pop(), "57 features"),
        (lambda d: d.update(format_version=99), "format_version 99"),
        (lambda d: d["features"][0].update(shift=1.5), "must be integers"),
    ],
    ids=["no-features", "56-features", "version", "float-shift"],
)
def test_bad_preprocessing_json_is_rejected_naming_the_problem(tmp_path, fitted, edit, message):
    data = fitted[0].to_dict()
    edit(data)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        Preprocessing.load(path)


def test_non_finite_features_are_rejected():
    x = np.zeros((2, 57))
    x[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        to_hardware(x)
