"""A project in the layout earlier hls4ml versions (0.x) wrote is read and emulated bit-exactly.

hls4ml 1.3 writes the project; the test rewrites it into the earlier layout, as
published Level-1 networks ship it:

- sizes as named constants from ``defines.h`` (``input_t input_1[N_INPUT_1_1]``,
  ``#define N_LAYER_2 16``), one of them an expression (``N_LAYER_5*2``), also in the
  config structs and the weight declarations;
- the dense strategy chosen by ``static const unsigned strategy = nnet::latency;`` in the
  config struct, with no ``kernel`` typedef, and ``nnet::dense`` dispatching on
  ``CONFIG_T::strategy`` (as hls4ml 0.x's ``nnet_dense.h`` did);
- weights only in ``weights/*.h`` initialisers (no ``.txt``, no ``load_weights_from_txt``);
- a renamed top function that also reports its sizes through scalar reference
  arguments (``unsigned short &const_size_in_1``), as hls4ml 0.x top functions did.

hls4ml's own C simulation (its ``build_lib.sh``) still compiles the rewritten project,
and the emulator must equal it on every event.
"""

from __future__ import annotations

import itertools
import re
import shutil

import numpy as np
import pytest

from emulation import (
    emulate_project,
    load_hls_project,
)
from emulation.hls_text import read_source, resolve_size
from firmware.csim import CSimulation, build_qkeras_dense, write_qkeras_project

SIZES = [12, 16, 8, 5]
NAMES = {12: "N_INPUT_1_1", 16: "N_LAYER_2", 8: "N_LAYER_5", 5: "N_LAYER_8"}
TOP = "l1_trigger_nn"


def _to_legacy_layout(prj) -> None:
    fw = prj / "firmware"
    defines = fw / "defines.h"
    numbers = "".join(
        f"#define {NAMES[n]} {'(N_LAYER_5*2)' if n == 16 else n}\n" for n in SIZES
    )  # N_LAYER_2 is an expression of N_LAYER_5
    text = defines.read_text()
    assert "// hls-fpga-machine-learning insert numbers\n" in text
    defines.write_text(text.replace("// hls-fpga-machine-learning insert numbers\n", numbers, 1))

    def named(match: re.Match) -> str:
        n = int(match.group(1))
        if n in NAMES:
            return f"[{NAMES[n]}]"
        pairs = [(a, b) for a, b in itertools.pairwise(SIZES) if a * b == n]
        return f"[{NAMES[pairs[0][0]]}*{NAMES[pairs[0][1]]}]" if pairs else match.group(0)

    for path in [fw / "myproject.cpp", fw / "myproject.h", *sorted((fw / "weights").glob("*.h"))]:
        path.write_text(re.sub(r"\[(\d+)\]", named, path.read_text()))

    params = fw / "parameters.h"
    text = params.read_text()
    text = re.sub(
        r"(static const unsigned n_(?:in|out) = )(\d+);",
        lambda m: m.group(1) + NAMES[int(m.group(2))] + ";",
        text,
    )
    text, n_kernels = re.subn(
        r"\n\s*template<class data_T, class res_T, class CONFIG_T>\n\s*using kernel = [^;]+;",
        "",
        text,
    )
    assert n_kernels == 3 and text.count("static const unsigned strategy = nnet::latency;") == 3
    params.write_text(text)

    # nnet::dense dispatching on CONFIG_T::strategy, as in hls4ml 0.x
    dense_h = fw / "nnet_utils" / "nnet_dense.h"
    text = dense_h.read_text()
    (prj.parent / "nnet_dense_1x.h").write_text(text)  # kept for the error test
    call = "CONFIG_T::template kernel<data_T, res_T, CONFIG_T>::dense(data, res, weights, biases);"
    assert call in text
    dispatch = (
        "if (CONFIG_T::strategy == nnet::latency) {\n"
        "        dense_latency<data_T, res_T, CONFIG_T>(data, res, weights, biases);\n"
        "    } else {\n"
        "        dense_resource<data_T, res_T, CONFIG_T>(data, res, weights, biases);\n"
        "    }"
    )
    dense_h.write_text(text.replace(call, dispatch))

    # weights only in the headers' initialisers
    for txt in (fw / "weights").glob("*.txt"):
        txt.unlink()
    for header in (fw / "weights").glob("*.h"):
        text = header.read_text()
        text, n = re.subn(
            r"#ifndef __SYNTHESIS__\n[^\n]*;\n#else\n([^\n]*\n)\n?#endif\n", r"\1", text
        )
        assert n == 1, header
        header.write_text(text)
    cpp = fw / "myproject.cpp"
    text, n_loads = re.subn(r"\n\s*nnet::load_weights_from_txt<[^;]*;", "", cpp.read_text())
    assert n_loads == 6
    cpp.write_text(text)

    # renamed top function with hls4ml 0.x's scalar size arguments
    out_name = re.search(r"result_t (\w+)\[", cpp.read_text()).group(1)
    for path in (fw / "myproject.cpp", fw / "myproject.h"):
        text = path.read_text().replace("void myproject(", f"void {TOP}(")
        text = re.sub(rf"(result_t {out_name}\[N_LAYER_8\])\n",
                      r"\1,\n    unsigned short &const_size_in_1,\n    unsigned short &const_size_out_1\n", text)  # fmt: skip
        path.write_text(text)
    text = cpp.read_text()
    cpp.write_text(text.replace("    // hls-fpga-machine-learning insert IO\n",
                                "    const_size_in_1 = N_INPUT_1_1;\n    const_size_out_1 = N_LAYER_8;\n", 1))  # fmt: skip
    bridge = prj / "myproject_bridge.cpp"
    text, n_calls = re.subn(r"\bmyproject\((\w+),(\w+)\);",
                            rf"unsigned short size_in, size_out;\n    {TOP}(\1, \2, size_in, size_out);", bridge.read_text())  # fmt: skip
    assert n_calls == 2
    bridge.write_text(text)


