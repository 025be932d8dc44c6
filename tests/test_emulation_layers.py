"""Every layer kind of emulation.layers is bit-exact against hls4ml's own C simulation.

Small seeded Keras models are converted with hls4ml inside the test (io_parallel,
granularity='name'), compiled and run with ``predict()`` on >= 2000 events (zeros,
saturating values, exact ties and grid values of the input type, random floats); the
emulator reads the written project from disk and must give the same bits. Each model
exposes every layer under test as its own output, so a failure names the layer.

The matrix runs over layer group x type family (ap_fixed with several quantisation and
overflow modes, ap_ufixed, ap_int, ap_uint) x strategy; one representative per group
runs by default, the rest is marked ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from emulation import load_hls_project
from emulation.fixed import FixedType
from emulation.layers.dense import resource_schedule

pytestmark = pytest.mark.hls

N_EVENTS = 2400

# Result types per family (hls4ml precision strings); the input layer gets the same.
FAMILIES = {
    "fixed_rnd_conv_sat": "fixed<14,5,RND_CONV,SAT>",
    "fixed_trn_wrap": "fixed<12,4>",
    "fixed_trn_zero_sat_sym": "fixed<12,4,TRN_ZERO,SAT_SYM>",
    "fixed_rnd_zero_wrap": "fixed<11,4,RND_ZERO,WRAP>",
    "fixed_rnd_inf_sat_zero": "fixed<13,5,RND_INF,SAT_ZERO>",
    "fixed_rnd_min_inf_sat": "fixed<12,5,RND_MIN_INF,SAT>",
    "ufixed_rnd_sat": "ufixed<10,3,RND,SAT>",
    "int": "int<10>",
    "uint": "uint<8>",
}
FAST = {
    "activations": "fixed_rnd_conv_sat",
    "merges": "fixed_trn_wrap",
    "dense_resource": "fixed_rnd_conv_sat",
    "conv": "fixed_rnd_min_inf_sat",
}


# hls4ml shrinks a softmax table to the 2**8 values of an 8-bit input (uint<8>) and warns;
# the emulator reads the size the project states.
SHRUNK_SOFTMAX_TABLE = pytest.mark.filterwarnings(
    "ignore:Softmax layer .* table size is too large:UserWarning"
)
# hls4ml's pointwise pass re-sets a Resource layer's strategy in lower case, and warns about its own change.
POINTWISE_STRATEGY_CASE = pytest.mark.filterwarnings(
    "ignore:Overriding attribute 'strategy' of layer:UserWarning"
)


def _matrix(group: str) -> list:
    return [
        pytest.param(family, marks=[] if FAST[group] == family else [pytest.mark.slow], id=family)
        for family in FAMILIES
    ]


def _hls_type(text: str) -> FixedType:
    from quantize.spec import FixedType as SpecType

    kind, args = text.split("<")
    parts = [p.strip() for p in args.rstrip(">").split(",")]
    if kind in ("int", "uint"):
        return SpecType(int(parts[0]), int(parts[0]), kind == "int")
    modes = ["AP_" + p for p in parts[2:]]
    return SpecType(int(parts[0]), int(parts[1]), kind == "fixed", *modes)


def events(n: int, n_in: int, t: FixedType, seed: int) -> np.ndarray:
    """Zeros, saturating/wrapping values, grid values and exact ties of t, random floats."""
    rng = np.random.default_rng(seed)
    k = n // 6
    lsb = t.lsb
    # mantissas of at most 50 bits, so that a grid value and its tie (+ lsb/2) are exact doubles
    grid = rng.integers(max(t.min_int, -(2**50)), min(t.max_int, 2**50) + 1, (k, n_in)) * lsb
    return np.concatenate(
        [
            np.zeros((k, n_in)),
            rng.choice([-1.0, 1.0], (k, n_in))
            * rng.uniform(t.max_value, 50 * t.max_value + 100, (k, n_in)),
            grid,
            grid + lsb / 2,
            rng.normal(0, max(t.max_value / 3, 1.0), (k, n_in)),
            rng.normal(0, 1.0, (n - 5 * k, n_in)),
        ]
    )


def convert(
    model, path, result: str, layer_config: dict | None = None, backend: str = "Vitis", edit=None
):
    """hls4ml model of a Keras model, every result (and the input) typed ``result``, compiled.

    ``edit(firmware_dir)`` changes the written project before it is compiled (a hand-edited project).
    """
    from quantize.keras_compat import import_hls4ml

    hls4ml = import_hls4ml()
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=backend)
    for name, layer in config["LayerName"].items():
        precision = layer.setdefault("Precision", {})
        if isinstance(precision, dict):
            precision["result"] = result
        layer.update((layer_config or {}).get(name, {}))
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, output_dir=str(path), io_type="io_parallel", backend=backend
    )
    hls_model.write()
    if edit is not None:
        edit(path / "firmware")
    hls_model._compile()  # compile() would write the project again, undoing the edit
    return hls_model


def assert_bit_exact(hls_model, path, inputs: list[np.ndarray]) -> dict[str, int]:
    """Compare every output of the C simulation with the emulator; returns overflow counts."""
    from emulation.fixed import OverflowCounter
    from emulation.float_path import FloatGraph

    expected = hls_model.predict(inputs if len(inputs) > 1 else inputs[0])
    if not isinstance(expected, list):
        expected = [expected]
    project = load_hls_project(path)
    graph = project.graph
    assert graph is not None
    counter = OverflowCounter()
    got = graph.emulate(inputs, counter)
    # the fast path (float32/float64 where proven exact) gives the same bits and overflow counts
    fast_counter = OverflowCounter()
    fast = FloatGraph(graph).emulate(inputs, fast_counter)
    assert all(np.array_equal(a, b) for a, b in zip(got, fast, strict=True)), (
        "float path differs from the integer path"
    )
    assert fast_counter.as_dict() == counter.as_dict()
    writers = {node.output: node.name for node in graph.nodes}
    problems = []
    for port, want, have in zip(graph.outputs, expected, got, strict=True):
        want = np.asarray(want, dtype=np.float64).reshape(len(have), -1)
        bad = np.any(want != have, axis=1)
        if bad.any():
            i = np.flatnonzero(bad)[0]
            problems.append(
                f"layer {writers[port.name]} ({port.name}): {bad.sum()} of {len(bad)} events differ; "
                f"event {i}: csim {want[i][:6]} emulator {have[i][:6]}"
            )
    assert not problems, "\n".join(problems)
    return {k: v["overflows"] for k, v in counter.as_dict().items()}


# ----------------------------------------------------------------------------- activations


def activation_model(seed: int):
    from quantize.keras_compat import use_legacy_keras

    keras = use_legacy_keras()
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    x = keras.Input((8,), name="x")
    d = layers.Dense(
        8, name="d0", kernel_initializer=keras.initializers.RandomUniform(-2, 2, seed=seed)
    )(x)
    outputs = [
        layers.BatchNormalization(name="bn", beta_initializer="random_uniform", gamma_initializer="random_uniform",
                                  moving_mean_initializer="random_uniform", moving_variance_initializer="ones")(x),
        layers.LeakyReLU(0.3, name="leaky")(d),
        layers.PReLU(name="prelu", alpha_initializer=keras.initializers.RandomUniform(-0.5, 0.8, seed=seed))(d),
        layers.ELU(0.7, name="elu")(d),
        layers.ThresholdedReLU(0.4, name="thresholded")(d),
        layers.Activation("selu", name="selu")(d),
        layers.Activation("sigmoid", name="sigmoid")(d),
        layers.Activation("tanh", name="tanh")(d),
        layers.Activation("softplus", name="softplus")(d),
        layers.Activation("softsign", name="softsign")(d),
        layers.Activation("hard_sigmoid", name="hard_sigmoid")(d),
        layers.Activation("hard_sigmoid", name="hard_tanh")(d),  # made nnet::hard_tanh by _hand_edited
        layers.Activation("relu", name="relu")(d),
        layers.Activation("relu", name="relu_max")(d),  # made nnet::relu_max<..., 3, ...> by _hand_edited
        layers.Activation("linear", name="linear")(d),
    ] + [layers.Activation("softmax", name=f"softmax_{impl}")(d) for impl in ("latency", "stable", "legacy", "argmax")]  # fmt: skip
    return keras.Model(x, outputs)


# hls4ml 1.3 takes table types from layer-config keys ending in _t ("table" in Precision is ignored)
ACTIVATION_CONFIG = {
    **{
        f"softmax_{impl}": {"Implementation": impl}
        for impl in ("latency", "stable", "legacy", "argmax")
    },
    "sigmoid": {"TableSize": 512, "table_t": "fixed<12,2,RND_CONV,SAT>"},
    "tanh": {"TableSize": 2048, "table_t": "fixed<16,2,RND,SAT>"},
    "elu": {"table_t": "fixed<10,1,RND,SAT_SYM>"},
    "softmax_latency": {
        "Implementation": "latency",
        "exp_table_t": "fixed<16,6,RND_CONV,SAT>",
        "Precision": {"accum": "fixed<14,6,RND,SAT>"},
    },
    "softmax_stable": {
        "Implementation": "stable",
        "TableSize": 256,
        "inv_table_t": "fixed<14,4,TRN,SAT>",
    },
    "softmax_legacy": {"Implementation": "legacy", "table_t": "fixed<14,7,RND,SAT>"},
}


def _hand_edited(firmware) -> None:
    """hls4ml 1.3 writes neither nnet::hard_tanh nor nnet::relu_max from Keras; a hand-edited project may."""
    import re

    top = firmware / "myproject.cpp"
    text = re.sub(
        r"nnet::hard_sigmoid<([^;]*;[ \t]*// hard_tanh)", r"nnet::hard_tanh<\1", top.read_text()
    )
    text = re.sub(
        r"nnet::relu<([\w:]+), ([\w:]+), ([\w:]+)>([^;]*;[ \t]*// relu_max)",
        r"nnet::relu_max<\1, \2, 3, \3>\4",
        text,
    )
    top.write_text(text)


@SHRUNK_SOFTMAX_TABLE
@pytest.mark.parametrize("family", _matrix("activations"))
def test_activations_normalize_and_softmax_are_bit_exact(family, tmp_path):
    result = FAMILIES[family]
    hls_model = convert(
        activation_model(seed=3), tmp_path / "prj", result, ACTIVATION_CONFIG, edit=_hand_edited
    )
    project = load_hls_project(tmp_path / "prj")
    nodes = {node.name: node for node in project.graph.nodes}
    assert (
        str(nodes["tanh"].params["table_type"]) == "ap_fixed<16,2,AP_RND,AP_SAT>"
    )  # the configured table types are used
    assert str(nodes["softmax_stable"].params["inv_type"]) == "ap_fixed<14,4,AP_TRN,AP_SAT>"
    kinds = {node.kind for node in project.graph.nodes}
    assert {
        "normalize",
        "leaky_relu",
        "prelu",
        "elu",
        "selu",
        "lut",
        "hard_sigmoid",
        "hard_tanh",
        "relu_max",
        "softmax",
    } <= kinds
    x = events(N_EVENTS, 8, _hls_type(result), seed=4)
    assert_bit_exact(hls_model, tmp_path / "prj", [x])
    # what `l1ad emulate` runs: the outputs side by side, in chunks
    from emulation import emulate_project

    together = emulate_project(project, x, chunk_size=1000)
    assert np.array_equal(together.outputs, np.concatenate(project.graph.emulate([x]), axis=1))


# ----------------------------------------------------------------------------- merges, non-sequential graphs


def merge_model(seed: int):
    from quantize.keras_compat import use_legacy_keras

    keras = use_legacy_keras()
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    a = keras.Input((6,), name="a")
    b = keras.Input((6,), name="b")
    d = layers.Dense(
        6, name="skip_dense", kernel_initializer=keras.initializers.RandomUniform(-1, 1, seed=seed)
    )(a)
    a2, b2 = layers.Reshape((3, 2), name="ra")(a), layers.Reshape((3, 2), name="rb")(b)
    outputs = [
        layers.Add(name="add")([a, b]),
        layers.Subtract(name="subtract")([a, b]),
        layers.Multiply(name="multiply")([a, b]),
        layers.Average(name="average")([a, b]),
        layers.Maximum(name="maximum")([a, b]),
        layers.Minimum(name="minimum")([a, b]),
        layers.Concatenate(name="concatenate")([a, b]),
        layers.Dot(axes=1, name="dot")([a, b]),
        layers.Add(name="skip_add")([d, a]),  # a layer reading the graph input again
        layers.Concatenate(axis=1, name="concatenate2d_rows")([a2, b2]),
        layers.Concatenate(axis=-1, name="concatenate2d_cols")([a2, b2]),
    ]
    return keras.Model([a, b], outputs)


@pytest.mark.parametrize("family", _matrix("merges"))
def test_merges_and_skip_connections_are_bit_exact(family, tmp_path):
    result = FAMILIES[family]
    hls_model = convert(
        merge_model(seed=5), tmp_path / "prj", result, {"dot": {"Precision": {"accum": result}}}
    )
    t = _hls_type(result)
    xa, xb = events(N_EVENTS, 6, t, seed=6), events(N_EVENTS, 6, t, seed=7)
    xb[: N_EVENTS // 6] = xa[: N_EVENTS // 6]  # equal operands: ties for maximum/minimum
    assert_bit_exact(hls_model, tmp_path / "prj", [xa, xb])
    # `l1ad emulate --compare-csim`: inputs and outputs side by side, in the top function's order
    from emulation import emulate_project
    from firmware.csim import CSimulation

    both = np.concatenate([xa, xb], axis=1)[:500]
    sim = CSimulation(tmp_path / "prj")
    assert np.array_equal(
        sim.predict(both), emulate_project(load_hls_project(tmp_path / "prj"), both).outputs
    )


# ----------------------------------------------------------------------------- dense Resource


def dense_model(seed: int, layers: dict[str, tuple[int, int]]):
    from quantize.keras_compat import use_legacy_keras

    keras = use_legacy_keras()
    keras.utils.set_random_seed(seed)
    x = keras.Input((12,), name="x")
    outs = [
        keras.layers.Dense(n_out, name=name, kernel_initializer=keras.initializers.RandomUniform(-2, 2, seed=seed + k),
                           bias_initializer=keras.initializers.RandomUniform(-1, 1, seed=seed + 50 + k))(x)
        for k, (name, (n_out, _)) in enumerate(layers.items())
    ]  # fmt: skip
    return keras.Model(x, outs)


# (n_out, reuse factor) with n_in = 12: RF <= n_in, a multiple of n_in above it, and above n_in
# but not a multiple (nnet_dense_resource.h's three loops)
RESOURCE = {"rf1": (8, 1), "rf3": (8, 3), "rf12": (8, 12), "rf24": (8, 24), "rf20": (10, 24)}


def _rf20_by_hand(firmware) -> None:
    """hls4ml 1.3 only writes reuse factors that divide n_in or are multiples of it; an earlier or
    hand-edited project may call ``dense_resource`` with any other (here 20 > n_in = 12)."""
    import re

    top = firmware / "myproject.cpp"
    top.write_text(
        re.sub(r"nnet::dense<([^;]*;[ \t]*// rf20)", r"nnet::dense_resource<\1", top.read_text())
    )
    params = firmware / "parameters.h"
    text = params.read_text()
    start = text.index("// rf20")
    end = text.index("};", start)
    params.write_text(
        text[:start]
        + text[start:end].replace("reuse_factor = 24", "reuse_factor = 20")
        + text[end:]
    )


@pytest.mark.parametrize("family", _matrix("dense_resource"))
def test_dense_resource_any_reuse_factor_is_bit_exact(family, tmp_path):
    result = FAMILIES[family]
    # saturating, rounding accumulators make the order of the additions visible
    accum = "fixed<13,5,RND,SAT>" if "fixed" in family else result
    layer_config = {
        name: {
            "Strategy": "Resource",
            "ReuseFactor": rf,
            "Precision": {"accum": accum, "weight": "fixed<8,3>", "bias": "fixed<8,3>"},
        }
        for name, (_, rf) in RESOURCE.items()
    }
    hls_model = convert(
        dense_model(seed=8, layers=RESOURCE),
        tmp_path / "prj",
        result,
        layer_config,
        edit=_rf20_by_hand,
    )
    project = load_hls_project(tmp_path / "prj")
    dense = {n.name: n.params for n in project.graph.nodes if n.kind == "dense"}
    assert {name: (p["strategy"], p["reuse_factor"]) for name, p in dense.items()} == {
        name: ("resource", 20 if name == "rf20" else rf) for name, (_, rf) in RESOURCE.items()
    }
    x = events(N_EVENTS, 12, _hls_type(result), seed=9)
    assert_bit_exact(hls_model, tmp_path / "prj", [x])


def test_resource_schedule_visits_every_weight_once():
    for n_in, n_out, rf in [
        (12, 8, 1),
        (12, 8, 3),
        (12, 8, 12),
        (12, 8, 24),
        (12, 8, 32),
        (7, 5, 7),
        (16, 4, 8),
    ]:
        schedule = resource_schedule(n_in, n_out, rf)
        seen = sorted(w for ops in schedule.rounds for _, w, _ in ops)
        assert seen == list(range(n_in * n_out)), (n_in, n_out, rf)


# ----------------------------------------------------------------------------- conv, pooling, padding, transpose


def conv_model(seed: int):
    from quantize.keras_compat import use_legacy_keras

    keras = use_legacy_keras()
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    init = keras.initializers.RandomUniform(-1, 1, seed=seed)
    s = keras.Input((16, 3), name="s")  # a sequence, channels last
    im = keras.Input((6, 6, 2), name="im")  # an image, channels last
    outputs = [
        layers.Conv1D(
            4, 3, name="conv1d", kernel_initializer=init, bias_initializer="random_uniform"
        )(s),
        layers.Conv1D(3, 3, strides=2, padding="same", name="conv1d_same", kernel_initializer=init)(
            s
        ),
        layers.Conv1D(
            4, 3, name="conv1d_resource", kernel_initializer=init, bias_initializer="random_uniform"
        )(s),
        layers.MaxPooling1D(2, name="maxpool1d")(s),
        layers.AveragePooling1D(3, strides=2, padding="same", name="avgpool1d")(s),
        layers.GlobalAveragePooling1D(name="global_avg1d")(s),
        layers.ZeroPadding1D((1, 2), name="zeropad1d")(s),
        layers.Conv2D(
            3, (3, 3), name="conv2d", kernel_initializer=init, bias_initializer="random_uniform"
        )(im),
        layers.Conv2D(
            2, (3, 3), strides=2, padding="same", name="conv2d_same", kernel_initializer=init
        )(im),
        layers.Conv2D(
            3,
            (3, 3),
            name="conv2d_resource",
            kernel_initializer=init,
            bias_initializer="random_uniform",
        )(im),
        layers.MaxPooling2D((2, 2), name="maxpool2d")(im),
        layers.AveragePooling2D((2, 3), strides=(2, 2), padding="same", name="avgpool2d")(im),
        layers.GlobalMaxPooling2D(name="global_max2d")(im),
        layers.ZeroPadding2D(((1, 0), (2, 1)), name="zeropad2d")(im),
        layers.Permute((2, 1, 3), name="transpose")(im),
    ]
    pooled = layers.MaxPooling2D((2, 2), name="maxpool2d_b")(im)
    strided = layers.Conv2D(
        2, (3, 3), strides=2, padding="same", name="conv2d_b", kernel_initializer=init
    )(im)
    outputs += [
        layers.Concatenate(axis=-1, name="concatenate3d")([pooled, strided]),
        layers.Concatenate(axis=1, name="concatenate3d_rows")([pooled, strided]),
        layers.Activation("softmax", name="softmax_channels")(
            layers.Conv1D(4, 3, name="conv1d_b", kernel_initializer=init)(s)
        ),
        # pointwise (kernel 1): hls4ml writes nnet::pointwise_conv_{1,2}d_cl
        layers.Conv1D(
            4, 1, name="pointwise1d", kernel_initializer=init, bias_initializer="random_uniform"
        )(s),
        layers.Conv1D(
            3,
            1,
            strides=2,
            name="pointwise1d_batched",
            kernel_initializer=init,
            bias_initializer="random_uniform",
        )(s),
        layers.Conv1D(
            4,
            1,
            name="pointwise1d_resource",
            kernel_initializer=init,
            bias_initializer="random_uniform",
        )(s),
        layers.Conv2D(
            3, 1, name="pointwise2d", kernel_initializer=init, bias_initializer="random_uniform"
        )(im),
        layers.Conv2D(
            2,
            1,
            strides=2,
            name="pointwise2d_resource",
            kernel_initializer=init,
            bias_initializer="random_uniform",
        )(im),
    ]
    # softmax over a (6, 8) tensor: over all 48 values as hls4ml 1.3 converts Keras 2 models (flattened),
    # and along one axis, nnet::softmax_multidim, with the slicing hls4ml's Keras 3 front end gives
    # (converters/keras_v3/core.py: n_outer, n_inner; set through the layer config here, see CONV_CONFIG)
    rows = layers.Reshape((6, 8), name="rows")(s)
    outputs += [
        layers.Activation("softmax", name=name)(rows)
        for name in ("softmax_flat", "softmax_last_axis", "softmax_first_axis")
    ]
    # Flatten writes no call in io_parallel: the dense layer reads the image array as it is
    outputs.append(
        layers.Dense(3, name="dense_flattened", kernel_initializer=init)(
            layers.Flatten(name="flatten")(im)
        )
    )
    return keras.Model([s, im], outputs)


CONV_CONFIG = {
    "conv1d_resource": {
        "Strategy": "Resource",
        "ReuseFactor": 3,
        "Precision": {"accum": "fixed<12,4,RND,SAT>"},
    },
    "conv2d_resource": {
        "Strategy": "Resource",
        "ReuseFactor": 6,
        "Precision": {"accum": "fixed<12,4,RND,SAT>"},
    },
    "conv1d": {"Precision": {"accum": "fixed<12,4,RND,SAT>"}},
    "avgpool2d": {"Precision": {"accum": "fixed<12,4,RND,SAT>"}},
    "pointwise1d": {"Precision": {"accum": "fixed<12,4,RND,SAT>"}},
    "pointwise1d_batched": {
        "ParallelizationFactor": 8
    },  # one partition: nnet::BatchedDenseForConv1D
    "pointwise1d_resource": {
        "Strategy": "Resource",
        "ReuseFactor": 3,
        "Precision": {"accum": "fixed<12,4,RND,SAT>"},
    },
    "pointwise2d_resource": {
        "Strategy": "Resource",
        "ReuseFactor": 2,
        "Precision": {"accum": "fixed<12,4,RND,SAT>"},
    },
    "softmax_last_axis": {"n_outer": 6, "n_inner": 1},  # Softmax(axis=-1) on (6, 8)
    "softmax_first_axis": {
        "n_outer": 1,
        "n_inner": 8,
        "Implementation": "latency",
    },  # Softmax(axis=1) on (6, 8)
}


@SHRUNK_SOFTMAX_TABLE
@POINTWISE_STRATEGY_CASE
@pytest.mark.parametrize("family", _matrix("conv"))
def test_conv_pooling_padding_transpose_are_bit_exact(family, tmp_path):
    result = FAMILIES[family]
    hls_model = convert(conv_model(seed=11), tmp_path / "prj", result, CONV_CONFIG)
    project = load_hls_project(tmp_path / "prj")
    strategies = {n.name: n.params["strategy"] for n in project.graph.nodes if n.kind == "conv"}
    assert strategies["conv1d_resource"] == strategies["conv2d_resource"] == "resource"
    assert strategies["pointwise1d_resource"] == strategies["pointwise2d_resource"] == "resource"
    assert strategies["conv2d"] == strategies["pointwise1d_batched"] == "latency"
    top = (tmp_path / "prj" / "firmware" / "myproject.cpp").read_text()
    assert (
        "nnet::pointwise_conv_1d_cl" in top
        and "nnet::pointwise_conv_2d_cl" in top
        and "nnet::softmax_multidim" in top
    )
    assert "BatchedDenseForConv1D" in (tmp_path / "prj" / "firmware" / "parameters.h").read_text()
    softmax = {
        n.name: (n.params["n_outer"], n.params["n_slice"], n.params["n_inner"])
        for n in project.graph.nodes
        if n.kind == "softmax"
    }
    assert softmax["softmax_flat"] == (1, 48, 1) and softmax["softmax_last_axis"] == (6, 8, 1)
    assert softmax["softmax_first_axis"] == (1, 6, 8)
    t = _hls_type(result)
    assert_bit_exact(
        hls_model,
        tmp_path / "prj",
        [events(N_EVENTS, 48, t, seed=12), events(N_EVENTS, 72, t, seed=13)],
    )


# ----------------------------------------------------------------------------- lookup tables vs g++

TABLES_CPP = r"""
#include "ap_fixed.h"
#include "nnet_utils/nnet_activation.h"
#include <cstdio>
struct C {
    typedef double table_t; typedef double exp_table_t; typedef double inv_table_t;
    static const unsigned table_size = 1024, exp_table_size = 1024, inv_table_size = 512;
    static constexpr float exp_scale = 0.7;
};
static double t[1024];
#define DUMP(name, n) for (int i = 0; i < n; i++) printf(name " %d %a\n", i, t[i]);
int main() {
    nnet::init_tanh_table<C, 1024>(t); DUMP("tanh", 1024)
    nnet::init_sigmoid_table<C, 1024>(t); DUMP("sigmoid", 1024)
    nnet::init_softplus_table<C, 1024>(t); DUMP("softplus", 1024)
    nnet::init_softsign_table<C, 1024>(t); DUMP("softsign", 1024)
    nnet::init_elu_table<C, 1024>(t); DUMP("elu", 1024)
    nnet::init_selu_table<C, 1024>(t); DUMP("selu", 1024)
    nnet::init_exp_table_legacy<C, 1024>(t); DUMP("exp_legacy", 1024)
    nnet::init_invert_table_legacy<C, 1024>(t); DUMP("invert_legacy", 1024)
    nnet::init_exp_table<ap_fixed<16, 6>, C>(t); DUMP("exp_latency", 1024)
    nnet::init_exp_table<ap_ufixed<35, 15>, C>(t, true); DUMP("exp_stable", 1024)
    nnet::init_invert_table<ap_fixed<18, 8, AP_RND, AP_SAT>, C>(t); DUMP("invert", 512)
}
"""


def test_lookup_table_values_equal_nnet_activation_compiled_by_gxx(tmp_path, monkeypatch):
    """The float values the tables are filled with (table_t = double), to the last bit."""
    import subprocess
    from pathlib import Path

    import hls4ml

    from emulation.layers import tables

    templates = Path(hls4ml.__file__).parent / "templates" / "vivado"
    (tmp_path / "tables.cpp").write_text(TABLES_CPP)
    exe = tmp_path / "tables"
    subprocess.run(["g++", "-O3", "-std=c++14", f"-I{templates}", f"-I{templates / 'ap_types'}", str(tmp_path / "tables.cpp"),
                    "-o", str(exe)], check=True)  # fmt: skip
    expected: dict[str, list[float]] = {}
    for line in subprocess.run(
        [str(exe)], check=True, capture_output=True, text=True
    ).stdout.splitlines():
        name, _, value = line.split()
        expected.setdefault(name, []).append(float.fromhex(value))
    monkeypatch.setattr(
        tables, "to_table_type", lambda values, t: np.asarray(values, dtype=np.float64)
    )
    ours = {
        "tanh": tables.tanh_table(1024, None), "sigmoid": tables.sigmoid_table(1024, None),
        "softplus": tables.softplus_table(1024, None), "softsign": tables.softsign_table(1024, None),
        "elu": tables.elu_table(1024, None), "selu": tables.selu_table(1024, None),
        "exp_legacy": tables.exp_table_legacy(1024, None), "invert_legacy": tables.invert_table_legacy(1024, None),
        "exp_latency": tables.exp_table(1024, FixedType(16, 6), 0.7, None, negative=False),
        "exp_stable": tables.exp_table(1024, FixedType(35, 15, False), 0.7, None, negative=True),
        "invert": tables.invert_table(512, FixedType(18, 8, True, "AP_RND", "AP_SAT"), None),
    }  # fmt: skip
    for name, values in ours.items():
        differ = np.flatnonzero(np.asarray(expected[name]) != values)
        assert differ.size == 0, f"{name}: {differ.size} entries differ, first {differ[:5]}"


# ----------------------------------------------------------------------------- reader errors (no compiler needed)

HAND_DEFINES = """#ifndef DEFINES_H_
#define DEFINES_H_
#include "ap_fixed.h"
#define N_IN 4
typedef ap_fixed<40,20> input_t;
typedef ap_fixed<30,10> bn_scale_t;
typedef ap_fixed<8,3> bn_bias_t;
typedef ap_fixed<16,6> result_t;
#endif
"""
HAND_PARAMETERS = """struct config2 : nnet::batchnorm_config {
    static const unsigned n_in = N_IN;
    static const unsigned n_filt = -1;
    typedef bn_bias_t bias_t;
    typedef bn_scale_t scale_t;
};
"""
HAND_TOP = """#include "myproject.h"
void myproject(input_t x[N_IN], result_t y[N_IN]) {
    nnet::normalize<input_t, result_t, config2>(x, y, s2, b2); // bn
}
"""


NARROW_DEFINES = HAND_DEFINES.replace("ap_fixed<40,20> input_t", "ap_fixed<12,4> input_t")


S2 = "bn_scale_t s2[N_IN] = {0.5, 1.25, -2, 3};\n"


def _hand_project(root, top: str = HAND_TOP, defines: str = HAND_DEFINES, s2: str = S2, parameters: str = HAND_PARAMETERS,
                  s2_txt: str | None = None):  # fmt: skip
    firmware = root / "firmware"
    (firmware / "weights").mkdir(parents=True)
    (firmware / "defines.h").write_text(defines)
    (firmware / "parameters.h").write_text(parameters)
    (firmware / "myproject.cpp").write_text(top)
    # weights as hls4ml 0.x wrote them: initialisers of the headers the top function includes
    (firmware / "weights" / "s2.h").write_text(s2)
    (firmware / "weights" / "b2.h").write_text("bn_bias_t b2[N_IN] = {0.125, 0, -1, 2.5};\n")
    if s2_txt is not None:
        (firmware / "weights" / "s2.txt").write_text(s2_txt)
    return root


# s2 read from weights/s2.txt, as hls4ml 1.x projects load their weights for the C simulation
TXT_TOP = HAND_TOP.replace(
    "{\n", '{\n    nnet::load_weights_from_txt<bn_scale_t, N_IN>(s2, "s2.txt");\n', 1
)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"top": HAND_TOP.replace("nnet::normalize", "nnet::layernormalize")},
         r"myproject\.cpp:3: layer 'bn' \(nnet::layernormalize\) is not supported by the emulator \(supported: .*normalize"),
        ({"top": HAND_TOP.replace("(x, y, s2, b2)", "(z, y, s2, b2)")}, r"myproject\.cpp:3: layer 'bn' reads 'z', which no earlier layer"),
        ({"top": HAND_TOP.replace("x[N_IN]", "x[N_INPUTS]")},
         r"myproject\.cpp:2: size 'N_INPUTS' uses 'N_INPUTS', which no #define or constant of the project defines"),
        ({"top": HAND_TOP.replace("(x, y, s2, b2)", "(x, y, s2)")},
         r"myproject\.cpp:3: layer 'bn' \(nnet::normalize\) has 3 template arguments and 3 arguments; nnet::normalize takes 3 and 4"),
        ({"top": HAND_TOP.replace("normalize<input_t, result_t, config2>(x, y, s2, b2)", "relu<input_t, result_t, config2>(x)")},
         r"myproject\.cpp:3: layer 'bn' \(nnet::relu\) has 3 template arguments and 1 arguments; nnet::relu takes 3 and 2"),
        ({"defines": NARROW_DEFINES + "#ifdef EXTRA\n#define N_EXTRA 2\n"}, r"defines\.h:10: #ifdef without #endif"),
        ({"defines": NARROW_DEFINES.replace("#define N_IN 4", "#if N_IN @ 2\n#endif\n#define N_IN 4")},
         r"defines\.h:4: cannot evaluate the preprocessor condition '#if N_IN @ 2'"),
        ({"defines": NARROW_DEFINES.replace("typedef ap_fixed<16,6> result_t;\n", "")},
         r"myproject\.cpp:2: type 'result_t' .* no typedef of the project defines it"),
        ({"defines": NARROW_DEFINES.replace("ap_fixed<16,6> result_t", "ap_fixed<0,6> result_t")},
         r"defines\.h:8: type 'ap_fixed<0,6>': .*width 0 must be an integer in 1\.\.1024"),
        ({"parameters": HAND_PARAMETERS.replace("static const unsigned n_in = N_IN;\n", "")},
         r"myproject\.cpp:3: layer 'bn': config config2 has no constant 'n_in'"),
        ({"s2": S2.replace("1.25, ", "")}, r"s2\.h:1: 3 values for weights 's2', the layer needs 4"),
        ({"s2": S2.replace("1.25", "1.2.5")}, r"s2\.h:1: cannot read the weight value '1\.2\.5'"),
        ({"s2": S2.replace("bn_scale_t", "ap_fixed<8,2>")}, r"s2\.h:1: weights 's2' are declared ap_fixed<8,2>, the layer's config uses"),
        ({"top": TXT_TOP, "s2": "bn_scale_t s2[N_IN];\n", "s2_txt": "0.5, 1.25, x, 3\n"}, r"s2\.txt:1: cannot read the weight value 'x'"),
        ({"top": TXT_TOP, "s2": "bn_scale_t s2[N_IN];\n"}, r"myproject\.cpp:3: weights 's2' are loaded from .*s2\.txt, which does not exist"),
    ],
    ids=["unsupported", "undefined-input", "unknown-size", "arguments", "relu-arguments", "unterminated-if", "bad-condition", "no-typedef",
         "bad-type", "missing-constant", "weight-count", "weight-value", "weight-type", "txt-weight-value", "txt-missing"],
)  # fmt: skip
def test_reader_names_file_line_and_reason(tmp_path, edit, message):
    _hand_project(tmp_path, **{"defines": NARROW_DEFINES, **edit})
    with pytest.raises(ValueError, match=message):
        load_hls_project(tmp_path)


# x * scale (a 40 x 30-bit product: 70 bits) + bias: wider than int64, computed in Python integers
@pytest.mark.parametrize(
    ("defines", "input_frac"),
    [(NARROW_DEFINES, 8), (HAND_DEFINES, 20)],
    ids=["12-bit", "70-bit-product"],
)
def test_hand_written_project_with_named_sizes_is_read_and_run_exactly(
    tmp_path, defines, input_frac
):
    from fractions import Fraction

    # #if on a name no #define defines reads it as 0, as the C preprocessor does
    _hand_project(
        tmp_path,
        defines=defines.replace(
            "#define N_IN 4", "#if N_UNDEFINED\n#define N_IN 3\n#else\n#define N_IN 4\n#endif"
        ),
    )
    project = load_hls_project(tmp_path)
    (node,) = project.graph.nodes
    assert node.kind == "normalize" and project.n_inputs == 4
    x = np.array([[1.5, -0.25, 3.0, -7.5], [0.0, 7.99, -8.0, 0.003], [-1e-6, 4.1, -3.3, 7.0]])
    y = project.graph.emulate([x])[0]
    # Oracle: exact fractions of x truncated onto input_t's grid, * scale + bias, truncated into
    # ap_fixed<16,6> (10 fractional bits; no overflow here).
    scale, bias = [0.5, 1.25, -2, 3], [0.125, 0, -1, 2.5]
    for row, out in zip(x, y, strict=True):
        for v, s, b, got in zip(row, scale, bias, out, strict=True):
            q = Fraction(int(np.floor(v * 2**input_frac)), 2**input_frac)
            want = Fraction(int(np.floor((q * Fraction(s) + Fraction(b)) * 1024)), 1024)
            assert Fraction(got) == want
