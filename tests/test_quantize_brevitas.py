"""Brevitas pair: on its declared grids, equal to the trigger emulator and to its QONNX export."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from emulation import TriggerEmulator, input_mantissas, to_float
from emulation.graph import Port, run_graph
from offline.ad.model import AutoencoderPair, preset
from offline.preprocess import Preprocessing, to_hardware
from quantize import QuantConfig, brevitas_model, build_spec
from quantize.qat import QATConfig, weight_sparsity


def _layer_outputs(spec, weights, xm, ae: int) -> list[np.ndarray]:
    """The emulator's mantissas after each dense layer's activation (its layer graph cut after each)."""
    graph = TriggerEmulator(spec, weights).graphs[ae]
    activations = graph.nodes[1::2]  # dense, activation, dense, ...
    return [
        run_graph(replace(graph, outputs=(Port(a.output, a.result_type, a.size),)), [xm])[0]
        for a in activations
    ]


@pytest.fixture(scope="module")
def trained(toy_events):
    """A float pair (random init), QAT-fine-tuned for one epoch with 50 % pruning on toy events."""
    words = to_hardware(toy_events.features)
    spec = build_spec(preset("firmware"), QuantConfig(), Preprocessing.fit(words))
    xm = input_mantissas(spec, words)
    x = to_float(xm, spec.input)
    torch.manual_seed(0)
    model = brevitas_model.BrevitasPair(spec).load_float(AutoencoderPair(preset("firmware")))
    qat = QATConfig(epochs=1, batch_size=200, sparsity=0.5, prune_end=0.5, progress=False)
    w = toy_events.event_weights
    brevitas_model.finetune(model, x[:1600], w[:1600], x[1600:], w[1600:], qat, lam=10.0)
    return spec, model, brevitas_model.quantized_weights(model), xm, x


def test_pruning_during_qat_reaches_the_target_sparsity(trained):
    _, _, weights, _, _ = trained
    for key, w in weights.items():
        if key.endswith(".weight"):
            assert (w == 0).mean() >= 0.5 - 1 / w.size, key
    assert weight_sparsity(weights) >= 0.5


def test_weights_and_activations_lie_on_their_grids_and_equal_the_emulator(trained):
    spec, model, weights, xm, x = trained
    for i, ae in enumerate(spec.autoencoders):
        for k, d in enumerate(ae.layers):
            assert d.weight.on_grid(weights[f"ae{i + 1}.layers.{k}.weight"]).all()
            assert d.bias.on_grid(weights[f"ae{i + 1}.layers.{k}.bias"]).all()
        with torch.no_grad():
            acts = [
                a.double().numpy()
                for a in model.autoencoders[i].trace(torch.tensor(x, dtype=torch.float32))
            ]
        assert np.array_equal(acts[0], x)
        ref = _layer_outputs(spec, weights, xm, i)
        for k, (got, mant) in enumerate(zip(acts[1:], ref, strict=True)):
            t = ae.layers[k].activation_result
            assert t.on_grid(got).all(), f"{ae.name} layer {k} off the grid of {t}"
            assert np.array_equal(got, to_float(mant, t)), (
                f"{ae.name} layer {k} differs from the emulator"
            )


def test_qonnx_export_executes_equal_to_brevitas_with_weights_on_grid(trained, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    spec, model, weights, _, x = trained
    paths = brevitas_model.export_qonnx(model, tmp_path)
    ae = spec.autoencoders[0]
    wrapper = ModelWrapper(str(paths["ae1"]))
    matmuls = [n for n in wrapper.graph.node if n.op_type == "MatMul"]
    assert len(matmuls) == len(ae.layers)
    inp, out = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    with torch.no_grad():
        expected = model.ae1(torch.tensor(x[:12], dtype=torch.float32)).numpy()
    for row in range(12):
        ctx = execute_onnx(
            wrapper, {inp: x[row : row + 1].astype(np.float32)}, return_full_exec_context=True
        )
        assert np.array_equal(ctx[out], expected[row : row + 1])
        if row == 0:
            for k, node in enumerate(matmuls):
                w = ctx[node.input[1]].T  # MatMul holds (in, out)
                assert (
                    np.array_equal(w, weights[f"ae1.layers.{k}.weight"])
                    and ae.layers[k].weight.on_grid(w).all()
                )


def test_qat_restores_the_best_validation_epoch_not_the_last(toy_events, monkeypatch):
    """Validation is made to prefer epoch 1 (every other epoch's validation loss gets +1000):
    the pair finetune returns must be epoch 1's, not the last epoch's."""
    from offline.ad.train import pair_loss

    calls = []

    def judged(r1, r2, w, lam):
        parts = pair_loss(r1, r2, w, lam)
        if torch.is_grad_enabled():  # a training step
            return parts
        calls.append(len(calls))
        return parts if len(calls) == 2 else replace(parts, total=parts.total + 1000.0)

    words = to_hardware(toy_events.features)
    spec = build_spec(preset("firmware"), QuantConfig(), Preprocessing.fit(words))
    x = to_float(input_mantissas(spec, words), spec.input)
    w = toy_events.event_weights
    torch.manual_seed(1)
    model = brevitas_model.BrevitasPair(spec).load_float(AutoencoderPair(preset("firmware")))
    qat = QATConfig(epochs=4, batch_size=200, sparsity=0.5, prune_end=0.25, progress=False, seed=2)
    monkeypatch.setattr(brevitas_model, "pair_loss", judged)
    history = brevitas_model.finetune(model, x[:1600], w[:1600], x[1600:], w[1600:], qat, lam=10.0)
    monkeypatch.undo()
    assert len(calls) == qat.epochs and history[-1]["val_loss"] > 1000
    with torch.no_grad():
        r1, r2 = model(torch.as_tensor(x[1600:], dtype=torch.float32))
        restored = float(
            pair_loss(r1, r2, torch.as_tensor(w[1600:], dtype=torch.float32), 10.0).total
        )
    assert restored == pytest.approx(history[1]["val_loss"], rel=1e-6)
    assert restored != pytest.approx(
        history[-1]["val_loss"] - 1000.0, rel=1e-4
    )  # not the last epoch's weights