@pytest.fixture(scope="module")
def legacy_project(tmp_path_factory):
    model = build_qkeras_dense(SIZES, seed=11, output_bits=(12, 5))
    precision = {"dense1": {"accum": "fixed<18,7,RND,SAT>", "result": "fixed<14,6,RND_CONV,SAT>"}}
    prj = write_qkeras_project(
        model, tmp_path_factory.mktemp("legacy") / "prj", precision=precision, compile=False
    )
    _to_legacy_layout(prj)
    return CSimulation(prj)  # hls4ml's build_lib.sh compiles the rewritten C++


@pytest.mark.hls
def test_legacy_layout_is_read_and_emulated_exactly(legacy_project):
    fw = legacy_project.path / "firmware"
    assert (
        not list((fw / "weights").glob("*.txt"))
        and "using kernel" not in (fw / "parameters.h").read_text()
    )
    assert "input_t x[N_INPUT_1_1]" in (fw / "myproject.cpp").read_text()
    project = load_hls_project(legacy_project.path)
    assert project.top == TOP and (project.n_inputs, project.n_outputs) == (12, 5)
    assert [layer.n_out for layer in project.layers if hasattr(layer, "n_out")] == SIZES[1:]
    rng = np.random.default_rng(2)
    lsb = project.input_type.lsb
    x = np.concatenate([rng.normal(0, 4, (1500, 12)), rng.uniform(-1e3, 1e3, (500, 12)),
                        rng.integers(-3000, 3000, (500, 12)) * lsb + lsb / 2, np.zeros((10, 12))])  # fmt: skip
    expected = legacy_project.predict(x)
    result = emulate_project(project, x)
    differ = np.any(result.outputs != expected, axis=1)
    assert differ.sum() == 0, (
        f"{differ.sum()} of {len(x)} events differ, first {np.flatnonzero(differ)[:5]}"
    )


def _events(n_in: int, lsb: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 4, (600, n_in)), rng.uniform(-1e3, 1e3, (200, n_in)),
                           rng.integers(-3000, 3000, (200, n_in)) * lsb + lsb / 2, np.zeros((10, n_in))])  # fmt: skip


def _assert_equal(result: np.ndarray, expected: np.ndarray) -> None:
    differ = np.any(result != expected, axis=1)
    assert differ.sum() == 0, (
        f"{differ.sum()} of {len(result)} events differ, first {np.flatnonzero(differ)[:5]}"
    )


@pytest.mark.hls
def test_legacy_resource_dense_is_read_by_the_graph_and_emulated_exactly(legacy_project, tmp_path):
    # hls4ml 0.x chose Resource by the config's strategy constant; the dense chain reader
    # hands it to the graph reader, which must still read the legacy layout (sizes from
    # #define expressions, weights from header initialisers, scalar size arguments).
    copy = tmp_path / "prj"
    shutil.copytree(legacy_project.path, copy, ignore=shutil.ignore_patterns("*.so"))
    params = copy / "firmware" / "parameters.h"
    params.write_text(params.read_text().replace("nnet::latency", "nnet::resource", 1))
    resource = CSimulation(copy)  # hls4ml's build_lib.sh compiles the edited project
    project = load_hls_project(copy)
    assert project.layers == () and project.graph is not None and project.top == TOP
    dense = [n for n in project.graph.nodes if n.kind == "dense"]
    assert [n.params["strategy"] for n in dense] == ["resource", "latency", "latency"]
    assert [n.size for n in dense] == SIZES[1:]
    x = _events(12, project.input_type.lsb, 3)
    _assert_equal(emulate_project(project, x).outputs, resource.predict(x))


