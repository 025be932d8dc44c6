"""Layers whose types or intermediate results are wider than int64 are computed exactly, not refused.

One seeded Keras model with five inputs (``ap_fixed<72,30>``, ``ap_fixed<40,12>``,
``ap_int<45>``, a 72-bit sequence and a 70-bit image) is converted by hls4ml inside the test
(io_parallel), compiled once for the module, and run by hls4ml's own ``predict()`` on
2400 events (zeros, saturating values, grid values and exact ties of each input type,
random floats). The emulator reads the written project and must give the same bits for
every layer: dense (Latency, Resource with a saturating accumulator, a wrapping one),
normalize, every merge, activations with lookup tables and softmax (stable, latency,
legacy, argmax), conv1d/conv2d (Latency, Resource, pointwise) and pooling, with 144-bit
products, 72-bit accumulators, 80-bit products into a 58-bit accumulator (the 40 x 40 bits
case) and ``ap_int<90>``.

The C simulation returns doubles, which round results wider than 53 significant bits.
So most outputs have at most 53 bits placed where the wide intermediates' low bits decide
their rounding, and the wide results themselves come out twice: as doubles (their top
53 bits) and through a wrapping type that keeps only their low bits.
"""

from __future__ import annotations

import numpy as np
import pytest

from emulation import load_hls_project
from emulation.fixed import FixedType
from tests.test_emulation_layers import N_EVENTS, _hls_type, assert_bit_exact, events

pytestmark = pytest.mark.hls

WIDE = "fixed<72,30,RND_CONV,SAT>"
OUT = "fixed<52,12,RND_CONV,SAT>"  # 40 fractional bits: the 42 of WIDE decide the rounding
LOW = "fixed<50,8,TRN,WRAP>"  # the low 50 bits of a WIDE value
INPUTS = {
    "a": WIDE,
    "b": "fixed<40,12,RND,SAT>",
    "c": "int<45>",
    "s": WIDE,
    "im": "fixed<70,20,TRN_ZERO,SAT_SYM>",
}
W72 = {"weight": "fixed<72,30>", "bias": "fixed<72,30>"}
# hls4ml 1.3 takes table types from layer-config keys ending in _t (a "table" Precision entry is ignored)
TABLES = {
    "exp_table_t": "fixed<64,20,RND,SAT>",
    "inv_table_t": "fixed<64,24,RND,SAT>",
    "inv_inp_t": "fixed<64,20,RND,SAT>",
}

