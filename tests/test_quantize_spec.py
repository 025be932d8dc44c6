"""FirmwareSpec building, validation on load, exact fixed-point semantics (no QAT framework needed)."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest

from emulation import TriggerEmulator, score_mantissas, to_float
from offline.ad.model import AEConfig, preset
from offline.preprocess import Preprocessing
from quantize import (
    FixedType,
    LayerPrecision,
    QuantConfig,
    SpecError,
    build_spec,
    load_spec,
    load_weights,
    random_quantized_weights,
    snap_to_grid,
)
from quantize.qat import QATConfig, magnitude_mask, sparsity_at, weight_sparsity

PRE = Preprocessing(tuple(range(57)), tuple([6] * 57))


@pytest.fixture(scope="module")
def spec():
    return build_spec(preset("firmware"), QuantConfig(), PRE, thresholds=(12.5, 7.25))


def test_layer_chain_names_and_types_follow_the_architecture(spec):
    for i, ae in enumerate(spec.autoencoders):
        assert [d.name for d in ae.layers] == [f"ae{i + 1}_dense{k}" for k in range(4)]
        assert [(d.n_in, d.n_out) for d in ae.layers] == list(
            zip((57, 16, 4, 16), (16, 4, 16, 57), strict=True)
        )
        assert [d.activation for d in ae.layers] == ["relu"] * 3 + ["linear"]
        for d in ae.layers[:-1]:
            assert str(d.activation_result) == "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>"
        assert ae.layers[-1].activation_result == ae.layers[-1].accumulator


def test_accumulators_hold_the_extreme_weighted_sums(spec):
    """Largest |sum w x + b| over all inputs/weights of the declared types fits the accumulator."""
    layer_input = spec.input
    for d in spec.autoencoders[0].layers:
        w_ext = max(abs(d.weight.min_value), d.weight.max_value)
        x_ext = max(abs(layer_input.min_value), layer_input.max_value)
        worst = d.n_in * w_ext * x_ext + max(abs(d.bias.min_value), d.bias.max_value)
        assert d.accumulator.min_value <= -worst and worst <= d.accumulator.max_value
        assert d.accumulator.fractional >= d.weight.fractional + layer_input.fractional
        layer_input = d.activation_result


def test_saved_spec_and_weights_round_trip(tmp_path, spec):
    weights = random_quantized_weights(spec, seed=1, sparsity=0.3)
    spec.save(tmp_path, weights)
    loaded = load_spec(tmp_path)
    assert loaded == spec
    back = load_weights(loaded, tmp_path)
    assert all(np.array_equal(back[k], weights[k]) for k in weights)


def test_random_weights_are_on_grid_and_reach_sparsity(spec):
    weights = random_quantized_weights(spec, seed=2, sparsity=0.6)
    for ae in spec.autoencoders:
        for k, d in enumerate(ae.layers):
            w = weights[f"{ae.name}.layers.{k}.weight"]
            assert (
                d.weight.on_grid(w).all()
                and d.bias.on_grid(weights[f"{ae.name}.layers.{k}.bias"]).all()
            )
            assert (w == 0).mean() >= 0.6 - 1 / w.size
    assert weight_sparsity(weights) >= 0.6 - 0.01


def test_input_type_is_widened_to_hold_the_preprocessing_shifts_exactly():
    spec = build_spec(preset("firmware"), QuantConfig(input=(16, 12)), PRE)
    assert (spec.input.width, spec.input.integer) == (18, 12)
    # the default input has enough fractional bits for PRE's shifts (6): not widened
    assert build_spec(preset("firmware"), QuantConfig(), PRE).input.width == QuantConfig().input[0]


def test_quant_config_round_trips_and_rejects_unknown_keys():
    q = QuantConfig(layers={2: QuantConfig().default.__class__((6, 2), (6, 2), (6, 3))})
    assert QuantConfig.from_dict(json.loads(json.dumps(q.to_dict()))) == q
    with pytest.raises(ValueError, match="unknown keys"):
        QuantConfig.from_dict({"wieght": [8, 3]})


def _corrupt(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()
L0 = ("scores", 0, "nodes", 0)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (
            (*L0, "weight"),
            "ap_fixed<1025,3>",
            "scores[0].nodes[0].weight",
        ),  # ap_types stops at 1024
        ((*L0, "accumulator"), "ap_fixed<31,18,AP_FLOOR>", "scores[0].nodes[0].accumulator"),
        (("scores", 1, "nodes", 2, "n_in"), 17, "scores[1].nodes[2].n_in"),
        (("trigger", "threshold_r1"), 12.5 + 2**-10, "trigger.threshold_r1"),
        (("trigger", "fire_on"), ["E"], "trigger.fire_on"),
        (("scores", 0, "nodes", -1, "square"), _DELETE, "scores[0].nodes[4].square"),
        (("input",), _DELETE, "input"),
        (("version",), 99, "version"),
        ((*L0, "activation"), "gelu", "scores[0].nodes[0].activation"),
        (("scores", 1, "nodes", 1, "name"), "ae1_dense1", "scores[1].nodes[1].name"),
    ],
)
def test_corrupted_spec_fails_to_load_naming_the_field(tmp_path, spec, path, value, field):
    data = copy.deepcopy(spec.to_dict())
    _corrupt(data, path, value)
    (tmp_path / "spec.json").write_text(json.dumps(data))
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path)
    assert err.value.field == field
    assert field in str(err.value) and str(tmp_path) in str(err.value)


def test_weights_off_grid_fail_to_load_naming_the_tensor(tmp_path, spec):
    weights = random_quantized_weights(spec, seed=3)
    spec.save(tmp_path, weights)
    from safetensors.numpy import save_file

    weights["ae2.layers.3.weight"] = weights["ae2.layers.3.weight"] + 2**-9
    save_file(
        {k: v.astype(np.float32) for k, v in weights.items()}, str(tmp_path / "weights.safetensors")
    )
    with pytest.raises(ValueError, match=r"ae2\.layers\.3\.weight.*not on the grid"):
        load_weights(load_spec(tmp_path), tmp_path)


def test_snap_to_grid_gives_the_largest_grid_value_not_above():
    t = FixedType(18, 12, False, "AP_TRN", "AP_SAT")
    assert snap_to_grid(3.14159, t) == 3.140625
    assert snap_to_grid(-1.0, t) == 0.0 and snap_to_grid(1e9, t) == t.max_value


def test_emulated_score_of_a_hand_computed_network():
    """Identity then 0.5 * identity: xhat = relu(x)/2, R = sum (x - xhat)^2 with the declared casts."""
    arch = AEConfig(hidden=(), latent=57, bias=True)
    # weights 1.0 and inputs with 8 fractional bits: not the (narrower) default types
    wide = QuantConfig(
        default=LayerPrecision((8, 3), (8, 3), (8, 3)),
        input=(16, 8),
        difference=(12, 6),
        square=(16, 10),
        score=(18, 12),
    )
    spec = build_spec(arch, wide, PRE)
    d = spec.autoencoders[0].layers
    assert len(d) == 2
    w = {}
    for i in range(2):
        w[f"ae{i + 1}.layers.0.weight"] = np.eye(57)
        w[f"ae{i + 1}.layers.0.bias"] = np.zeros(57)
        w[f"ae{i + 1}.layers.1.weight"] = 0.5 * np.eye(57)
        w[f"ae{i + 1}.layers.1.bias"] = np.zeros(57)
    x = np.zeros((3, 57), dtype=np.int64)
    x[0, 0] = 3 << 8  # 3.0 -> relu 3.0 -> 1.5; diff 1.5, square 2.25
    x[1, :] = 1 << 7  # 0.5 everywhere -> diff 0.25, square 0.0625 -> 57 * 0.0625 = 3.5625
    x[2, 0] = -(5 << 8)  # relu kills it: xhat 0, diff -5, square 25
    emulator = TriggerEmulator(spec, w)
    out_type = emulator.graphs[0].outputs[0].type
    assert out_type == spec.autoencoders[0].layers[-1].activation_result
    r = []
    for ae, aspec in enumerate(spec.autoencoders):
        xhat = emulator.reconstruction(x, ae)
        assert xhat[0, 0] == 3 << (out_type.fractional - 1)
        r.append(to_float(score_mantissas(aspec, x, spec.input, xhat, out_type), aspec.score.score))
    assert r[0].tolist() == [2.25, 3.5625, 25.0] and np.array_equal(r[0], r[1])


def test_magnitude_mask_prunes_the_smallest_and_keeps_earlier_pruning():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 8))
    m1 = magnitude_mask(w, 0.25)
    assert (m1 == 0).sum() == 32 and np.abs(w[m1 == 0]).max() <= np.abs(w[m1 == 1]).min()
    w2 = w * m1 + (1 - m1) * 10.0  # pruned entries grown large must stay pruned
    m2 = magnitude_mask(w2, 0.5, m1)
    assert (m2 == 0).sum() == 64 and (m2[m1 == 0] == 0).all()


def test_sparsity_schedule_ramps_to_the_target_and_holds():
    cfg = QATConfig(sparsity=0.8, prune_start=0.1, prune_end=0.5)
    values = [sparsity_at(cfg, s, 100) for s in range(101)]
    assert values[0] == 0 and values[10] == 0
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert values[50] == values[100] == 0.8
