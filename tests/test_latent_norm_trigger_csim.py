"""The second trigger architecture (R2 = sum of mu**2 of an encoder) through the same firmware path:
hls4ml project + wrapper compiled with g++, bit for bit against the emulator."""

from __future__ import annotations

import numpy as np
import pytest

from emulation import OverflowCounter, emulate_trigger
from emulation.events import edge_words
from firmware.example import latent_norm_model, toy_words
from firmware.trigger_csim import compare_trigger_csim

pytestmark = [pytest.mark.hls, pytest.mark.slow]

N_CSIM = 4000


def test_latent_norm_trigger_csim_equals_emulator_on_4k_events_with_empty_and_saturating(tmp_path):
    from firmware.convert import ConversionSettings
    from firmware.models import qkeras_pair_from_spec
    from firmware.project import write_project

    spec, weights = latent_norm_model(seed=1)
    words = np.concatenate(
        [
            toy_words(N_CSIM - N_CSIM // 4, 3),
            edge_words(spec, np.random.default_rng(4), N_CSIM // 4),
        ]
    )
    assert (words == 0).all(axis=1).any() and (words[:, 0::3] == spec.hardware_input.max_int).any()
    out = emulate_trigger(spec, weights, words, counter := OverflowCounter())
    # not vacuous: mu rounds and saturates, squares and R2 saturate, every region is filled
    assert counter.overflows("ae2_dense1_linear") > 0 and counter.overflows("enc2.square") > 0
    assert (out.r2_float == spec.autoencoders[1].score.score.max_value).any()
    assert out.regions.any(axis=0).all() and 0 < out.trigger.sum() < len(words)

    net = qkeras_pair_from_spec(spec, weights)
    project = write_project(
        tmp_path / "prj", spec, weights, net, ConversionSettings(), words[:50]
    ).path
    top = (project / "firmware" / "trigger_top.cpp").read_text()
    assert (
        "latent_norm<square2_t, sum2_t, score2_t" in top and "reconstruction_error<diff1_t" in top
    )
    result = compare_trigger_csim(spec, weights, project, words)
    assert result.events == N_CSIM
    assert result.mismatches == 0, f"first mismatching events: {result.first_mismatches}"