@pytest.mark.hls
def test_edited_legacy_projects_name_file_line_and_reason_or_are_read(legacy_project, tmp_path):
    copy = tmp_path / "prj"
    shutil.copytree(legacy_project.path / "firmware", copy / "firmware",
                    ignore=shutil.ignore_patterns("*.so", "ap_types"))  # fmt: skip
    fw = copy / "firmware"
    defines = fw / "defines.h"
    text = defines.read_text()
    defines.write_text(text.replace("#define N_LAYER_5 8\n", ""))
    # the first use: config2's n_out = N_LAYER_2, defined as (N_LAYER_5*2)
    p_lines = (fw / "parameters.h").read_text().splitlines()
    config2 = next(k for k, s in enumerate(p_lines, 1) if re.match(r"struct config2\b", s))
    with pytest.raises(ValueError, match=rf"parameters\.h:{config2}: size 'N_LAYER_2' uses 'N_LAYER_5', "
                                         "which no #define or constant of the project defines"):  # fmt: skip
        load_hls_project(copy)
    defines.write_text(text)

    cpp = fw / "myproject.cpp"
    c_text = cpp.read_text()
    line = next(k for k, s in enumerate(c_text.splitlines(), 1) if f"void {TOP}(" in s)
    cpp.write_text(c_text.replace("input_t x[N_INPUT_1_1]", "hls::stream<input_t> &x"))
    with pytest.raises(
        ValueError,
        match=rf"myproject\.cpp:{line + 1}: argument .* is an hls::stream: an io_stream project",
    ):
        load_hls_project(copy)

    # a second input no layer reads: the chain reader declines, the graph reads it and runs
    # the network on the first input, as the compiled function does
    cpp.write_text(
        c_text.replace(
            "input_t x[N_INPUT_1_1],", "input_t x[N_INPUT_1_1], input_t x2[N_INPUT_1_1],"
        )
    )
    project = load_hls_project(copy)
    assert [p.name for p in project.graph.inputs] == ["x", "x2"] and project.n_inputs == 24
    x = _events(12, project.input_type.lsb, 4)
    both = np.concatenate([x, np.random.default_rng(5).normal(0, 4, x.shape)], axis=1)
    _assert_equal(emulate_project(project, both).outputs, legacy_project.predict(x))
    cpp.write_text(c_text)

    # hls4ml 1.x's nnet_dense.h dispatches through the kernel typedef, which this config lacks
    shutil.copy(legacy_project.path.parent / "nnet_dense_1x.h", fw / "nnet_utils" / "nnet_dense.h")
    with pytest.raises(
        ValueError, match=r"parameters\.h:\d+: config config2 has no kernel typedef"
    ):
        load_hls_project(copy)
    shutil.copy(
        legacy_project.path / "firmware" / "nnet_utils" / "nnet_dense.h",
        fw / "nnet_utils" / "nnet_dense.h",
    )

    header = sorted((fw / "weights").glob("w*.h"))[0]
    h_text = header.read_text()
    header.write_text(re.sub(r" = \{[^}]*\}", "", h_text))
    with pytest.raises(
        ValueError, match=rf"{header.name}:\d+: weights '{header.stem}' are declared without values"
    ):
        load_hls_project(copy)


def test_resolve_size_reads_literals_constants_and_expressions(tmp_path):
    header = tmp_path / "defines.h"
    header.write_text(
        "#ifndef DEFINES_H_\n#define DEFINES_H_\n#define N_INPUT_1_1 57u\n#define N_HIDDEN (N_INPUT_1_1*2 - 2)\n"
        "#ifdef __SYNTHESIS__\n#define N_OUT 3\n#else\n#define N_OUT 4\n#endif\n"
        "/* #define N_COMMENTED 9 */\n#endif\n"
    )
    macros: dict[str, str] = {}
    source = read_source(header, macros)
    assert "N_OUT 3" not in source.text and source.text.count("\n") == header.read_text().count(
        "\n"
    )
    assert resolve_size("N_HIDDEN", macros) == 112
    assert resolve_size("N_OUT", macros) == 4  # the C simulation's branch: __SYNTHESIS__ undefined
    assert resolve_size("DIV_ROUNDUP(N_INPUT_1_1, 8)", macros) == 8
    assert resolve_size(" 12 ", {}) == 12
    with pytest.raises(ValueError, match=r"x\.h:3: size 'N_COMMENTED\*2' uses 'N_COMMENTED'"):
        resolve_size("N_COMMENTED*2", macros, "x.h:3")
