"""Projects written by hls4ml from plain QKeras models are emulated bit-exactly (vs its C simulation)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from emulation import (
    FixedType,
    emulate_project,
    from_float,
    load_hls_project,
    to_float,
)
from firmware.csim import CSimulation, build_qkeras_dense, compare_plain_csim, write_qkeras_project

N_IN = 12


def _events(n: int, input_type: FixedType, seed: int = 0) -> np.ndarray:
    """Zeros, saturating/wrapping values, exact ties of input_t, grid values and random floats."""
    rng = np.random.default_rng(seed)
    k = n // 6
    lsb = input_type.lsb
    grid = rng.integers(input_type.min_int, input_type.max_int + 1, (k, N_IN)) * lsb
    return np.concatenate(
        [
            np.zeros((k, N_IN)),
            rng.uniform(-1e3, 1e3, (k, N_IN)),  # beyond input_t: wraps in C simulation
            grid,
            grid + lsb / 2,  # ties
            rng.normal(0, 3, (k, N_IN)),
            rng.normal(0, 20, (n - 5 * k, N_IN)),
        ]
    )


@pytest.fixture(scope="module")
def plain_project(tmp_path_factory):
    """hls4ml's defaults (auto accumulators) for a plain QKeras model, odd top-function name."""
    model = build_qkeras_dense([N_IN, 16, 8, 5], seed=1)
    sim = write_qkeras_project(
        model, tmp_path_factory.mktemp("plain") / "prj", project_name="anomaly_top"
    )
    return sim


@pytest.fixture(scope="module")
def narrow_project(tmp_path_factory):
    """Saturating, rounding accumulators and results; types in a namespace; weights only in .h files."""
    model = build_qkeras_dense([N_IN, 10, 6, 3], seed=2, output_bits=(10, 4))
    precision = {
        "dense0": {"accum": "fixed<14,5,RND,SAT>", "result": "fixed<12,5,RND_CONV,SAT_SYM>"},
        "dense1": {"accum": "fixed<16,6,RND_ZERO,WRAP>", "result": "fixed<10,4,TRN_ZERO,SAT>"},
        "relu1": {"result": "ufixed<6,2,RND_INF,SAT_ZERO>"},
        "dense2": {"accum": "fixed<12,6,RND_MIN_INF,SAT>"},
    }
    return write_qkeras_project(
        model, tmp_path_factory.mktemp("narrow") / "prj", project_name="trig", precision=precision,
        namespace="l1trig", write_weights_txt=False,
    )  # fmt: skip


@pytest.mark.hls
@pytest.mark.parametrize("which", ["plain_project", "narrow_project"])
def test_emulator_equals_hls4ml_csim_on_12000_events(which, request):
    sim: CSimulation = request.getfixturevalue(which)
    project = load_hls_project(sim.path)
    x = _events(12_000, project.input_type, seed=3)
    expected = sim.predict(x)
    result = emulate_project(project, x)
    mismatched = np.any(result.outputs != expected, axis=1)
    assert mismatched.sum() == 0, (
        f"{mismatched.sum()} of {len(x)} events differ, first {np.flatnonzero(mismatched)[:5]}"
    )
    # The inputs really exercised overflow (wrapping inputs, saturating layers).
    assert result.overflows.overflows("input") > 0
    if which == "narrow_project":
        assert result.overflows.overflows("dense0.accum") > 0


@pytest.mark.hls
def test_project_reader_finds_top_function_namespace_and_header_weights(narrow_project):
    project = load_hls_project(narrow_project.path)
    assert project.top == "trig"
    assert "namespace l1trig" in (narrow_project.path / "firmware" / "defines.h").read_text()
    assert not list((narrow_project.path / "firmware" / "weights").glob("*.txt"))
    kinds = [type(layer).__name__ for layer in project.layers]
    assert kinds.count("DenseLayer") == 3
    dense0 = project.layers[0]
    assert dense0.accum_type == FixedType(14, 5, True, "AP_RND", "AP_SAT")
    assert dense0.weight.shape == (N_IN, 10)


@pytest.mark.hls
def test_unsupported_layer_and_missing_files_give_clear_errors(plain_project, tmp_path):
    copy = tmp_path / "prj"
    shutil.copytree(
        plain_project.path / "firmware",
        copy / "firmware",
        ignore=shutil.ignore_patterns("*.so", "ap_types", "nnet_utils"),
    )
    top = copy / "firmware" / "anomaly_top.cpp"
    text = top.read_text()
    top.write_text(text.replace("nnet::relu<", "nnet::layernormalize<", 1))
    with pytest.raises(
        ValueError, match=r"layer 'relu0' \(nnet::layernormalize\) is not supported"
    ):
        load_hls_project(copy)
    top.write_text(text)
    weights = sorted((copy / "firmware" / "weights").glob("w*.txt"))[0]
    weights.unlink()
    weights.with_suffix(".h").unlink()
    with pytest.raises(
        ValueError,
        match=rf"weights '{weights.stem}' are declared in no firmware/weights/\*.h header",
    ):
        load_hls_project(copy)
    (copy / "firmware" / "parameters.h").unlink()
    with pytest.raises(ValueError, match=r"parameters\.h is missing"):
        load_hls_project(copy)
    with pytest.raises(ValueError, match="does not exist"):
        load_hls_project(tmp_path / "nothing")
    with pytest.raises(ValueError, match=r"hls4ml_config\.yml"):
        CSimulation(copy)


