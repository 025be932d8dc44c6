"""The float path (integers carried in float32/float64, numpy or torch) equals the integer path bit for bit.

Oracle: the int64 kernels of ``emulation.fixed``/``emulation.layers`` (themselves checked
against g++ on hls4ml's ap_types and against hls4ml's C simulation). Covered: every cast
(every quantisation x overflow mode, ap_int targets, ReLU fused in front), dense chains and
a conv layer on random, saturating, zero and exact-tie inputs, the per-layer choice of
float32 / float64 / integers at the 2**24 and 2**53 bounds, and torch (CPU) against numpy.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from emulation.fixed import OVERFLOW_MODES, QUANTIZATION_MODES, FixedType, OverflowCounter, cast
from emulation.float_path import FloatGraph, Torch, cast_float, float_ok
from emulation.graph import Graph, Node, Port
from emulation.layers.conv import im2col

MODES = list(itertools.product(QUANTIZATION_MODES, OVERFLOW_MODES))


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_cast_equals_the_integer_cast(rounding, overflow, dtype):
    """All mantissas of the source (so every tie and every overflow) through each cast."""
    sources = [
        FixedType(10, 4),
        FixedType(9, 2, False),
        FixedType(12, 8),
        FixedType(7, 0),
        FixedType(8, 9),
    ]
    targets = [FixedType(6, 3, True, rounding, overflow), FixedType(5, 1, False, rounding, overflow),
               FixedType(9, 6, True, rounding, overflow), FixedType(14, 7, True, rounding, overflow)]  # fmt: skip
    checked = 0
    for src, dst in itertools.product(sources, targets):
        if not float_ok(src, dst, dtype):
            continue
        m = np.arange(src.min_int, src.max_int + 1)
        for relu in (False, True):
            counter_int, counter_float = OverflowCounter(), OverflowCounter()
            x = np.maximum(m, 0) if relu else m
            want = cast(x, src, dst, counter_int, "c")
            got = cast_float(x.astype(dtype), src, dst, counter_float, "c")
            assert got.dtype == np.dtype(dtype)
            assert np.array_equal(got, want), (src, dst, relu)
            assert counter_int.as_dict() == counter_float.as_dict()
        checked += 1
    assert checked >= 10


def test_cast_into_ap_int_types():
    for src in [
        FixedType(6, 0),
        FixedType(9, 3),
        FixedType(7, 7),
        FixedType(5, 0, False),
        FixedType(12, 14),
    ]:
        m = np.arange(src.min_int, src.max_int + 1)
        for dst in [
            FixedType.int_type(3),
            FixedType.int_type(5, signed=False),
            FixedType.int_type(1),
        ]:
            for dtype in ("float32", "float64"):
                assert np.array_equal(
                    cast_float(m.astype(dtype), src, dst, None, "c"), cast(m, src, dst)
                ), (src, dst)


# ----------------------------------------------------------------------------- graphs


def _dense(name, x, out, x_t, res_t, rng, n_in, n_out, w_t=None, acc_t=None, weight=None):
    w_t = w_t or FixedType(6, 2)
    weight = rng.integers(w_t.min_int, w_t.max_int + 1, (n_in, n_out)) if weight is None else weight
    b_t = FixedType(8, 4)
    bias = rng.integers(b_t.min_int, b_t.max_int + 1, n_out)
    acc_t = acc_t or FixedType(x_t.width + w_t.width + 8, x_t.integer + w_t.integer + 8)
    params = dict(weight=weight, weight_flat=weight.ravel(), weight_type=w_t, bias=bias, bias_type=b_t,
                  accum_type=acc_t, strategy="latency")  # fmt: skip
    return Node("dense", name, (x,), out, (x_t,), res_t, n_out, params)


def _act(kind, name, x, out, x_t, res_t, n):
    return Node(kind, name, (x,), out, (x_t,), res_t, n)


def _chain(rng, rounding, overflow, n_in=10):
    """dense -> relu -> dense -> linear -> dense (graph output), every result in the mode under test."""
    in_t = FixedType(12, 5, True, "AP_RND_CONV", "AP_SAT")
    r1 = FixedType(9, 4, True, rounding, overflow)
    a1 = FixedType(7, 3, False, rounding, overflow)
    r2 = FixedType(10, 5, True, rounding, overflow)
    a2 = FixedType(8, 4, True, rounding, overflow)
    r3 = FixedType(8, 3, True, rounding, overflow)
    nodes = (
        _dense("d1", "x", "h1", in_t, r1, rng, n_in, 8),
        _act("relu", "a1", "h1", "g1", r1, a1, 8),
        _dense("d2", "g1", "h2", a1, r2, rng, 8, 6),
        _act("linear", "a2", "h2", "g2", r2, a2, 6),
        _dense("d3", "g2", "y", a2, r3, rng, 6, 4),
    )
    return Graph("chain", (Port("x", in_t, n_in),), (Port("y", r3, 4),), nodes)


def _inputs(rng, t: FixedType, n_in: int) -> np.ndarray:
    """Random, zero, saturating and exact-tie doubles for an input type."""
    lsb = 2.0**-t.fractional
    return np.concatenate([
        rng.normal(0, 4, (1500, n_in)),
        np.zeros((20, n_in)),
        rng.uniform(-300, 300, (300, n_in)),  # saturating
        (rng.integers(-(2**t.width), 2**t.width, (300, n_in)) + 0.5) * lsb,  # exact ties of the input cast
        rng.integers(t.min_int, t.max_int + 1, (300, n_in)) * lsb,  # grid values: ties in later casts
    ])  # fmt: skip


def _assert_same(graph: Graph, x: np.ndarray, program: FloatGraph, xp=None) -> None:
    c_int, c_float = OverflowCounter(), OverflowCounter()
    want = graph.emulate([x], c_int)
    got = program.emulate([x], c_float) if xp is None else program.emulate([x], c_float, xp)
    for w, g in zip(want, got, strict=True):
        assert np.array_equal(w, g)
    assert c_int.as_dict() == c_float.as_dict()


@pytest.mark.parametrize(("rounding", "overflow"), MODES)
def test_chain_on_float32_and_float64_equals_integer_path(rounding, overflow):
    rng = np.random.default_rng(len(rounding) * 7 + len(overflow))
    graph = _chain(rng, rounding, overflow)
    x = _inputs(rng, graph.inputs[0].type, 10)
    for dtypes in (("float32", "float64"), ("float64",)):
        program = FloatGraph(graph, dtypes)
        assert program.all_float
        assert set(program.dtypes) == {
            dtypes[0]
        }  # small types: every layer in the first float type allowed
        _assert_same(graph, x, program)


@pytest.mark.parametrize(("rounding", "overflow"), [("AP_RND", "AP_SAT"), ("AP_TRN", "AP_WRAP"), ("AP_RND_CONV", "AP_SAT_SYM"),
                                                    ("AP_RND_INF", "AP_SAT_ZERO")])  # fmt: skip
def test_torch_cpu_is_bit_equal_to_numpy(rounding, overflow):
    rng = np.random.default_rng(3)
    graph = _chain(rng, rounding, overflow)
    x = _inputs(rng, graph.inputs[0].type, 10)
    program = FloatGraph(graph)
    numpy_out = program.emulate([x])
    torch_out = program.emulate([x], xp=Torch("cpu"))
    assert all(np.array_equal(a, b) for a, b in zip(numpy_out, torch_out, strict=True))
    _assert_same(graph, x, FloatGraph(graph, ("float64",)), Torch("cpu"))


def test_torch_float32_products_stay_exact_under_a_lower_matmul_precision():
    """``float32_matmul_precision("medium")`` lets torch use bfloat16 inside float32 products: the path turns it off."""
    import torch

    rng = np.random.default_rng(12)
    in_t, w_t = FixedType(12, 6), FixedType(8, 2)
    res_t = FixedType(24, 14)
    graph = _single_dense(in_t, w_t, rng.integers(w_t.min_int, w_t.max_int + 1, (40, 6)), res_t)
    program = FloatGraph(graph)
    assert program.dtypes == ["float32"]
    m = rng.integers(in_t.min_int, in_t.max_int + 1, (3000, 40))
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        got = program.run([m], None, Torch("cpu"))[0]
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
    assert np.array_equal(got.numpy().astype(np.int64), graph.run([m])[0])


@pytest.mark.parametrize("overflow", OVERFLOW_MODES)
def test_wide_events_overflow_event_by_event_like_the_integer_path(overflow):
    """From ROW_WISE_WIDTH values per event on, only the overflowing events are handled: same bits, same counts."""
    from emulation.float_path import ROW_WISE_WIDTH

    rng = np.random.default_rng(13)
    n = ROW_WISE_WIDTH + 36
    src, dst = (
        FixedType(14, 8, True, "AP_RND", "AP_SAT"),
        FixedType(7, 3, True, "AP_RND_ZERO", overflow),
    )
    graph = Graph(
        "wide",
        (Port("x", src, n),),
        (Port("y", dst, n),),
        (_act("linear", "l", "x", "y", src, dst, n),),
    )
    x = _inputs(rng, src, n)
    x[::7] *= 0.01  # many events entirely in range, between overflowing ones
    for xp in (None, Torch("cpu")):
        _assert_same(graph, x, FloatGraph(graph), xp)


def _single_dense(x_t: FixedType, w_t: FixedType, weight: np.ndarray, res_t: FixedType) -> Graph:
    acc_t = FixedType(61, 61 - (x_t.fractional + w_t.fractional))
    node = _dense(
        "d",
        "x",
        "y",
        x_t,
        res_t,
        np.random.default_rng(0),
        *weight.shape,
        w_t=w_t,
        acc_t=acc_t,
        weight=weight,
    )
    node.params["bias"][:] = 0
    return Graph(
        "one", (Port("x", x_t, weight.shape[0]),), (Port("y", res_t, weight.shape[1]),), (node,)
    )


@pytest.mark.parametrize(
    ("bound_bits", "dtype"), [(24, "float32"), (25, "float64"), (53, "float64"), (54, None)]
)
def test_layer_just_over_a_bound_falls_back_and_stays_exact(bound_bits, dtype):
    """max|x| * sum|w| just below 2**24 runs in float32, just over in float64; over 2**53 on int64."""
    x_bits = (
        bound_bits - 8
    )  # inputs up to 2**(x_bits) - 1 (signed), 8 weights of 2**5 - 1: sum|w| < 2**8
    x_t = FixedType(x_bits + 1, x_bits + 1 - 4)  # 4 fractional bits, as the bias
    w_t = FixedType(6, 6)
    weight = np.full((8, 3), 31, dtype=np.int64)
    weight[:, 1] = -31
    weight[::2, 2] = -31
    res_width = min(x_bits + 6, 50)  # below 2**52 as well: the result cast stays in float64
    res_t = FixedType(res_width, res_width - 2, True, "AP_RND", "AP_SAT")
    graph = _single_dense(x_t, w_t, weight, res_t)
    program = FloatGraph(graph)
    assert program.dtypes == [dtype]
    rng = np.random.default_rng(bound_bits)
    lsb = 2.0**-x_t.fractional
    top = float(x_t.max_int)
    x = np.concatenate([np.full((5, 8), top * lsb), np.full((5, 8), -top * lsb),  # the bound itself
                        rng.integers(x_t.min_int, x_t.max_int, (500, 8)) * lsb])  # fmt: skip
    if x_bits > 51:  # doubles carry 53 bits: feed mantissas, not values
        m = np.concatenate([np.full((5, 8), x_t.max_int), np.full((5, 8), x_t.min_int + 1),
                            rng.integers(x_t.min_int, x_t.max_int, (500, 8), dtype=np.int64)])  # fmt: skip
        assert np.array_equal(np.asarray(program.run([m])[0]).astype(np.int64), graph.run([m])[0])
    else:
        _assert_same(graph, x, program)


GEOMETRIES = {  # in_shape, n_chan, filt, stride, pad (top, left), dilation, out_shape
    "same_3x3": ((6, 5), 2, (3, 3), (1, 1), (1, 1), (1, 1), (6, 5)),
    "valid_stride2": ((7, 8), 3, (3, 2), (2, 2), (0, 0), (1, 1), (3, 4)),
    "dilated_padded": ((8, 7), 1, (2, 3), (1, 2), (1, 2), (2, 1), (7, 5)),
}


@pytest.mark.parametrize("form", ["segments", "im2col"])
@pytest.mark.parametrize("geometry", list(GEOMETRIES), ids=str)
def test_conv_on_the_float_path_equals_integer_kernel(geometry, form, monkeypatch):
    from emulation import float_path

    rng = np.random.default_rng(9)
    in_shape, c, filt, stride, pad, dilation, out_shape = GEOMETRIES[geometry]
    in_t = FixedType(10, 4, True, "AP_TRN", "AP_SAT")
    res_t = FixedType(9, 4, True, "AP_RND", "AP_SAT")
    act_t = FixedType(8, 3, False, "AP_RND_CONV", "AP_SAT")
    f, n_in, n_out = 3, in_shape[0] * in_shape[1] * c, out_shape[0] * out_shape[1] * 3
    cols = im2col(in_shape, c, filt, stride, pad, dilation, out_shape)
    conv = _dense("c", "x", "h", in_t, res_t, rng, cols.shape[1], f)
    params = {**conv.params, "columns": cols, "n_filt": f}
    if form == "segments":
        params["geometry"] = dict(in_shape=in_shape, n_chan=c, filt=filt, stride=stride, pad=pad, dilation=dilation,
                                  out_shape=out_shape)  # fmt: skip
    conv = Node("conv", "c", ("x",), "h", (in_t,), res_t, n_out, params)
    relu = _act("relu", "r", "h", "y", res_t, act_t, n_out)
    graph = Graph("cnn", (Port("x", in_t, n_in),), (Port("y", act_t, n_out),), (conv, relu))
    program = FloatGraph(graph)
    assert program.all_float and len(program.steps) == 1  # ReLU fused into the conv's casts
    if (
        form == "segments"
    ):  # every segment width (one product row per 1, 2, ... output pixels of a row)
        chosen = (
            float_path._conv_segments
        )  # and every granule (gathered runs of 1, 2, ... input pixels)
        for seg in (d for d in range(1, out_shape[1] + 1) if out_shape[1] % d == 0):
            for q in (
                q
                for q in range(1, in_shape[1] + 1)
                if in_shape[1] % q == 0 and seg * stride[1] % q == 0
            ):
                monkeypatch.setattr(
                    float_path, "_conv_segments", functools.partial(chosen, seg=seg, pixels=q)
                )
                forced = FloatGraph(graph)
                assert len(forced.steps[0].columns) == out_shape[0] * out_shape[1] // seg
                assert forced.steps[0].granule == q * c
                _assert_same(graph, _inputs(rng, in_t, n_in), forced)
    x = _inputs(rng, in_t, n_in)
    _assert_same(graph, x, program)
    on_torch = Torch("cpu")
    _assert_same(graph, x, program, on_torch)
    kept = len(on_torch._index)
    _assert_same(graph, x[:100], program, on_torch)
    assert len(on_torch._index) == kept  # the gather indices are moved to the device once


def test_unprovable_nodes_run_on_their_integer_kernels_between_float_ones():
    rng = np.random.default_rng(4)
    graph = _chain(rng, "AP_RND", "AP_SAT")
    # d2's accumulator too narrow for its bound: it may saturate, so only the ordered loop is exact
    d2 = graph.nodes[2]
    narrow = dict(d2.params, accum_type=FixedType(9, 5, True, "AP_TRN", "AP_SAT"))
    nodes = list(graph.nodes)
    nodes[2] = Node(
        "dense", "d2", d2.inputs, d2.output, d2.input_types, d2.result_type, d2.size, narrow
    )
    graph = Graph(graph.name, graph.inputs, graph.outputs, tuple(nodes))
    program = FloatGraph(graph)
    assert None in program.dtypes and "float32" in program.dtypes
    _assert_same(graph, _inputs(rng, graph.inputs[0].type, 10), program)


POOLS = {  # in_shape, n_filt, pool, stride, pad (top, bottom, left, right)
    "padded": ((5, 6), 2, (2, 2), (2, 2), (0, 1, 0, 0)),
    "2x2": ((6, 6), 3, (2, 2), (2, 2), (0, 0, 0, 0)),
    "overlapping_3x2": ((7, 6), 2, (3, 2), (1, 2), (0, 0, 0, 0)),
}


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize(
    "acc",
    [FixedType(9, 4, True, "AP_TRN", "AP_SAT"), FixedType(6, 2, True, "AP_RND", "AP_WRAP")],
    ids=str,
)
def test_max_pooling_on_the_float_path_equals_integer_kernel(acc, pool, monkeypatch):
    from emulation import float_path
    from emulation.layers.pooling import pool_windows

    rng = np.random.default_rng(10)
    in_shape, f, size, stride, pad = POOLS[pool]
    in_t = FixedType(9, 4, True, "AP_TRN", "AP_SAT")
    res_t = FixedType(7, 3, True, "AP_RND_CONV", "AP_SAT")
    windows, divisors = pool_windows(in_shape, f, size, stride, pad, False)
    geometry = dict(in_shape=in_shape, n_filt=f, pool=size, stride=stride, pad=pad)
    node = Node("pooling", "p", ("x",), "y", (in_t,), res_t, len(windows),
                {"windows": windows, "divisors": divisors, "op": "max", "accum_type": acc, "geometry": geometry})  # fmt: skip
    n_in = in_shape[0] * in_shape[1] * f
    graph = Graph("pool", (Port("x", in_t, n_in),), (Port("y", res_t, len(windows)),), (node,))
    program = FloatGraph(graph)
    assert program.all_float and program.steps[0].granule == f  # windows over whole pixels
    _assert_same(graph, _inputs(rng, in_t, n_in), program)
    _assert_same(graph, _inputs(rng, in_t, n_in), program, Torch("cpu"))
    monkeypatch.setattr(float_path, "_pixel_windows", lambda windows, n_chan: None)
    floats = FloatGraph(graph)  # windows over floats: strided views without padding, else a gather
    assert floats.steps[0].granule == 1 and (floats.steps[0].slices is not None) == (
        pool != "padded"
    )
    _assert_same(graph, _inputs(rng, in_t, n_in), floats)
    _assert_same(graph, _inputs(rng, in_t, n_in), floats, Torch("cpu"))


@pytest.mark.parametrize("act", ["relu", "linear", None])
@pytest.mark.parametrize(("rounding", "overflow"), [("AP_RND_CONV", "AP_SAT"), ("AP_TRN", "AP_SAT_SYM"),
                                                    ("AP_RND_ZERO", "AP_SAT"), ("AP_RND", "AP_WRAP")])  # fmt: skip
@pytest.mark.parametrize("pool", ["2x2", "overlapping_3x2"])
@pytest.mark.parametrize("pixels", [True, False], ids=["pixel_gather", "float_views"])
def test_conv_casts_after_max_pooling_equal_integer_kernels(
    pool, rounding, overflow, act, pixels, monkeypatch
):
    """conv (+ activation) -> max pooling: saturating casts run after the pooling (they are monotone),
    their overflow counts come from thresholds on the products; wrapping ones stay before it."""
    from emulation import float_path
    from emulation.layers.pooling import pool_windows

    if not pixels:  # the pooling over floats: strided views (2x2) or a gather (overlapping)
        monkeypatch.setattr(float_path, "_pixel_windows", lambda windows, n_chan: None)
    rng = np.random.default_rng(11)
    in_shape, f, size, stride, pad = POOLS[pool]
    conv_in, c = (in_shape[0] + 2, in_shape[1] + 2), 2
    in_t = FixedType(10, 4, True, "AP_TRN", "AP_SAT")
    res_t = (
        FixedType(20, 10, True, rounding, overflow)
        if act is not None
        else FixedType(6, 2, True, rounding, overflow)
    )
    act_t = FixedType(6, 2, act != "relu", rounding, overflow)
    cols = im2col(conv_in, c, (3, 3), (1, 1), (0, 0), (1, 1), in_shape)
    n_in, n_mid = conv_in[0] * conv_in[1] * c, in_shape[0] * in_shape[1] * f
    conv = _dense("c", "x", "h", in_t, res_t, rng, cols.shape[1], f)
    geometry = dict(
        in_shape=conv_in,
        n_chan=c,
        filt=(3, 3),
        stride=(1, 1),
        pad=(0, 0),
        dilation=(1, 1),
        out_shape=in_shape,
    )
    conv = Node(
        "conv",
        "c",
        ("x",),
        "h",
        (in_t,),
        res_t,
        n_mid,
        {**conv.params, "columns": cols, "n_filt": f, "geometry": geometry},
    )
    nodes, pool_t = [conv], res_t
    if act is not None:
        nodes.append(_act(act, "a", "h", "r", res_t, act_t, n_mid))
        pool_t = act_t
    windows, divisors = pool_windows(in_shape, f, size, stride, pad, False)
    out_t = FixedType(5, 2, True, "AP_RND", "AP_SAT")
    acc = FixedType(9, 4, True, "AP_TRN", "AP_SAT")
    nodes.append(Node("pooling", "p", (nodes[-1].output,), "y", (pool_t,), out_t, len(windows),
                      {"windows": windows, "divisors": divisors, "op": "max", "accum_type": acc,
                       "geometry": dict(in_shape=in_shape, n_filt=f, pool=size, stride=stride, pad=pad)}))  # fmt: skip
    graph = Graph("cnn", (Port("x", in_t, n_in),), (Port("y", out_t, len(windows)),), tuple(nodes))
    program = FloatGraph(graph)
    assert program.all_float
    assert bool(program.steps[-1].pre_ops) == (overflow != "AP_WRAP")  # wrapping is not monotone
    x = _inputs(rng, in_t, n_in)
    _assert_same(graph, x, program)
    _assert_same(graph, x, program, Torch("cpu"))


# ----------------------------------------------------------------------------- devices


def _trigger_case():
    from emulation.events import edge_words
    from firmware.example import default_model, toy_words

    spec, weights = default_model(seed=0)
    words = np.concatenate([edge_words(spec, np.random.default_rng(1), 200), toy_words(3000, 2)])
    return spec, weights, words


def test_trigger_on_torch_cpu_is_bit_equal_to_numpy_and_the_integer_loops():
    from emulation.trigger import TriggerEmulator

    spec, weights, words = _trigger_case()
    numpy_out = TriggerEmulator(spec, weights)(words, OverflowCounter(), keep_intermediates=True)
    c_torch = OverflowCounter()
    torch_out = TriggerEmulator(spec, weights, device="torch-cpu")(
        words, c_torch, keep_intermediates=True
    )
    integer = TriggerEmulator(spec, weights, float_path=False)(
        words, OverflowCounter(), keep_intermediates=True
    )
    assert not numpy_out.mismatches(torch_out).any() and not numpy_out.mismatches(integer).any()
    assert all(
        np.array_equal(a, b)
        for a, b in zip(torch_out.reconstructions, integer.reconstructions, strict=True)
    )
    assert c_torch.as_dict() == integer.overflows.as_dict()


def test_unknown_or_missing_device_is_one_clear_error():
    import torch

    from emulation.float_path import namespace

    with pytest.raises(ValueError, match="device 'tpu'"):
        namespace("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            namespace("cuda")
        assert namespace("auto").name == "numpy"


@pytest.mark.gpu
def test_cuda_float32_and_float64_are_bit_equal_to_numpy():
    from emulation.float_path import namespace
    from emulation.trigger import TriggerEmulator

    cuda = namespace("cuda")
    rng = np.random.default_rng(5)
    for rounding, overflow in MODES:
        graph = _chain(rng, rounding, overflow)
        x = _inputs(rng, graph.inputs[0].type, 10)
        for dtypes in (("float32", "float64"), ("float64",)):
            _assert_same(graph, x, FloatGraph(graph, dtypes), cuda)
    spec, weights, words = _trigger_case()
    on_gpu = TriggerEmulator(spec, weights, device="cuda")(words, keep_intermediates=True)
    assert not on_gpu.mismatches(TriggerEmulator(spec, weights, float_path=False)(words)).any()
