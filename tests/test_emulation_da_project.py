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
    """The graph with every DA layer run by its statement interpreter instead of the dense kernel."""
    nodes = tuple(
        dataclasses.replace(n, kind="dense_da") if "program" in n.params else n
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
    assert result.overflows.overflows("dense0.result") > 0  # the saturating result cast is exercised
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
    text = text[: decl.start()] + "ap_fixed<6,2>" + text[decl.start() + len(decl.group(0).split()[0]) :]
    code.write_text(text)

    project = load_hls_project(copy)
    assert project.graph is not None
    assert project.graph.nodes[0].kind == "dense_da"  # a wrapping declaration: run statement by statement
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
def test_malformed_da_code_gives_one_line_naming_file_and_line(da_project, tmp_path, old, new, problem):
    copy, line = _damaged(da_project, tmp_path, old, new)
    with pytest.raises(ValueError, match=rf"nnet_code_gen\.h:{line}: .*{problem}") as err:
        load_hls_project(copy)
    assert "\n" not in str(err.value)


def test_missing_da_function_names_the_call(da_project, tmp_path):
    copy, _ = _damaged(da_project, tmp_path, "void dense_da_5(", "void dense_da_50(")
    with pytest.raises(ValueError, match=r"da_top\.cpp:\d+: the distributed-arithmetic function dense_da_5 is "
                                         r"defined in no header"):  # fmt: skip
        load_hls_project(copy)
