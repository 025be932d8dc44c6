"""FirmwareSpec version 2: version-1 files through the converter, the latent-norm score, the score-sum rule."""

from __future__ import annotations

import copy
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from emulation.spec import (
    LATENT_NORM,
    SPEC_VERSION,
    AutoencoderSpec,
    DenseSpec,
    FirmwareSpec,
    FixedType,
    ScoreSpec,
    SpecError,
    load_spec,
    load_weights,
    score_sum_type,
    sums_in_one_go,
)
from emulation.spec_v1 import v1_to_v2
from emulation.trigger import TriggerEmulator, score_mantissas

V1 = Path(__file__).parent / "data" / "spec_v1"  # written by the version-1 code (commit edd7f0e)


def _outputs_equal(a, b) -> bool:
    return bool(
        (a.r1 == b["r1"]).all()
        and (a.r2 == b["r2"]).all()
        and (a.regions == b["regions"]).all()
        and (a.trigger == b["trigger"]).all()
    )


def test_version_1_file_loads_with_every_type_and_the_outputs_unchanged(tmp_path):
    raw = json.loads((V1 / "spec.json").read_text())
    assert raw["version"] == 1
    spec = load_spec(V1)
    assert spec.version == SPEC_VERSION == 2
    for ae, raw_ae in zip(spec.autoencoders, raw["autoencoders"], strict=True):
        assert ae.name == raw_ae["name"] and ae.score.kind == "reconstruction"
        for d, raw_d in zip(ae.layers, raw_ae["layers"], strict=True):
            for key, value in raw_d.items():
                got = getattr(d, key)
                assert (got if got is None or isinstance(got, int | str) else str(got)) == value
        s = raw_ae["score"]
        assert [str(ae.score.difference), str(ae.score.square), str(ae.score.score)] == [
            s["difference"],
            s["square"],
            s["score"],
        ]
        assert list(ae.score.outputs) == s["outputs"]
    assert (spec.trigger.threshold_r1, spec.trigger.threshold_r2, list(spec.trigger.fire_on)) == (
        raw["trigger"]["threshold_r1"],
        raw["trigger"]["threshold_r2"],
        raw["trigger"]["fire_on"],
    )
    # the version-1 code's own outputs on these words, bit for bit, on both emulator paths
    expected = np.load(V1 / "expected.npz")
    weights = load_weights(spec, V1)
    for float_path in (True, False):
        assert _outputs_equal(
            TriggerEmulator(spec, weights, float_path)(expected["words"]), expected
        )
    # writing always gives version 2, which reads back as the same spec
    spec.save(tmp_path, weights)
    written = json.loads((tmp_path / "spec.json").read_text())
    assert written["version"] == 2 and "autoencoders" not in written
    assert [n["op"] for n in written["scores"][0]["nodes"]] == ["dense"] * 4 + ["reconstruction"]
    assert load_spec(tmp_path) == spec
    assert written == {**v1_to_v2(raw), "metadata": written["metadata"]}


def test_malformed_version_1_file_names_its_version_1_field():
    raw = json.loads((V1 / "spec.json").read_text())
    del raw["autoencoders"][1]["score"]
    with pytest.raises(SpecError) as err:
        FirmwareSpec.from_dict(raw)
    assert err.value.field == "autoencoders[1].score"


@pytest.fixture(scope="module")
def latent():
    from firmware.example import latent_norm_model

    return latent_norm_model(seed=2, n_fit=1000)


def test_latent_norm_spec_round_trips_and_is_validated(latent):
    spec, _ = latent
    data = spec.to_dict()
    assert data["scores"][1]["nodes"][-1] == {
        "op": "latent_norm",
        "square": "ap_ufixed<12,6,AP_TRN,AP_SAT>",
        "score": "ap_ufixed<12,7,AP_TRN,AP_SAT>",
        "outputs": [0, 1, 2, 3],
    }
    assert FirmwareSpec.from_dict(data) == spec
    for edit, field, message in (
        (lambda n: n[-1].update(difference="ap_fixed<8,4>"), "nodes[2].difference", "no difference"),
        (lambda n: n[-1].update(outputs=[0, 4]), "nodes[2].outputs", "indices in 0..3"),
        (lambda n: n[-1].update(op="reconstruction", difference="ap_fixed<8,4>"), "nodes[1].n_out", "must be 57"),
        (lambda n: n[-1].update(op="kl"), "nodes[2].op", "one of reconstruction, latent_norm"),
        (lambda n: n.insert(0, dict(n[-1])), "nodes[0].op", "only the last node"),
    ):  # fmt: skip
        bad = copy.deepcopy(data)
        edit(bad["scores"][1]["nodes"])
        with pytest.raises(SpecError) as err:
            FirmwareSpec.from_dict(bad)
        assert err.value.field == f"scores[1].{field}" and message in str(err.value)