# Precision per layer (result OUT unless given), and other settings.
PRECISION = {
    **{name: {"result": t} for name, t in INPUTS.items()},
    "dense": {**W72, "accum": "fixed<72,30,RND,SAT>", "result": WIDE},
    "dense_linear": {
        "result": WIDE
    },  # hls4ml's linear activation of the Dense layer: the activations below read it
    "dense_low": {"result": LOW},
    # elu reads this: below -2**24 its C++ index wraps to a negative int and reads outside its table
    # (nnet::elu checks only the upper end; undefined, counted under elu.index by the emulator)
    **{
        name: {**W72, "accum": "fixed<72,20,RND,SAT>", "result": "fixed<72,20,RND_CONV,SAT>"}
        for name in ("dense_elu", "dense_elu_linear")
    },
    "dense_resource": {**W72, "accum": "fixed<70,24,RND_ZERO,SAT>"},
    "dense_wrap": {**W72, "accum": "fixed<66,14,RND,WRAP>", "result": "fixed<53,8,RND_INF,WRAP>"},
    "dense_40x40": {
        "weight": "fixed<40,8>",
        "bias": "fixed<40,8>",
        "accum": "fixed<58,20,RND,SAT>",
        "result": "fixed<40,16>",
    },
    "dense_40x40_resource": {
        "weight": "fixed<40,8>",
        "bias": "fixed<40,8>",
        "accum": "fixed<58,18,RND,SAT>",
        "result": "fixed<40,16>",
    },
    "dense_int90": {
        "weight": "int<45>",
        "bias": "int<45>",
        "accum": "int<90>",
        "result": "int<52>",
    },
    "dense_int90_linear": {"result": "int<52>"},
    "multiply_int90": {"result": "int<90>"},
    "multiply_int90_low": {"result": "int<50>"},
    "bn": {"scale": "fixed<72,30>", "bias": "fixed<72,30>"},
    "concatenate": {"result": WIDE},
    "dot": {"accum": "fixed<120,40,RND,SAT>"},
    "leaky": {"param": "fixed<40,2>"},
    "prelu": {"param": "fixed<40,2>"},
    "elu": {"param": "fixed<40,2>"},
    "softmax_stable": {"accum": "fixed<70,26,RND,SAT>"},
    "softmax_latency": {"accum": "fixed<70,26,RND,SAT>"},
    "conv1d": {**W72, "accum": "fixed<72,30,RND,SAT>"},
    "conv1d_resource": {**W72, "accum": "fixed<68,26,RND,SAT>"},
    "pointwise1d": {**W72, "accum": "fixed<72,30,RND,SAT>"},
    "conv2d": {"weight": "fixed<60,20>", "bias": "fixed<60,20>", "accum": "fixed<80,30,RND,SAT>"},
    "conv2d_resource": {
        "weight": "fixed<60,20>",
        "bias": "fixed<60,20>",
        "accum": "fixed<76,24,RND_CONV,SAT>",
    },
    "avgpool2d": {"accum": "fixed<74,24,RND,SAT>"},
}
SETTINGS = {
    "dense_resource": {"Strategy": "Resource", "ReuseFactor": 4},
    "dense_40x40_resource": {"Strategy": "Resource", "ReuseFactor": 2},
    "conv1d_resource": {"Strategy": "Resource", "ReuseFactor": 3},
    "conv2d_resource": {"Strategy": "Resource", "ReuseFactor": 6},
    **{f"softmax_{impl}": {"Implementation": impl} for impl in ("latency", "legacy", "argmax")},
    "softmax_stable": {"Implementation": "stable", **TABLES, "inp_norm_t": "ufixed<66,4>"},
    "softmax_latency": {"Implementation": "latency", **TABLES},
    "softmax_legacy": {"Implementation": "legacy", "table_t": "fixed<64,14,RND,SAT>"},
    "sigmoid": {"TableSize": 512, "table_t": "fixed<64,4,RND,SAT>"},
    "tanh": {"table_t": "fixed<62,2>"},
    "elu": {"table_t": "fixed<60,2,RND,SAT>"},
    "selu": {"table_t": "fixed<62,4,RND_CONV,SAT>"},
}


