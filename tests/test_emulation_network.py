"""dense_latency's fast paths equal the literal nnet::dense_latency loop (no g++ needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emulation.fixed import (
    OVERFLOW_MODES,
    QUANTIZATION_MODES,
    FixedType,
    OverflowCounter,
    cast,
    product_type,
)
from emulation.float_path import project_plan
from emulation.hls_project import ActivationLayer, DenseLayer, HLSProject
from emulation.network import _accumulate, dense_latency, emulate_project, linear, relu


def _literal(x, xt, w, wt, b, bt, acc_t, res_t):
    """mult -> accum_t, acc = bias, acc += mult in input order (cast each step), res = (res_t) acc."""
    bias = cast(b, bt, acc_t)
    acc = _accumulate(x, w, bias, product_type(xt, wt), acc_t, None, "ref")
    return cast(acc, acc_t, res_t)


ACCUMULATORS = [
    FixedType(14, 5, True, "AP_TRN", "AP_SAT"),  # products exact, some sums saturate
    FixedType(14, 5, True, "AP_RND", "AP_SAT_SYM"),
    FixedType(14, 5, True, "AP_TRN", "AP_SAT_ZERO"),
    FixedType(13, 4, True, "AP_TRN", "AP_WRAP"),  # sums wrap
    FixedType(30, 15, True),  # hls4ml-style exact accumulator: the float64 plan
    FixedType(12, 7, True, "AP_RND_CONV", "AP_SAT"),  # products rounded into accum_t
    FixedType(12, 7, False, "AP_TRN", "AP_SAT"),  # unsigned accumulator
]


@pytest.mark.parametrize("acc_t", ACCUMULATORS, ids=str)
def test_dense_fast_paths_equal_the_literal_loop(acc_t):
    rng = np.random.default_rng(4)
    xt, wt, bt = FixedType(8, 4), FixedType(6, 1), FixedType(6, 2)
    res_t = FixedType(10, 6, True, "AP_RND", "AP_SAT")
    x = rng.integers(xt.min_int, xt.max_int + 1, (3000, 20))
    x[:500] = np.where(rng.random((500, 20)) < 0.5, xt.max_int, xt.min_int)  # saturating rows
    x[500:600] = 0
    w = rng.integers(wt.min_int, wt.max_int + 1, (20, 7))
    b = rng.integers(bt.min_int, bt.max_int + 1, 7)
    counter = OverflowCounter()
    got = dense_latency(x, xt, w, wt, b, bt, acc_t, res_t, counter, "d")
    assert np.array_equal(got, _literal(x, xt, w, wt, b, bt, acc_t, res_t))
    if acc_t.overflow in ("AP_SAT", "AP_SAT_SYM") and acc_t.width == 14:
        assert counter.overflows("d.accum") > 0  # the case really saturates


def test_activations_cast_into_their_result_type():
    t = FixedType(12, 6)
    x = np.array([[-100, -1, 0, 1, 63, 2047]])
    r = relu(x, t, FixedType(6, 2, False, "AP_RND_CONV", "AP_SAT"))
    assert r.tolist() == [[0, 0, 0, 0, 16, 63]]  # 63/64 -> 15.75/4 rounds to 16; 2047 saturates
    assert linear(x, t, FixedType(8, 2, True, "AP_RND", "AP_WRAP")).tolist() == [[-100, -1, 0, 1, 63, -1]]


def _project(rng, result_types) -> HLSProject:
    """A dense/activation chain with hls4ml-style exact accumulators and the given activation types."""
    layers, t, width = [], FixedType(16, 6), 10
    for k, res_t in enumerate(result_types):
        wt, bt = FixedType(8, 3), FixedType(8, 3)
        n_out = 7 if k < len(result_types) - 1 else 4
        w = rng.integers(wt.min_int, wt.max_int + 1, (width, n_out))
        b = rng.integers(bt.min_int, bt.max_int + 1, n_out)
        acc = FixedType(t.width + 8 + 5, t.integer + 3 + 5)
        layers.append(DenseLayer(f"d{k}", width, n_out, t, w, wt, b, bt, acc, acc))
        kind = "relu" if k % 2 == 0 else "linear"
        layers.append(ActivationLayer(f"a{k}", kind, n_out, acc, res_t))
        t, width = res_t, n_out
    return HLSProject(Path("."), "top", "x", FixedType(16, 6), 10, t, width, tuple(layers))


@pytest.mark.parametrize("rounding", QUANTIZATION_MODES)
def test_float_path_equals_integer_path(rounding):
    rng = np.random.default_rng(len(rounding))
    results = [FixedType(8, 3, k % 2 == 1, rounding, o) for k, o in enumerate(OVERFLOW_MODES)]
    project = _project(rng, results)
    assert project_plan(project) is not None  # the float path really runs
    x = np.concatenate([rng.normal(0, 4, (2000, 10)), np.zeros((10, 10)), rng.uniform(-200, 200, (500, 10)),
                        rng.integers(-2000, 2000, (500, 10)) / 64])  # fmt: skip
    fast = emulate_project(project, x)
    exact = emulate_project(project, x, float_path=False)
    assert np.array_equal(fast.outputs, exact.outputs)
    assert fast.overflows.as_dict() == exact.overflows.as_dict()


INT_RESULTS = [FixedType.int_type(10), FixedType.int_type(6, signed=False), FixedType.int_type(4), FixedType.int_type(7)]


@pytest.mark.parametrize("input_type", [FixedType.int_type(12), FixedType.int_type(10, signed=False)], ids=str)
def test_float_path_equals_integer_path_for_ap_int_types(input_type):
    # ap_int inputs (C++ conversion from double: truncation toward zero, (-0.5, 0) -> +1)
    # and ap_int results (truncation toward zero, wrapping) on both paths.
    rng = np.random.default_rng(input_type.width)
    project = _project(rng, INT_RESULTS)
    project = HLSProject(project.path, project.top, "x", input_type, 10, project.output_type, project.n_outputs,
                         tuple(_retyped(project.layers, input_type)))  # fmt: skip
    assert project_plan(project) is not None
    x = np.concatenate([rng.normal(0, 300, (2000, 10)), rng.uniform(-0.6, 0.1, (500, 10)), rng.uniform(-5e3, 5e3, (500, 10))])
    fast = emulate_project(project, x)
    exact = emulate_project(project, x, float_path=False)
    assert np.array_equal(fast.outputs, exact.outputs)
    assert fast.overflows.as_dict() == exact.overflows.as_dict()
    assert fast.overflows.overflows("a0") > 0  # the ap_int results really wrapped


def _retyped(layers, input_type):
    first = layers[0]
    acc = FixedType(input_type.width + 8 + 5, input_type.integer + 3 + 5)
    yield DenseLayer(first.name, first.n_in, first.n_out, input_type, first.weight, first.weight_type, first.bias,
                     first.bias_type, acc, acc)  # fmt: skip
    second = layers[1]
    yield ActivationLayer(second.name, second.kind, second.n, acc, second.result_type)
    yield from layers[2:]


def test_cast_float_equals_cast_into_ap_int():
    from emulation.float_path import cast_float

    for src in [FixedType(6, 0), FixedType(9, 3), FixedType(7, 7), FixedType(5, 0, False), FixedType(12, 14)]:
        m = np.arange(src.min_int, src.max_int + 1)
        for dst in [FixedType.int_type(3), FixedType.int_type(5, signed=False), FixedType.int_type(1)]:
            want = cast(m, src, dst)
            got = cast_float(m.astype(np.float64), src, dst, None, "c")
            assert np.array_equal(got, want), (src, dst)


def test_dense_wider_than_int64_is_exact():
    # 40-bit inputs times 30-bit weights: 70-bit products, a 90-bit accumulator (Python integers).
    rng = np.random.default_rng(3)
    xt, wt, bt = FixedType(40, 20), FixedType(30, 2), FixedType(30, 2)
    acc_t, res_t = FixedType(90, 30), FixedType(64, 30, True, "AP_RND", "AP_SAT")
    x = [[int(v) for v in rng.integers(-(2**39), 2**39, 5)] for _ in range(20)]
    w = [[int(v) for v in rng.integers(-(2**29), 2**29, 3)] for _ in range(5)]
    b = [int(v) for v in rng.integers(-(2**29), 2**29, 3)]
    got = dense_latency(np.array(x, dtype=object), xt, np.array(w, dtype=object), wt, np.array(b, dtype=object), bt,
                        acc_t, res_t)  # fmt: skip
    assert got.dtype == object
    # Reference in plain Python integers: the exact sum (nothing overflows the 90-bit
    # accumulator), then AP_RND (ties up) from 60 to 34 fractional bits, then saturation.
    for e in range(20):
        for j in range(3):
            exact = (sum(x[e][i] * w[i][j] for i in range(5)) << 12) + (b[j] << 32)  # in 2**-60 units
            q = (exact + (1 << 25)) >> 26
            q = max(min(q, res_t.max_int), res_t.min_int)
            assert got[e, j] == q