def _cast(value: Fraction, t: FixedType) -> Fraction:
    """ap_fixed assignment in exact fractions (TRN/RND, WRAP/SAT/SAT_SYM): the oracle."""
    m = value * 2**t.fractional
    m = math.floor(m) if t.rounding == "AP_TRN" else math.floor(m + Fraction(1, 2))
    lo, hi = t.min_int, t.max_int
    if t.overflow == "AP_WRAP":
        m = (m - lo) % (1 << t.width) + lo
    else:
        m = min(max(m, -hi if t.overflow == "AP_SAT_SYM" and t.signed else lo), hi)
    return Fraction(m, 2**t.fractional)


def test_latent_norm_score_equals_exact_fraction_oracle(latent):
    from firmware.example import toy_words

    spec, weights = latent
    out = TriggerEmulator(spec, weights)(toy_words(300, 9), keep_intermediates=True)
    assert out.reconstructions is not None
    enc = spec.autoencoders[1]
    s, mu_t = enc.score, enc.output_type
    for e in range(300):
        total = Fraction(0)
        for j in s.outputs:
            mu = Fraction(int(out.reconstructions[1][e, j]), 2**mu_t.fractional)
            total = _cast(total + _cast(mu * mu, s.square), s.score)
        assert total == Fraction(int(out.r2[e]), 2**s.score.fractional)


@pytest.mark.parametrize(
    ("square", "score", "one_go"),
    [
        (FixedType(10, 5, False, "AP_TRN", "AP_SAT"), FixedType(11, 6, False, "AP_TRN", "AP_SAT"), True),
        (FixedType(10, 5, False, "AP_TRN", "AP_SAT"), FixedType(10, 6, False, "AP_TRN", "AP_SAT"), False),
        (FixedType(10, 4, True, "AP_TRN", "AP_WRAP"), FixedType(11, 5, True, "AP_TRN", "AP_WRAP"), True),
        (FixedType(10, 4, True, "AP_TRN", "AP_WRAP"), FixedType(11, 5, True, "AP_TRN", "AP_SAT"), False),
        (FixedType(10, 4, True, "AP_RND", "AP_SAT"), FixedType(11, 5, True, "AP_TRN", "AP_SAT_SYM"), True),
    ],
)  # fmt: skip
def test_score_sum_rule_and_the_emulated_sum_equal_the_one_by_one_additions(square, score, one_go):
    """One rule (emulation.spec.sums_in_one_go) decides the wrapper's sum type and the emulator's
    path; either way the score is the spec's one-by-one casts (the Fraction oracle)."""
    mu_t = FixedType(8, 3, True, "AP_TRN", "AP_WRAP")
    layer = DenseSpec("d", 57, 6, mu_t, None, mu_t, mu_t, "linear", mu_t)
    enc = AutoencoderSpec(
        "e", (layer,), ScoreSpec(None, square, score, tuple(range(6)), LATENT_NORM)
    )
    assert sums_in_one_go(enc.score) is one_go
    assert (score_sum_type(enc.score) != score) is one_go
    mu = np.random.default_rng(0).integers(mu_t.min_int, mu_t.max_int + 1, (400, 6))
    mu[:20] = mu_t.min_int  # the largest squares
    got = score_mantissas(enc, mu, mu_t, mu, mu_t)
    for e in range(len(mu)):
        total = Fraction(0)
        for j in range(6):
            m = Fraction(int(mu[e, j]), 2**mu_t.fractional)
            total = _cast(total + _cast(m * m, square), score)
        assert total == Fraction(int(got[e]), 2**score.fractional), e
