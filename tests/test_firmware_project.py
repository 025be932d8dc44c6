"""hls4ml projects of the whole trigger: generation for both backends and frontends, bit-exact C simulation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from emulation import TriggerEmulator
from emulation.events import edge_words
from firmware.convert import ConversionSettings
from firmware.example import default_model, toy_words
from firmware.models import load_keras_pair, load_qonnx_pair
from firmware.project import CSim, build_testbench, compare, write_project

N_CSIM = 10_000


@pytest.fixture(scope="module")
def default():
    return default_model(seed=0, n_fit=3000)


@pytest.fixture(scope="module")
def exported(default, tmp_path_factory):
    """The quantize package's own exports of the pair: QONNX (Brevitas) and Keras .h5 (QKeras)."""
    from quantize.brevitas_model import BrevitasPair, export_qonnx
    from quantize.qkeras_model import QKerasPair, save_keras

    spec, weights = default
    root = tmp_path_factory.mktemp("exports")
    onnx = export_qonnx(BrevitasPair(spec).load_quantized(weights), root / "qonnx")
    keras = save_keras(QKerasPair(spec).load_quantized(weights), root / "keras")
    return {"qonnx": list(onnx.values()), "keras": list(keras.values())}


def _model(exported, frontend):
    paths = exported[frontend]
    return load_qonnx_pair(paths) if frontend == "qonnx" else load_keras_pair(paths)


