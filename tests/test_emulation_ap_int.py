"""hls4ml projects with ap_int/ap_uint types, or types wider than 64 bits, are emulated
bit-exactly (vs hls4ml's own C simulation).

io_parallel projects from small Dense models, converted by hls4ml in the test: an
``ap_int<12>`` input, an ``ap_uint<10>`` input, a layer result ``ap_int<10>``, and
``ap_int``/``ap_uint`` weights and biases (the C simulation reads them from .txt as integers).
C++ converts a double to ap_int by truncating toward zero (with ap_types' own rule for
(-0.5, 0)) and an ap_fixed to ap_int likewise, then wraps; ``ap_fixed<W,W>`` would round
toward -inf instead, which is what these projects catch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emulation import (
    FixedType,
    emulate_project,
    load_hls_project,
)
from firmware.csim import build_qkeras_dense, write_qkeras_project

N_IN = 8
PROJECTS = {
    "input_ap_int12": {"x": {"result": "ap_int<12>"}},
    "input_ap_uint10": {"x": {"result": "ap_uint<10>"}},
    "result_ap_int10": {"dense0": {"result": "ap_int<10>"}, "relu0": {"result": "ap_int<10>"}},
    # hls4ml writes ap_int weights as integer literals; the C simulation parses them as integers
    "weights_ap_int4": {"dense0": {"weight": "ap_int<4>", "bias": "ap_uint<3>"}},
}


def _events(n: int, seed: int) -> np.ndarray:
    """Integers, values with fractions (both signs), (-0.5, 0), exact halves, and values that wrap."""
    rng = np.random.default_rng(seed)
    k = n // 5
    return np.concatenate(
        [
            rng.integers(-1100, 1100, (k, N_IN)).astype(np.float64),
            rng.normal(0, 300, (k, N_IN)),
            rng.uniform(-0.6, 0.6, (k, N_IN)),
            rng.integers(-40, 40, (k, N_IN)) + 0.5,
            rng.uniform(-5000, 5000, (n - 4 * k, N_IN)),  # beyond 12 bits: wraps
        ]
    )


def _keras_dense_with_halfway_weights():
    """A plain Keras Dense model (hls4ml takes its weight types from the config, not quantizers),
    weights on a grid of 1/4 from -12 to 12: hls4ml's writer rounds them to integer literals
    for ap_int weights, some beyond ap_int<4> (the C simulation wraps them)."""
    from quantize.keras_compat import use_legacy_keras

    keras = use_legacy_keras()
    inputs = keras.Input((N_IN,), name="x")
    h = keras.layers.Dense(6, name="dense0")(inputs)
    h = keras.layers.Activation("relu", name="relu0")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense1")(h))
    rng = np.random.default_rng(5)
    for layer in ("dense0", "dense1"):
        w, b = model.get_layer(layer).get_weights()
        model.get_layer(layer).set_weights(
            [rng.integers(-48, 48, w.shape) / 4, rng.integers(-16, 32, b.shape) / 4]
        )
    return model


@pytest.fixture(scope="module", params=sorted(PROJECTS))
def int_project(request, tmp_path_factory):
    if request.param == "weights_ap_int4":
        model = _keras_dense_with_halfway_weights()
    else:
        model = build_qkeras_dense([N_IN, 6, 3], seed=7, weight_bits=(6, 2))
    sim = write_qkeras_project(
        model, tmp_path_factory.mktemp(request.param) / "prj", precision=PROJECTS[request.param]
    )
    return request.param, sim


@pytest.mark.hls
def test_ap_int_projects_are_bit_exact_against_csim(int_project):
    which, sim = int_project
    project = load_hls_project(sim.path)
    if which.startswith("input"):
        want = FixedType.parse(PROJECTS[which]["x"]["result"])
        assert project.input_type == want and want.is_integer
    elif which == "result_ap_int10":
        assert project.layers[0].result_type == FixedType.int_type(10)
    else:
        dense0 = project.layers[0]
        assert (dense0.weight_type, dense0.bias_type) == (
            FixedType.int_type(4),
            FixedType.int_type(3, signed=False),
        )
        tokens = [
            int(t) for t in (sim.path / "firmware" / "weights" / "w2.txt").read_text().split(",")
        ]
        assert (
            max(abs(t) for t in tokens) > 7
        )  # literals beyond ap_int<4>: wrapped as the C simulation does
    x = _events(3000, seed=len(which))
    expected = sim.predict(x)
    result = emulate_project(project, x)
    differ = np.any(result.outputs != expected, axis=1)
    assert differ.sum() == 0, (
        f"{differ.sum()} of {len(x)} events differ, first {np.flatnonzero(differ)[:5]}"
    )
    # The events reach both the truncation and the wrapping of the integer type.
    assert result.overflows.total > 0
    integer_path = emulate_project(project, x, float_path=False)
    assert np.array_equal(integer_path.outputs, expected)

    if which == "weights_ap_int4":
        return

    # Read as ap_fixed<W,W> (rounding toward -inf), the same project is wrong: the events see the difference.
    def as_fixed(t: FixedType) -> FixedType:
        return FixedType(t.width, t.width, t.signed) if t.is_integer else t

    layers = tuple(dataclasses.replace(layer, input_type=as_fixed(layer.input_type), result_type=as_fixed(layer.result_type))
                   for layer in project.layers)  # fmt: skip
    wrong = dataclasses.replace(project, input_type=as_fixed(project.input_type), layers=layers)
    assert np.any(emulate_project(wrong, x).outputs != expected, axis=1).sum() > 100


@pytest.mark.hls
def test_types_wider_than_64_bits_are_bit_exact_against_csim(tmp_path):
    # A 72-bit accumulator and a 66-bit layer result: the emulator carries them in Python integers.
    model = build_qkeras_dense([N_IN, 6, 3], seed=8, weight_bits=(6, 2))
    precision = {"dense0": {"accum": "fixed<72,32,RND,SAT>", "result": "fixed<66,30,RND_CONV,WRAP>"},
                 "dense1": {"accum": "fixed<80,40>"}}  # fmt: skip
    sim = write_qkeras_project(model, tmp_path / "prj", precision=precision)
    project = load_hls_project(sim.path)
    assert project.layers[0].accum_type.width == 72 and project.layers[-1].accum_type.width == 80
    rng = np.random.default_rng(9)
    x = np.concatenate(
        [rng.normal(0, 8, (1500, N_IN)), rng.uniform(-40, 40, (500, N_IN)), np.zeros((10, N_IN))]
    )
    expected = sim.predict(x)
    result = emulate_project(project, x)
    differ = np.any(result.outputs != expected, axis=1)
    assert differ.sum() == 0, (
        f"{differ.sum()} of {len(x)} events differ, first {np.flatnonzero(differ)[:5]}"
    )