def wide_model(seed: int):
    from quantize.keras_compat import use_legacy_keras

    keras = use_legacy_keras()
    keras.utils.set_random_seed(seed)
    layers = keras.layers

    def init(k: int, scale: float = 2.0):
        return keras.initializers.RandomUniform(-scale, scale, seed=seed + k)

    a, b, c = keras.Input((8,), name="a"), keras.Input((8,), name="b"), keras.Input((6,), name="c")
    s, im = keras.Input((7, 3), name="s"), keras.Input((4, 4, 2), name="im")
    dense = layers.Dense(6, name="dense", kernel_initializer=init(1), bias_initializer=init(2))(a)
    outputs = [
        dense,
        layers.Activation("linear", name="dense_low")(dense),
        layers.Dense(
            6, name="dense_resource", kernel_initializer=init(3, 8), bias_initializer=init(4)
        )(a),
        layers.Dense(
            6, name="dense_wrap", kernel_initializer=init(5, 30), bias_initializer=init(6)
        )(a),
        layers.Dense(
            5, name="dense_40x40", kernel_initializer=init(7, 100), bias_initializer=init(8)
        )(b),
        layers.Dense(
            4,
            name="dense_40x40_resource",
            kernel_initializer=init(9, 100),
            bias_initializer=init(10),
        )(b),
        layers.Dense(
            3,
            name="dense_int90",
            kernel_initializer=init(11, 3e12),
            bias_initializer=init(12, 3e12),
        )(c),
        layers.Multiply(name="multiply_int90")([c, c]),
        layers.Multiply(name="multiply_int90_low")([c, c]),
        layers.BatchNormalization(
            name="bn",
            beta_initializer=init(13),
            gamma_initializer=init(14),
            moving_mean_initializer=init(15),
            moving_variance_initializer="ones",
        )(a),
        layers.Add(name="add")([a, b]),
        layers.Subtract(name="subtract")([a, b]),
        layers.Multiply(name="multiply")([a, b]),
        layers.Average(name="average")([a, b]),
        layers.Maximum(name="maximum")([a, b]),
        layers.Minimum(name="minimum")([a, b]),
        layers.Concatenate(name="concatenate")([a, b]),
        layers.Dot(axes=1, name="dot")([a, b]),
        layers.Activation("relu", name="relu")(dense),
        layers.LeakyReLU(0.3, name="leaky")(dense),
        layers.PReLU(name="prelu", alpha_initializer=init(16, 0.7))(dense),
        layers.ELU(0.7, name="elu")(
            layers.Dense(
                6, name="dense_elu", kernel_initializer=init(27), bias_initializer=init(28)
            )(a)
        ),
        layers.ThresholdedReLU(0.4, name="thresholded")(dense),
        layers.Activation("selu", name="selu")(dense),
        layers.Activation("sigmoid", name="sigmoid")(dense),
        layers.Activation("tanh", name="tanh")(dense),
        layers.Activation("hard_sigmoid", name="hard_sigmoid")(dense),
        *(
            layers.Activation("softmax", name=f"softmax_{impl}")(dense)
            for impl in ("stable", "latency", "legacy", "argmax")
        ),
        layers.Conv1D(4, 3, name="conv1d", kernel_initializer=init(17), bias_initializer=init(18))(
            s
        ),
        layers.Conv1D(
            4, 3, name="conv1d_resource", kernel_initializer=init(19), bias_initializer=init(20)
        )(s),
        layers.Conv1D(
            2, 1, name="pointwise1d", kernel_initializer=init(21), bias_initializer=init(22)
        )(s),
        layers.MaxPooling1D(3, strides=2, padding="same", name="maxpool1d")(s),
        layers.Conv2D(
            3, (3, 3), name="conv2d", kernel_initializer=init(23), bias_initializer=init(24)
        )(im),
        layers.Conv2D(
            3,
            (3, 3),
            name="conv2d_resource",
            kernel_initializer=init(25),
            bias_initializer=init(26),
        )(im),
        layers.AveragePooling2D((3, 3), strides=2, padding="same", name="avgpool2d")(im),
    ]
    return keras.Model([a, b, c, s, im], outputs)


@pytest.fixture(scope="module")
def wide_project(tmp_path_factory):
    from quantize.keras_compat import import_hls4ml

    hls4ml = import_hls4ml()
    model = wide_model(seed=21)
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    for name, layer in config["LayerName"].items():
        precision = layer.setdefault("Precision", {})
        precision.update({"result": OUT, **PRECISION.get(name, {})})
        layer.update(SETTINGS.get(name, {}))
    path = tmp_path_factory.mktemp("wide") / "prj"
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, output_dir=str(path), io_type="io_parallel", backend="Vitis"
    )
    hls_model.compile()
    return hls_model, path