def _words(spec, n):
    rng = np.random.default_rng(5)
    return np.concatenate([toy_words(n - n // 5, 3), edge_words(spec, rng, n // 5)])


@pytest.mark.hls
@pytest.mark.parametrize("frontend", ["keras", "qonnx"])
@pytest.mark.parametrize("backend", ["Vitis", "Vivado"])
def test_project_holds_trigger_top_with_spec_types(default, exported, frontend, backend, tmp_path):
    spec, weights = default
    words = _words(spec, 50)
    # both strategies on both frontends (DA with Vitis, Latency with Vivado)
    strategy = "latency" if backend == "Vivado" else "distributed_arithmetic"
    settings = ConversionSettings(backend=backend, clock_period_ns=4.0, strategy=strategy)
    project = write_project(
        tmp_path / "prj", spec, weights, _model(exported, frontend), settings, words, frontend
    )
    root = project.path
    for rel in (
        "firmware/trigger_top.cpp",
        "firmware/trigger_top.h",
        "firmware/trigger_nets.cpp",
        "trigger_top_test.cpp",
        "build_prj.tcl",
        "Makefile",
        "tb_data/tb_input_features.dat",
        "tb_data/tb_output_predictions.dat",
    ):
        assert (root / rel).is_file(), rel
    assert not list(tmp_path.glob(".prj.*")), "no partial directory left behind"
    assert 'set project_name "trigger_top"' in (root / "project.tcl").read_text()
    assert f'set backend "{backend.lower()}"' in (root / "project.tcl").read_text()
    assert "add_files firmware/trigger_nets.cpp" in (root / "build_prj.tcl").read_text()
    top = (root / "firmware" / "trigger_top.cpp").read_text()
    assert "#pragma HLS PIPELINE II=1" in top and "trigger_nets(x, xhat1, xhat2);" in top
    defines = (root / "firmware" / "defines.h").read_text()
    # every dense layer's accumulator and weights come from the spec, not hls4ml's inference
    d = spec.autoencoders[0].layers[0]
    acc = f"ap_fixed<{d.accumulator.width},{d.accumulator.integer}>"
    assert acc in defines
    if strategy == "latency":
        assert re.search(rf"typedef ap_fixed<{d.weight.width},{d.weight.integer}[,>]", defines)
    else:  # the weights are constants of da4ml's shift-and-add code, not typed arrays (QONNX's bias
        # additions stay hls4ml layers of their own, with their s*/b* files)
        assert not list((root / "firmware" / "weights").glob("w*"))
        assert "void dense_da_" in (root / "firmware/nnet_utils/nnet_code_gen.h").read_text()
    act = spec.autoencoders[0].layers[0].activation_result
    assert f"ap_ufixed<{act.width},{act.integer},AP_RND_CONV,AP_SAT" in defines
    assert len((root / "tb_data/tb_input_features.dat").read_text().splitlines()) == len(words)


@pytest.mark.hls
@pytest.mark.parametrize(
    ("frontend", "backend", "strategy"),
    [
        pytest.param("keras", "Vitis", "distributed_arithmetic", marks=pytest.mark.slow),
        pytest.param("qonnx", "Vivado", "distributed_arithmetic", marks=pytest.mark.slow),
        ("keras", "Vivado", "latency"),
    ],
)
def test_csim_bit_exact_with_quantized_model_on_10k_events_with_edges(
    default, exported, frontend, backend, strategy, tmp_path
):
    """The default trigger (57-16-4-16-57 pair), each dense-layer strategy, against the emulator."""
    spec, weights = default
    words = _words(spec, N_CSIM)
    assert (words == 0).all(axis=1).any(), "all-empty events included"
    assert (words[:, 0::3] == spec.hardware_input.max_int).any(), "saturating pT included"
    settings = ConversionSettings(backend=backend, strategy=strategy)
    reference = TriggerEmulator(spec, weights)
    project = write_project(
        tmp_path / "prj", spec, weights, _model(exported, frontend), settings, words[:300], frontend
    )
    nets = (project.path / "firmware" / "trigger_nets.cpp").read_text()
    calls = re.findall(r"nnet::(dense\w*)<", nets)
    n_dense = sum(len(ae.layers) for ae in spec.autoencoders)
    # every dense layer is da4ml's shift-and-add function (DA) or hls4ml's nnet::dense (Latency)
    da = strategy == "distributed_arithmetic"
    assert len(calls) == n_dense and all(c.startswith("dense_da_") == da for c in calls), calls
    if da and frontend == "keras":
        # hls4ml's DA kernels are the cost estimate's solutions: a linear output layer (no cast
        # after it) costs in the project what it costs traced alone (firmware.trace.breakdown)
        import json

        from firmware.trace import breakdown

        kernels = json.loads((project.path / "l1ad_firmware.json").read_text())["da_kernel_luts"]
        assert len(kernels) == n_dense
        blocks = breakdown(spec, weights)  # (block, LUTs, depth); a layer's block: "ae1 NAME (AxB)"
        traced = {block.split()[1]: luts for block, luts, _ in blocks if " " in block}
        for ae in spec.autoencoders:
            last = ae.layers[-1]
            assert last.activation == "linear" and kernels[last.name] == traced[last.name] > 0
    got = CSim(project.path, spec)(words)
    expected = reference(words)
    assert compare(got, expected) == 0
    # the comparison is not vacuous: both regions and scores vary over the sample
    assert (
        len(np.unique(expected.r1)) > 100 and expected.trigger.any() and not expected.trigger.all()
    )
    assert expected.regions.any(axis=0).all()
    # the C testbench (g++, no vendor tools) passes on the written tb_data
    done = build_testbench(project.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "300 events, 0 mismatches" in done.stdout
    # ... and fails when one expected bit is wrong
    path = project.path / "tb_data" / "tb_output_predictions.dat"
    lines = path.read_text().splitlines()
    fields = lines[3].split()
    fields[-1] = str(1 - int(fields[-1]))  # flip the trigger bit of event 3
    lines[3] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    done = build_testbench(project.path)
    assert done.returncode == 1
    assert "MISMATCH event 3" in done.stdout and "300 events, 1 mismatches" in done.stdout


def test_emulator_matches_brevitas_and_qkeras_forward_passes(default):
    """The executor tb_data and the C simulation are checked against = the frameworks' quantized networks."""
    import torch

    from quantize.brevitas_model import BrevitasPair
    from quantize.qkeras_model import QKerasPair

    spec, weights = default
    words = _words(spec, 2000)
    emulator = TriggerEmulator(spec, weights)
    x = emulator.inputs(words)
    xf = np.ldexp(x.astype(np.float64), -spec.input.fractional)
    brevitas = BrevitasPair(spec).load_quantized(weights).eval()
    qkeras = QKerasPair(spec).load_quantized(weights)
    for ae in range(2):
        out_t = spec.autoencoders[ae].layers[-1].activation_result
        ref = np.ldexp(emulator.reconstruction(x, ae).astype(np.float64), -out_t.fractional)
        assert len(np.unique(ref)) > 10  # not vacuous
        with torch.no_grad():
            bv = brevitas.autoencoders[ae](torch.tensor(xf, dtype=torch.float32)).double().numpy()
        np.testing.assert_array_equal(bv, ref)
        np.testing.assert_array_equal(qkeras.predict(xf, ae).astype(np.float64), ref)


def test_project_refuses_weights_that_do_not_fit_the_spec(default, tmp_path):
    spec, weights = default
    short = {k: v for k, v in weights.items() if not k.startswith("ae2.")}
    with pytest.raises(ValueError, match="missing 'ae2"):
        write_project(tmp_path / "prj", spec, short, None, ConversionSettings(), _words(spec, 10))
    assert not (tmp_path / "prj").exists()


def test_conversion_repeats_until_every_layer_has_a_spec_type(
    default, exported, tmp_path, monkeypatch
):
    """A layer the probe does not show (an hls4ml optimizer can hide one) gets its type on a second pass;
    one that never gets a type is an error naming it."""
    import importlib

    conv = importlib.import_module(
        "firmware.convert"
    )  # the module (the package exports a function of that name)

    spec, _ = default
    real = conv.precision_config
    calls: list[dict] = []

    def hiding(hidden_for: int):
        def precision_config(spec, hls_model):
            config = real(spec, hls_model)
            calls.append(dict(config))
            if len(calls) <= hidden_for:
                config.pop(hidden)
            return config

        return precision_config

    probe_config = real(
        spec, conv.convert(_model(exported, "keras"), spec, tmp_path / "p0", ConversionSettings())
    )
    hidden = sorted(probe_config)[0]
    monkeypatch.setattr(conv, "precision_config", hiding(1))
    hls_model = conv.convert(_model(exported, "keras"), spec, tmp_path / "p1", ConversionSettings())
    assert len(calls) == 2  # the probe, then one repeat that found the hidden layer
    layer_names = hls_model.config.config["HLSConfig"]["LayerName"]
    assert layer_names[hidden] == probe_config[hidden]
    assert {layer.name for layer in hls_model.get_layers()} <= set(layer_names)

    calls.clear()
    monkeypatch.setattr(conv, "precision_config", hiding(99))
    with pytest.raises(ValueError, match=f"hls4ml layers without a FirmwareSpec type: .*{hidden}"):
        conv.convert(_model(exported, "keras"), spec, tmp_path / "p2", ConversionSettings())
    assert len(calls) == 4  # the probe and three repeats, then it gives up
