"""hls4ml projects whose dense layers use the distributed_arithmetic strategy (da4ml's generated
shift-and-add functions) are emulated bit-exactly from the project's files (vs hls4ml's C simulation)."""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pytest

from emulation import emulate_project, load_hls_project
from emulation.graph import Graph
from firmware.csim import CSimulation, build_qkeras_dense, write_qkeras_project
from tests.test_emulation_project import N_IN, _events

CODE_GEN = "firmware/nnet_utils/nnet_code_gen.h"
# rounding, saturating results after the exact DA sums; the rest hls4ml's defaults
PRECISION = {
    "dense0": {"result": "fixed<12,5,RND,SAT>"},
    "dense1": {"result": "fixed<10,4,RND_CONV,WRAP>"},
}


@pytest.fixture(scope="module")
def da_project(tmp_path_factory):
    """A QKeras 12-10-6-3 network written by hls4ml 1.3 with the distributed_arithmetic strategy."""
    model = build_qkeras_dense([N_IN, 10, 6, 3], seed=4, output_bits=(10, 4))
    return write_qkeras_project(
        model, tmp_path_factory.mktemp("da") / "prj", project_name="da_top", precision=PRECISION,
        compile=False, strategy="distributed_arithmetic",
    )  # fmt: skip


@pytest.fixture(scope="module")
def da_csim(da_project):
    return CSimulation(da_project)


