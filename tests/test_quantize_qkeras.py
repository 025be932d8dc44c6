"""QKeras pair: on its grids, equal to the trigger emulator, and the same FirmwareSpec as Brevitas."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from emulation import TriggerEmulator, input_mantissas, place_thresholds, to_float
from emulation.graph import Port, run_graph
from offline.ad.disco import disco_sq as torch_disco_sq
from offline.ad.model import AutoencoderPair, preset
from offline.preprocess import Preprocessing, to_hardware
from quantize import QuantConfig, brevitas_model, build_spec, qkeras_model
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
def setup(toy_events):
    words = to_hardware(toy_events.features)
    spec = build_spec(preset("firmware"), QuantConfig(), Preprocessing.fit(words))
    torch.manual_seed(3)
    float_pair = AutoencoderPair(preset("firmware"))
    xm = input_mantissas(spec, words)
    return spec, float_pair, xm, to_float(xm, spec.input)


def test_qkeras_activations_lie_on_their_grids_and_equal_the_emulator(setup):
    spec, float_pair, xm, x = setup
    pair = qkeras_model.QKerasPair(spec).load_float(
        {k: v.numpy() for k, v in float_pair.state_dict().items()}
    )
    weights = qkeras_model.quantized_weights(pair)
    for i, ae in enumerate(spec.autoencoders):
        assert [layer.name for layer in pair.dense(i)] == [d.name for d in ae.layers]
        for k, d in enumerate(ae.layers):
            assert d.weight.on_grid(weights[f"ae{i + 1}.layers.{k}.weight"]).all()
        acts = pair.trace(x[:500], i)
        assert np.array_equal(acts[0], x[:500])
        ref = _layer_outputs(spec, weights, xm[:500], i)
        for k, (got, mant) in enumerate(zip(acts[1:], ref, strict=True)):
            t = ae.layers[k].activation_result
            assert t.on_grid(got).all() and np.array_equal(
                got.astype(np.float64), to_float(mant, t)
            ), (i, k)


def test_brevitas_and_qkeras_builds_write_identical_specs(setup, toy_events, tmp_path):
    spec, float_pair, _, _ = setup
    state = {k: v.numpy() for k, v in float_pair.state_dict().items()}
    files = {}
    for name, weights in (
        (
            "brevitas",
            brevitas_model.quantized_weights(
                brevitas_model.BrevitasPair(spec).load_float(float_pair)
            ),
        ),
        ("qkeras", qkeras_model.quantized_weights(qkeras_model.QKerasPair(spec).load_float(state))),
    ):
        final = place_thresholds(
            spec, weights, to_hardware(toy_events.features), toy_events.event_weights, 0.05
        )
        final.save(tmp_path / name, weights)
        files[name] = [
            (tmp_path / name / f).read_bytes() for f in ("spec.json", "weights.safetensors")
        ]
    assert files["brevitas"] == files["qkeras"]


def test_tensorflow_disco_matches_the_offline_torch_disco():
    rng = np.random.default_rng(5)
    x = rng.normal(size=300).astype(np.float32)
    y = (0.5 * x + rng.normal(size=300)).astype(np.float32)
    w = rng.uniform(0.2, 2.0, 300).astype(np.float32)
    tf_value = float(qkeras_model.disco_sq(x, y, w))
    torch_value = float(
        torch_disco_sq(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w))
    )
    assert tf_value == pytest.approx(torch_value, rel=1e-4)


def test_qkeras_qat_prunes_to_target_and_saved_model_reloads(setup, toy_events, tmp_path):
    spec, float_pair, _, x = setup
    pair = qkeras_model.QKerasPair(spec).load_float(
        {k: v.numpy() for k, v in float_pair.state_dict().items()}
    )
    w = toy_events.event_weights
    qat = QATConfig(epochs=1, batch_size=200, sparsity=0.6, progress=False)
    history = qkeras_model.finetune(
        pair, x[:1000], w[:1000], x[1000:1400], w[1000:1400], qat, lam=10.0
    )
    assert len(history) == 1 and np.isfinite(history[0]["val_loss"])
    assert weight_sparsity(qkeras_model.quantized_weights(pair)) >= 0.6
    paths = qkeras_model.save_keras(pair, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["ae1.h5", "ae2.h5"]
    again = qkeras_model.load_keras(spec, tmp_path)
    assert np.array_equal(again.predict(x[:50], 1), pair.predict(x[:50], 1))
