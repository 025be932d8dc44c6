"""The trigger emulator equals the C simulation of the whole firmware project (hls4ml + wrapper, g++)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from emulation import (
    OverflowCounter,
    emulate_trigger,
)
from emulation.events import edge_words
from firmware.trigger_csim import compare_trigger_csim
from offline.ad.model import AEConfig

pytestmark = [pytest.mark.hls, pytest.mark.slow]

N_CSIM = 10_000


def _model(narrow_accumulator: bool):
    """The default firmware model, shrunk (57-8-3-8-57: quick to compile), with a narrow score (and,
    for the QKeras frontend, a rounding, saturating accumulator: Brevitas keeps exact accumulators),
    so the comparison covers saturation, not only the exact default types."""
    from firmware.example import default_model

    spec, weights = default_model(seed=1, n_fit=3000, ae_config=AEConfig(hidden=(8,), latent=3))
    aes = []
    for ae in spec.autoencoders:
        first = ae.layers[0]
        if narrow_accumulator:
            acc = dataclasses.replace(
                first.accumulator, width=12, integer=5, rounding="AP_RND", overflow="AP_SAT"
            )
            first = dataclasses.replace(first, accumulator=acc)
        score = dataclasses.replace(
            ae.score, score=dataclasses.replace(ae.score.score, width=14, integer=8)
        )
        aes.append(dataclasses.replace(ae, layers=(first, *ae.layers[1:]), score=score))
    zero = dataclasses.replace(spec.trigger, threshold_r1=0.0, threshold_r2=0.0)
    spec = dataclasses.replace(spec, autoencoders=tuple(aes), trigger=zero)
    out = emulate_trigger(
        spec, weights, _words(spec, 2000)
    )  # thresholds at the medians: every region filled
    t1, t2 = (float(np.quantile(r, 0.5, method="lower")) for r in (out.r1_float, out.r2_float))
    t = dataclasses.replace(spec.trigger, threshold_r1=t1, threshold_r2=t2, fire_on=("A", "B"))
    return dataclasses.replace(spec, trigger=t), weights


def _words(spec, n):
    from firmware.example import toy_words

    return np.concatenate(
        [toy_words(n - n // 5, 3), edge_words(spec, np.random.default_rng(4), n // 5)]
    )


@pytest.mark.parametrize("frontend", ["keras", "qonnx"])
def test_emulator_equals_trigger_csim_on_10k_events_with_empty_and_saturating(frontend, tmp_path):
    from firmware.convert import ConversionSettings
    from firmware.models import load_qonnx_pair, qkeras_pair_from_spec
    from firmware.project import write_project

    spec, weights = _model(narrow_accumulator=frontend == "keras")
    words = _words(spec, N_CSIM)
    assert (words == 0).all(axis=1).any() and (words[:, 0::3] == spec.hardware_input.max_int).any()
    if frontend == "keras":
        net = qkeras_pair_from_spec(spec, weights)
    else:
        from quantize.brevitas_model import BrevitasPair, export_qonnx

        net = load_qonnx_pair(
            list(
                export_qonnx(
                    BrevitasPair(spec).load_quantized(weights), tmp_path / "qonnx"
                ).values()
            )
        )
    # a rounding, saturating accumulator needs the Latency strategy (distributed arithmetic sums
    # exactly: firmware.options refuses it); the exact QONNX accumulators use the default, DA
    strategy = "latency" if frontend == "keras" else "distributed_arithmetic"
    project = write_project(
        tmp_path / "prj",
        spec,
        weights,
        net,
        ConversionSettings(strategy=strategy),
        words[:50],
        frontend,
    ).path
    result = compare_trigger_csim(spec, weights, project, words)
    out = emulate_trigger(spec, weights, words, counter := OverflowCounter())
    assert counter.overflows("ae1.score") > 0 and out.regions.any(axis=0).all()  # not vacuous
    assert result.events == N_CSIM
    assert result.mismatches == 0, f"first mismatching events: {result.first_mismatches}"

    if frontend == "keras":  # the CLI on the same project, and a project of another spec is refused
        from firmware.trigger_csim import check_project
        from l1ad.cli import app
        from offline.events import write_events
        from tests.conftest import make_toy_events

        (tmp_path / "m").mkdir()
        spec.save(tmp_path / "m", weights)
        write_events(tmp_path / "ev.h5", make_toy_events(400, seed=3))
        args = ["emulate", "--model", str(tmp_path / "m"), "--events", str(tmp_path / "ev.h5"),
                "--out", str(tmp_path / "o.h5"), "--compare-csim", "300", "--project", str(project)]  # fmt: skip
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        assert "300 events compared, 0 mismatches" in done.output
        other = dataclasses.replace(spec, trigger=dataclasses.replace(spec.trigger, fire_on=("A",)))
        with pytest.raises(ValueError, match="different FirmwareSpec"):
            check_project(project, other)