def _inputs(project, n: int) -> np.ndarray:
    """The test module's events (zeros, wrapping, grid, ties, random) and words at input_t's extremes."""
    t = project.input_type
    edges = np.array([[t.max_value] * N_IN, [t.min_value] * N_IN,
                      [t.max_value, t.min_value] * (N_IN // 2), [t.min_value, t.max_value] * (N_IN // 2)])  # fmt: skip
    return np.concatenate([edges, _events(n - len(edges), t, seed=11)])


def _statement_by_statement(graph: Graph) -> Graph:
    """The graph with every DA layer run by its statement interpreter instead of the dense/conv kernel."""
    literal = {"dense": "dense_da", "conv": "conv_da"}
    nodes = tuple(
        dataclasses.replace(n, kind=literal[n.kind]) if "program" in n.params else n
        for n in graph.nodes
    )
    return dataclasses.replace(graph, nodes=nodes)


def _mismatches(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.any(a != b, axis=1).sum())


@pytest.mark.hls
def test_da_project_equals_csim_on_6000_inputs_both_ways(da_project, da_csim):
    project = load_hls_project(da_project)
    calls = re.findall(r"nnet::(\w+)<", (da_project / "firmware" / "da_top.cpp").read_text())
    assert [c for c in calls if c.startswith("dense")] == ["dense_da_2", "dense_da_5", "dense_da_8"]
    assert project.graph is not None
    da_nodes = [n for n in project.graph.nodes if "program" in n.params]
    assert len(da_nodes) == 3 and all(n.kind == "dense" for n in da_nodes)  # exact linear maps
    x = _inputs(project, 6000)
    expected = da_csim.predict(x)
    result = emulate_project(project, x)
    assert _mismatches(result.outputs, expected) == 0
    assert (
        result.overflows.overflows("dense0.result") > 0
    )  # the saturating result cast is exercised
    assert result.overflows.overflows("input") > 0
    # the statement interpreter (the general path) gives the same words
    literal = _statement_by_statement(project.graph).emulate([x])[0]
    assert _mismatches(literal, expected) == 0


@pytest.mark.hls
def test_hand_edited_da_code_is_what_the_emulator_runs(da_project, da_csim, tmp_path):
    """One shift changed and one declaration narrowed (so that it wraps) by hand: the emulator follows the
    edited file (equal to the edited project's own C simulation) and leaves the untouched one."""
    copy = tmp_path / "edited"
    shutil.copytree(da_project, copy, ignore=shutil.ignore_patterns("*.so"))
    code = copy / CODE_GEN
    text = code.read_text()
    first_da = text.index("void dense_da_2")
    shift = re.compile(r"bit_shift<(-?\d+)>").search(text, first_da)
    assert shift is not None
    text = text[: shift.start(1)] + str(int(shift.group(1)) + 1) + text[shift.end(1) :]
    # the first two-operand declaration of the layer gets a 6-bit type that wraps
    decl = re.compile(r"ap_fixed<\d+,(\d+)> (v\d+) = v\d+ [-+]").search(text, first_da)
    assert decl is not None
    text = (
        text[: decl.start()]
        + "ap_fixed<6,2>"
        + text[decl.start() + len(decl.group(0).split()[0]) :]
    )
    code.write_text(text)

    project = load_hls_project(copy)
    assert project.graph is not None
    assert (
        project.graph.nodes[0].kind == "dense_da"
    )  # a wrapping declaration: run statement by statement
    x = _inputs(project, 4000)
    got = emulate_project(project, x).outputs
    assert _mismatches(got, da_csim.predict(x)) > len(x) // 4
    assert _mismatches(got, CSimulation(copy).predict(x)) == 0


def _damaged(da_project, tmp_path, old: str, new: str):
    copy = tmp_path / "prj"
    shutil.copytree(da_project / "firmware", copy / "firmware",
                    ignore=shutil.ignore_patterns("*.so", "ap_types"))  # fmt: skip
    code = copy / CODE_GEN
    text = code.read_text()
    assert old in text
    code.write_text(text.replace(old, new, 1))
    line = text[: text.index(old)].count("\n") + 1
    return copy, line


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (" = model_inp[0];", " = model_inp[0] ^ model_inp[1];", r"cannot read '\^ model_inp\[1\]'"),
        (" = model_inp[1];", " = v99;", r"'v99' is not declared before this statement"),
        (" = model_inp[2];", " = model_inp[40];", r"model_inp\[40\] is not one of the 12 inputs"),
        ("#pragma HLS INLINE", "return;", r"statement 'return' of dense_da_2 is not a declaration"),
    ],
)
def test_malformed_da_code_gives_one_line_naming_file_and_line(
    da_project, tmp_path, old, new, problem
):
    copy, line = _damaged(da_project, tmp_path, old, new)
    with pytest.raises(ValueError, match=rf"nnet_code_gen\.h:{line}: .*{problem}") as err:
        load_hls_project(copy)
    assert "\n" not in str(err.value)


def test_missing_da_function_names_the_call(da_project, tmp_path):
    copy, _ = _damaged(da_project, tmp_path, "void dense_da_5(", "void dense_da_50(")
    with pytest.raises(ValueError, match=r"da_top\.cpp:\d+: the distributed-arithmetic function dense_da_5 is "
                                         r"defined in no header"):  # fmt: skip
        load_hls_project(copy)


# ----------------------------------------------------------------------------- l1ad's own projects


def _l1ad_da_project(frontend: str, root):
    """The trigger's networks (shrunk 57-8-3-8-57 pair) as ``l1ad firmware`` writes them: DA by default."""
    from firmware.convert import ConversionSettings
    from firmware.defaults import DEFAULT_STRATEGY
    from firmware.models import load_qonnx_pair, qkeras_pair_from_spec
    from firmware.project import write_project
    from tests.test_emulation_trigger_csim import _model, _words

    assert DEFAULT_STRATEGY == "distributed_arithmetic"
    spec, weights = _model(narrow_accumulator=False)
    if frontend == "keras":
        net = qkeras_pair_from_spec(spec, weights)
    else:
        from quantize.brevitas_model import BrevitasPair, export_qonnx

        exported = export_qonnx(BrevitasPair(spec).load_quantized(weights), root / "qonnx")
        net = load_qonnx_pair(list(exported.values()))
    words = _words(spec, 4000)
    path = write_project(
        root / "prj", spec, weights, net, ConversionSettings(), words[:20], frontend
    ).path
    return spec, weights, path, words


@pytest.mark.parametrize("frontend", ["keras", "qonnx"])
def test_l1ad_da_project_equals_the_spec_emulator(frontend, tmp_path):
    """Read from its files alone, l1ad's default project gives the reconstructions the FirmwareSpec's
    emulator gives (a second implementation, checked against the trigger's C simulation elsewhere)."""
    from emulation import TriggerEmulator

    spec, weights, path, words = _l1ad_da_project(frontend, tmp_path)
    project = load_hls_project(path)
    assert project.graph is not None
    dense = [n for n in project.graph.nodes if n.kind.startswith("dense")]
    assert len(dense) == 2 * len(spec.autoencoders[0].layers) and all(
        "program" in n.params for n in dense
    )
    reference = TriggerEmulator(spec, weights)
    x = reference.inputs(words)
    # empty events, and inputs at both ends of input_t
    assert (
        (words == 0).all(axis=1).any()
        and (x == spec.input.max_int).any()
        and (x == spec.input.min_int).any()
    )
    outputs = project.graph.run([x])
    for ae, got in enumerate(outputs):
        assert _mismatches(got, reference.reconstruction(x, ae)) == 0, f"autoencoder {ae + 1}"


@pytest.mark.hls
def test_l1ad_keras_da_project_equals_its_csim_on_4000_events(tmp_path):
    from emulation import TriggerEmulator, to_float

    spec, weights, path, words = _l1ad_da_project("keras", tmp_path)
    x = to_float(TriggerEmulator(spec, weights).inputs(words), spec.input)
    assert (
        (words == 0).all(axis=1).any()
        and (x == spec.input.max_value).any()
        and (x == spec.input.min_value).any()
    )
    expected = CSimulation(path).predict(x)
    assert _mismatches(emulate_project(load_hls_project(path), x).outputs, expected) == 0


# ----------------------------------------------------------------------------- every statement form vs g++

FORMS_H = r"""
#include "ap_fixed.h"
#include "ap_int.h"
#include "nnet_utils/nnet_function_stubs.h"
namespace nnet {
template <typename inp_t, typename out_t>
void dense_da_1(inp_t model_inp[4], out_t model_out[7]) { // hand-written: every form da4ml writes
    #pragma HLS INLINE
    ap_fixed<8,3,AP_RND,AP_SAT> v0 = model_inp[0]; // rounds and saturates the input
    ap_fixed<11,4> v1 = model_inp[1] - bit_shift<-2>(v0);
    ap_fixed<10,4> v2 = v0 > 0 ? ap_fixed<10,4>(v0) : ap_fixed<10,4>(0);
    ap_fixed<12,5> v3 = v1 > 0 ? ap_fixed<12,5>(0) : ap_fixed<12,5>(-v1);
    ap_fixed<12,5> v4 = v0[7] ? ap_fixed<12,5>(v2) : ap_fixed<12,5>(-bit_shift<1>(v3));
    ap_fixed<20,8> v5 = v2 * v3;
    ap_fixed<6,2> v6 = 1.375;
    ap_fixed<7,2> v7 = v5 - ap_ufixed<4,3>(6.5) + bit_shift<-3>(v4); // wraps
    ap_int<6> v8 = model_inp[2];
    ap_fixed<9,5,AP_TRN_ZERO,AP_SAT_SYM> v9 = bit_shift<2>(v8) + (v6 - v1);
    ap_ufixed<5,2> v10 = model_inp[3];
    ap_fixed<7,3> v11 = -v10;
    model_out[0] = ap_fixed<12,6>(v7);
    model_out[1] = v9;
    model_out[2] = ap_fixed<9,3,AP_RND_ZERO>(-bit_shift<-1>(v5));
    model_out[3] = v11 * v6;
    model_out[4] = 0;
    model_out[5] = v4;
    model_out[6] = ap_fixed<8,2,AP_RND_INF,AP_SAT>(v8 * v10 - v3);
}
}
"""

FORMS_MAIN = r"""
#include <cstdio>
#include "firmware/nnet_utils/nnet_code_gen.h"
int main() {
    double x[4];
    while (scanf("%lf %lf %lf %lf", &x[0], &x[1], &x[2], &x[3]) == 4) {
        ap_fixed<14,5> in[4];
        ap_fixed<10,4,AP_RND_CONV,AP_SAT> out[7];
        for (int i = 0; i < 4; i++) in[i] = x[i];
        nnet::dense_da_1<ap_fixed<14,5>, ap_fixed<10,4,AP_RND_CONV,AP_SAT> >(in, out);
        for (int j = 0; j < 7; j++) printf("%a ", out[j].to_double());
        printf("\n");
    }
}
"""


@pytest.mark.hls
def test_every_da_statement_form_equals_gxx_on_ap_types(tmp_path):
    """ReLU, multiplexer, products, constants, rounding/saturating/wrapping declarations, ap_int and
    ap_ufixed operands: the statement interpreter against the same function compiled by g++."""
    import subprocess
    from pathlib import Path

    import hls4ml

    from emulation.fixed import FixedType, from_float, to_float
    from emulation.hls_text import TypeTable
    from emulation.layers.da import read_program, run_program

    templates = Path(hls4ml.__file__).parent / "templates" / "vivado"
    (tmp_path / "firmware" / "nnet_utils").mkdir(parents=True)
    (tmp_path / CODE_GEN).write_text(FORMS_H)
    (tmp_path / "main.cpp").write_text(FORMS_MAIN)
    subprocess.run(["g++", "-O1", "-std=c++14", "-w", f"-I{tmp_path}", f"-I{templates}", f"-I{templates / 'ap_types'}",
                    str(tmp_path / "main.cpp"), "-o", str(tmp_path / "forms")], check=True)  # fmt: skip
    in_t, out_t = FixedType(14, 5), FixedType(10, 4, True, "AP_RND_CONV", "AP_SAT")
    rng = np.random.default_rng(2)
    grid = rng.integers(in_t.min_int, in_t.max_int + 1, (4000, 4)) * in_t.lsb
    x = np.concatenate(
        [np.zeros((1, 4)), np.full((1, 4), in_t.max_value), np.full((1, 4), in_t.min_value), grid]
    )
    run = subprocess.run([str(tmp_path / "forms")], input="\n".join(" ".join(repr(float(v)) for v in r) for r in x),
                         capture_output=True, text=True, check=True)  # fmt: skip
    expected = np.array(
        [[float.fromhex(v) for v in line.split()] for line in run.stdout.splitlines()]
    )
    program = read_program(
        tmp_path / "firmware", "dense_da_1", in_t, out_t, TypeTable().resolve, 7, "test"
    )
    assert program.statements[0].type == FixedType(8, 3, True, "AP_RND", "AP_SAT")
    got = to_float(run_program(program, from_float(x, in_t)), out_t)
    assert expected.shape == got.shape == (len(x), 7)
    for j in range(7):
        differ = np.flatnonzero(got[:, j] != expected[:, j])
        assert differ.size == 0, f"model_out[{j}]: {differ.size} events differ, first {differ[:3]}"
    assert len({tuple(r) for r in expected[:, [0, 2, 5]]}) > 100  # not constant outputs


# ----------------------------------------------------------------------------- convolutions


@pytest.mark.hls
def test_da_convolutions_equal_csim_both_ways(tmp_path):
    """Conv2D ('same' padding) and Conv1D (stride 2) with the DA strategy: hls4ml's ``conv2d_cl``/
    ``conv1d_cl`` wrappers, generated ``fill_buffer`` classes and ``dense_da`` functions."""
    from quantize.keras_compat import import_qkeras, use_legacy_keras
    from tests.test_emulation_layers import assert_bit_exact, convert, events

    keras, qkeras = use_legacy_keras(), import_qkeras()
    keras.utils.set_random_seed(6)
    q = qkeras.quantized_bits(6, 2, alpha=1)
    x = keras.Input((5, 4, 2), name="im")
    h = qkeras.QConv2D(
        3, (3, 2), padding="same", kernel_quantizer=q, bias_quantizer=q, name="conv2d"
    )(x)
    h = qkeras.QActivation(qkeras.quantized_relu(8, 3), name="relu")(h)
    h = keras.layers.Reshape((20, 3))(h)
    h = qkeras.QConv1D(
        2, 3, strides=2, padding="same", kernel_quantizer=q, bias_quantizer=q, name="conv1d"
    )(h)
    model = keras.Model(x, keras.layers.Flatten()(h))
    da = {"Strategy": "distributed_arithmetic"}
    result = "fixed<12,4,RND_CONV,SAT>"
    hls_model = convert(
        model, tmp_path / "prj", result, {"conv2d": da, "conv1d": da}, backend="Vivado"
    )
    calls = re.findall(
        r"nnet::(conv\w+)<", (tmp_path / "prj" / "firmware" / "myproject.cpp").read_text()
    )
    assert calls == ["conv2d_cl", "conv1d_cl"]
    project = load_hls_project(tmp_path / "prj")
    assert project.graph is not None
    assert [n.kind for n in project.graph.nodes if "program" in n.params] == ["conv", "conv"]
    inputs = events(4000, 40, project.input_type, seed=7)
    overflows = assert_bit_exact(hls_model, tmp_path / "prj", [inputs])  # integer and float paths
    assert overflows["conv2d.result"] > 0
    literal = _statement_by_statement(project.graph).emulate([inputs])[0]
    assert _mismatches(literal, project.graph.emulate([inputs])[0]) == 0