@pytest.mark.hls
def test_inputs_are_cast_to_input_type_like_the_csim(plain_project):
    project = load_hls_project(plain_project.path)
    x = np.array(
        [[0.1, -0.1, 1e3, -1e3, 31.99, -32.0, 1e-9, -1e-9, 0.5, 2.0**-11, -(2.0**-11), 7.0]]
    )
    m = from_float(x, project.input_type)
    # ap_fixed<16,6> from double: truncation towards -inf, then wrap
    assert to_float(m, project.input_type)[0, 6] == 0.0
    assert to_float(m, project.input_type)[0, 7] == -project.input_type.lsb
    expected = plain_project.predict(x)
    assert np.array_equal(emulate_project(project, x).outputs, expected)


@pytest.mark.hls
def test_cli_emulate_writes_exact_outputs_and_compares_with_csim(plain_project, tmp_path):
    from typer.testing import CliRunner

    from l1ad.cli import app

    project = load_hls_project(plain_project.path)
    x = _events(3000, project.input_type, seed=5)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    args = [
        "emulate",
        "--model",
        str(plain_project.path),
        "--inputs",
        str(tmp_path / "x.npy"),
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, [*args, "--compare-csim", "300"])
    assert result.exit_code == 0, result.output
    assert "300 events compared, 0 mismatches" in result.output
    y = np.load(out)
    assert y.dtype == np.float64 and y.shape == (3000, project.n_outputs)
    assert np.array_equal(y[:300], plain_project.predict(x[:300]))

    np.save(tmp_path / "bad.npy", x[:, :5])
    bad = CliRunner().invoke(
        app,
        [
            "emulate",
            "--model",
            str(plain_project.path),
            "--inputs",
            str(tmp_path / "bad.npy"),
            "--out",
            str(out),
        ],
    )
    assert bad.exit_code == 1 and "expects (N, 12)" in bad.output
    missing = CliRunner().invoke(app, ["emulate", "--model", str(plain_project.path)])
    assert missing.exit_code == 1 and "--inputs and --out are required" in missing.output


@pytest.mark.hls
def test_emulate_plain_from_python_matches_csim_and_writes_only_the_output(plain_project, tmp_path):
    from rich.console import Console

    from emulation import emulate_plain, load_inputs

    project = load_hls_project(plain_project.path)
    x = _events(1200, project.input_type, seed=6)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out" / "y.npy"
    summary = emulate_plain(
        str(plain_project.path), str(tmp_path / "x.npy"), out, console=Console(quiet=True)
    )
    assert summary["events_emulated"] == 1200 and summary["events_per_s"] > 0
    csim = compare_plain_csim(
        plain_project.path, load_inputs(tmp_path / "x.npy"), np.load(out), 400
    )
    assert csim["csim_events_compared"] == 400 and csim["csim_mismatches"] == 0
    assert summary["overflows"]["input"]["overflows"] > 0  # wrapping inputs were counted
    y = np.load(out)
    assert y.dtype == np.float64 and y.shape == (1200, project.n_outputs)
    assert np.array_equal(
        y, plain_project.predict(x)
    )  # every event, not only the 400 compared inside
    assert [p.name for p in out.parent.iterdir()] == [
        "y.npy"
    ]  # written atomically: no temporary left


def test_load_inputs_names_missing_unreadable_and_non_numeric_files(tmp_path):
    from emulation import load_inputs

    with pytest.raises(ValueError, match="inputs file does not exist"):
        load_inputs(tmp_path / "missing.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ValueError, match=r"not a readable \.npy array"):
        load_inputs(tmp_path / "text.npy")
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="expected a numeric array"):
        load_inputs(tmp_path / "strings.npy")
    np.save(tmp_path / "ints.npy", np.arange(6).reshape(2, 3))
    assert load_inputs(str(tmp_path / "ints.npy")).shape == (2, 3)


@pytest.mark.hls
@pytest.mark.parametrize("which", ["plain_project", "narrow_project"])
def test_dense_chain_as_graph_runs_the_same_as_the_layer_executor(which, request):
    """One graph for every project: a dense/ReLU chain expressed as graph nodes gives the same bits."""
    from emulation.project_graph import project_graph

    project = load_hls_project(request.getfixturevalue(which).path)
    assert project.graph is None and project.layers
    graph = project_graph(project)
    assert [n.kind for n in graph.nodes].count("dense") == 3
    x = _events(3000, project.input_type, seed=8)
    assert np.array_equal(graph.emulate([x])[0], emulate_project(project, x).outputs)
