"""dense_latency's fast paths equal hls4ml's own nnet::dense_latency, compiled by g++ on ap_types."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from emulation.fixed import (
    OVERFLOW_MODES,
    QUANTIZATION_MODES,
    FixedType,
    OverflowCounter,
)
from emulation.float_path import compile_project
from emulation.hls_project import ActivationLayer, DenseLayer, HLSProject
from emulation.network import dense_latency, emulate_project, linear, relu

ACCUMULATORS = [
    FixedType(14, 5, True, "AP_TRN", "AP_SAT"),  # products exact, some sums saturate
    FixedType(14, 5, True, "AP_RND", "AP_SAT_SYM"),
    FixedType(14, 5, True, "AP_TRN", "AP_SAT_ZERO"),
    FixedType(13, 4, True, "AP_TRN", "AP_WRAP"),  # sums wrap
    FixedType(30, 15, True),  # hls4ml-style exact accumulator: the float64 plan
    FixedType(12, 7, True, "AP_RND_CONV", "AP_SAT"),  # products rounded into accum_t
    FixedType(12, 7, False, "AP_TRN", "AP_SAT"),  # unsigned accumulator
]


XT, WT, BT = FixedType(8, 4), FixedType(6, 1), FixedType(6, 2)
RES_T = FixedType(10, 6, True, "AP_RND", "AP_SAT")
N_IN, N_OUT = 20, 7


def _cpp_type(t: FixedType) -> str:
    return f"ap_{'' if t.signed else 'u'}fixed<{t.width},{t.integer},{t.rounding},{t.overflow},0>"


def _dense_source() -> str:
    """One program, one nnet::dense_latency instantiation per accumulator type (hls4ml's header, unmodified)."""
    lines = ['#include "ap_fixed.h"', '#include "nnet_utils/nnet_dense.h"', "#include <cstdio>"]
    lines += [
        f"typedef {_cpp_type(t)} {n}_t;"
        for n, t in (("x", XT), ("w", WT), ("b", BT), ("res", RES_T))
    ]
    for k, acc in enumerate(ACCUMULATORS):
        lines.append(
            f"struct config{k} : nnet::dense_config {{ static const unsigned n_in = {N_IN}; "
            f"static const unsigned n_out = {N_OUT}; typedef {_cpp_type(acc)} accum_t; "
            "typedef b_t bias_t; typedef w_t weight_t; };"
        )
    lines += [
        "template<class C> void run(FILE* f, long n) {",
        f"  w_t w[{N_IN * N_OUT}]; b_t b[{N_OUT}]; x_t x[{N_IN}]; res_t r[{N_OUT}]; long long v;",
        f'  for (int i = 0; i < {N_IN * N_OUT}; i++) {{ fscanf(f, "%lld", &v); w[i].V = v; }}',
        f'  for (int i = 0; i < {N_OUT}; i++) {{ fscanf(f, "%lld", &v); b[i].V = v; }}',
        "  for (long e = 0; e < n; e++) {",
        f'    for (int i = 0; i < {N_IN}; i++) {{ fscanf(f, "%lld", &v); x[i].V = v; }}',
        "    nnet::dense_latency<x_t, res_t, C>(x, r, w, b);",
        f'    for (int j = 0; j < {N_OUT}; j++) printf("%lld\\n", (long long)r[j].V);',
        "  }",
        "}",
        "int main(int argc, char** argv) {",
        '  FILE* f = fopen(argv[1], "r"); int c; long n;',
        '  if (fscanf(f, "%d %ld", &c, &n) != 2) return 1;',
        "  switch (c) {",
        *[f"    case {k}: run<config{k}>(f, n); break;" for k in range(len(ACCUMULATORS))],
        "  }",
        "  return 0;",
        "}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hls4ml_dense() -> Path:
    """The compiled reference (cached in the temp dir by the hash of its source)."""
    if shutil.which("g++") is None:
        pytest.skip("needs g++")
    import importlib.util

    spec = importlib.util.find_spec("hls4ml")
    assert spec is not None and spec.origin is not None
    templates = Path(spec.origin).parent / "templates" / "vivado"
    source = _dense_source()
    folder = (
        Path(tempfile.gettempdir())
        / f"l1ad_dense_{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    )
    binary = folder / "dense"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dense.cpp").write_text(source)
        tmp = folder / f"dense.{random.randrange(1 << 30)}"
        subprocess.run(
            ["g++", "-O1", "-std=c++14", f"-I{templates / 'ap_types'}", f"-I{templates}",
             str(folder / "dense.cpp"), "-o", str(tmp)],
            check=True,
        )  # fmt: skip
        tmp.replace(binary)
    return binary


def _hls4ml_dense(binary: Path, case: int, x, w, b) -> np.ndarray:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{case} {len(x)}\n")
        for block in (
            w.reshape(-1),
            b,
            x.reshape(-1),
        ):  # weights row-major (n_in, n_out), as hls4ml stores them
            f.write(" ".join(map(str, block.tolist())) + "\n")
        path = f.name
    try:
        out = subprocess.run([str(binary), path], check=True, capture_output=True, text=True).stdout
    finally:
        Path(path).unlink()
    return np.array(out.split(), dtype=np.int64).reshape(len(x), N_OUT)


@pytest.mark.hls
@pytest.mark.parametrize("case", range(len(ACCUMULATORS)), ids=[str(t) for t in ACCUMULATORS])
def test_dense_fast_paths_equal_hls4ml_dense_latency(case, hls4ml_dense):
    acc_t = ACCUMULATORS[case]
    rng = np.random.default_rng(4)
    x = rng.integers(XT.min_int, XT.max_int + 1, (3000, N_IN))
    x[:500] = np.where(rng.random((500, N_IN)) < 0.5, XT.max_int, XT.min_int)  # saturating rows
    x[500:600] = 0
    w = rng.integers(WT.min_int, WT.max_int + 1, (N_IN, N_OUT))
    b = rng.integers(BT.min_int, BT.max_int + 1, N_OUT)
    counter = OverflowCounter()
    got = dense_latency(x, XT, w, WT, b, BT, acc_t, RES_T, counter, "d")
    expected = _hls4ml_dense(hls4ml_dense, case, x, w, b)
    differ = np.any(got != expected, axis=1)
    assert not differ.any(), (
        f"{differ.sum()} of {len(x)} events differ, first {np.flatnonzero(differ)[:5]}"
    )
    if acc_t.overflow in ("AP_SAT", "AP_SAT_SYM") and acc_t.width == 14:
        assert counter.overflows("d.accum") > 0  # the case really saturates


def test_activations_cast_into_their_result_type():
    t = FixedType(12, 6)
    x = np.array([[-100, -1, 0, 1, 63, 2047]])
    r = relu(x, t, FixedType(6, 2, False, "AP_RND_CONV", "AP_SAT"))
    assert r.tolist() == [[0, 0, 0, 0, 16, 63]]  # 63/64 -> 15.75/4 rounds to 16; 2047 saturates
    assert linear(x, t, FixedType(8, 2, True, "AP_RND", "AP_WRAP")).tolist() == [
        [-100, -1, 0, 1, 63, -1]
    ]


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
    assert compile_project(project).all_float  # the float path really runs
    x = np.concatenate([rng.normal(0, 4, (2000, 10)), np.zeros((10, 10)), rng.uniform(-200, 200, (500, 10)),
                        rng.integers(-2000, 2000, (500, 10)) / 64])  # fmt: skip
    fast = emulate_project(project, x)
    exact = emulate_project(project, x, float_path=False)
    assert np.array_equal(fast.outputs, exact.outputs)
    assert fast.overflows.as_dict() == exact.overflows.as_dict()


@pytest.mark.parametrize("float_path", [True, False])
def test_threaded_chunks_equal_one_worker(float_path):
    """Chunks on several threads write disjoint rows and merge their overflow counts exactly."""
    rng = np.random.default_rng(11)
    project = _project(
        rng,
        [FixedType(8, 3, False, "AP_RND", "AP_SAT"), FixedType(9, 4, True, "AP_TRN", "AP_WRAP")],
    )
    x = np.concatenate([rng.normal(0, 4, (5000, 10)), rng.uniform(-200, 200, (1003, 10))])
    one = emulate_project(project, x, chunk_size=500, workers=1, float_path=float_path)
    many = emulate_project(project, x, chunk_size=500, workers=3, float_path=float_path)
    assert np.array_equal(one.outputs, many.outputs)
    assert one.overflows.as_dict() == many.overflows.as_dict()
    assert one.overflows.overflows("input") > 0  # the counts being merged are not all zero


INT_RESULTS = [
    FixedType.int_type(10),
    FixedType.int_type(6, signed=False),
    FixedType.int_type(4),
    FixedType.int_type(7),
]


@pytest.mark.parametrize(
    "input_type", [FixedType.int_type(12), FixedType.int_type(10, signed=False)], ids=str
)
def test_float_path_equals_integer_path_for_ap_int_types(input_type):
    # ap_int inputs (C++ conversion from double: truncation toward zero, (-0.5, 0) -> +1)
    # and ap_int results (truncation toward zero, wrapping) on both paths.
    rng = np.random.default_rng(input_type.width)
    project = _project(rng, INT_RESULTS)
    project = HLSProject(project.path, project.top, "x", input_type, 10, project.output_type, project.n_outputs,
                         tuple(_retyped(project.layers, input_type)))  # fmt: skip
    assert compile_project(project).all_float
    x = np.concatenate(
        [
            rng.normal(0, 300, (2000, 10)),
            rng.uniform(-0.6, 0.1, (500, 10)),
            rng.uniform(-5e3, 5e3, (500, 10)),
        ]
    )
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
            exact = (sum(x[e][i] * w[i][j] for i in range(5)) << 12) + (
                b[j] << 32
            )  # in 2**-60 units
            q = (exact + (1 << 25)) >> 26
            q = max(min(q, res_t.max_int), res_t.min_int)
            assert got[e, j] == q