def wide_events() -> list[np.ndarray]:
    xs = [events(N_EVENTS, n, _hls_type(INPUTS[name]), seed=30 + k)
          for k, (name, n) in enumerate({"a": 8, "b": 8, "c": 6, "s": 21, "im": 32}.items())]  # fmt: skip
    xs[1][: N_EVENTS // 6] = xs[0][: N_EVENTS // 6]  # a == b (zeros): ties of maximum and minimum
    grid = xs[1][2 * (N_EVENTS // 6) : 3 * (N_EVENTS // 6)]
    xs[0][2 * (N_EVENTS // 6) : 3 * (N_EVENTS // 6)] = (
        grid  # b's grid values read by a exactly: more ties
    )
    return xs


def test_wide_layers_are_read_with_their_wide_types(wide_project):
    _, path = wide_project
    graph = load_hls_project(path).graph
    nodes = {node.name: node for node in graph.nodes}
    assert (
        nodes["dense"].params["accum_type"].width == 72
        and nodes["dense"].input_types[0].width == 72
    )
    assert all(
        nodes[n].input_types[0].width == 72
        for n in ("relu", "leaky", "sigmoid", "softmax_stable", "dense_low")
    )
    assert (
        nodes["sigmoid"].params["table_type"].width == 64
        and nodes["elu"].params["table_type"].width == 60
    )
    assert nodes["softmax_stable"].params["index_type"] == FixedType(66, 4, False)
    assert (
        nodes["softmax_latency"].params["exp_type"].width
        == nodes["softmax_latency"].params["inv_type"].width
        == 64
    )
    assert (
        nodes["dense_resource"].params["strategy"] == "resource"
        and not nodes["dense_resource"].params["order_free"]
    )
    assert nodes["multiply_int90"].result_type == FixedType.int_type(90)
    assert nodes["pointwise1d"].kind == "conv"
    assert {"dense", "normalize", "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot1d",
            "relu", "leaky_relu", "prelu", "elu", "thresholded_relu", "selu", "lut", "hard_sigmoid", "softmax", "conv",
            "pooling"} <= {node.kind for node in graph.nodes}  # fmt: skip


def test_wide_layers_are_bit_exact_against_csim(wide_project):
    hls_model, path = wide_project
    xs = wide_events()
    overflows = assert_bit_exact(hls_model, path, xs)
    # the inputs saturate, and so do the saturating accumulators on some events
    assert overflows["input.a"] > 0 and overflows["input.b"] > 0
    # the lookup-table indices of the 72-bit inputs wrap C's 32-bit int (bit-exact above all the same)
    assert (
        overflows["sigmoid.index"] > 0
        and overflows["selu.index"] > 0
        and overflows["elu.index"] == 0
    )


TO_DOUBLE_CPP = r"""
#include "ap_int.h"
#include "ap_fixed.h"
#include <cstdio>
#include <cstdlib>
template <class T, int W> void show(const char *bits) {  // the raw word, then double(x)
    ap_uint<W> word = 0;
    for (const char *c = bits; *c; c++) { word <<= 1; word |= ap_uint<W>(*c == '1'); }
    T x; x.range(W - 1, 0) = word; printf("%a\n", double(x)); }
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i += 2) {
        switch (atoi(argv[i])) {
            case 0: show<ap_int<90>, 90>(argv[i + 1]); break;
            case 1: show<ap_uint<70>, 70>(argv[i + 1]); break;
            case 2: show<ap_int<64>, 64>(argv[i + 1]); break;
            case 3: show<ap_fixed<90, 80>, 90>(argv[i + 1]); break;
        }
    }
}
"""


def test_outputs_convert_to_double_as_ap_types_does(tmp_path):
    """``to_float`` equals ap_types' ``double(x)`` (which the C simulation's outputs hold), g++-compiled:
    exact-then-rounded, except ap_int/ap_uint wider than 64 bits, read through their low 64-bit word."""
    import subprocess
    from pathlib import Path

    import hls4ml

    from emulation.fixed import to_float

    types = [
        FixedType.int_type(90),
        FixedType.int_type(70, signed=False),
        FixedType.int_type(64),
        FixedType(90, 80),
    ]
    rng = np.random.default_rng(0)
    cases = []
    for k, t in enumerate(types):
        for _ in range(40):
            raw = int(rng.integers(0, 2**62)) << int(rng.integers(0, t.width - 61)) | int(
                rng.integers(0, 2**40)
            )
            raw &= (1 << t.width) - 1
            if rng.random() < 0.3:
                raw |= 1 << 63  # the low word's top bit
            cases.append((k, raw & ((1 << t.width) - 1)))
    templates = Path(hls4ml.__file__).parent / "templates" / "vivado"
    (tmp_path / "to_double.cpp").write_text(TO_DOUBLE_CPP)
    exe = tmp_path / "to_double"
    subprocess.run(["g++", "-O1", "-std=c++14", f"-I{templates / 'ap_types'}", str(tmp_path / "to_double.cpp"), "-o", str(exe)],
                   check=True)  # fmt: skip
    args = [a for k, raw in cases for a in (str(k), format(raw, f"0{types[k].width}b"))]
    lines = subprocess.run(
        [str(exe), *args], check=True, capture_output=True, text=True
    ).stdout.split()
    for (k, raw), line in zip(cases, lines, strict=True):
        t = types[k]
        m = raw - (1 << t.width) if t.signed and raw >> (t.width - 1) else raw
        assert to_float(np.array([m], dtype=object), t)[0] == float.fromhex(line), (str(t), raw)
