"""Bad firmware input: one clear line, exit code 1, and no project (whole or not at all)."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from firmware.example import default_model
from firmware.options import CLI_NAMES, check_options, check_spec_types
from l1ad.cli import app
from quantize.spec import FixedType, SpecError


@pytest.fixture(scope="module")
def small():
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    return default_model(
        seed=2, n_fit=500, quantile=0.9, ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4), score_outputs=(0, 3),
    )  # fmt: skip


@pytest.fixture(scope="module")
def quantized(small, tmp_path_factory):
    spec, weights = small
    qdir = tmp_path_factory.mktemp("q") / "quantized"
    spec.save(qdir, weights)
    return qdir


def _firmware(tmp_path, quantized, *args):
    root = tmp_path / "hls_projects"
    argv = ["firmware", "--quantized", str(quantized), "--name", "p", "--output-root", str(root), "--csim-events", "20",
            "--no-yosys", "--no-verilator", *args]  # fmt: skip
    result = CliRunner(env={"COLUMNS": "300"}).invoke(app, argv)
    return result, root


def _one_error_line(result, root) -> str:
    """The command's only output line, after checking it failed with exit 1 and wrote no project."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert not root.exists(), "no project, whole or partial"
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--part", "xc7z020clg400-1"], "error: --part: part 'xc7z020clg400-1' is not in the capacity table; known: xcvu9p"),
        (["--clock-period", "0"], "error: --clock-period must be a positive number, got 0.0 ns"),
        (["--clock-period", "-2.5"], "error: --clock-period must be a positive number, got -2.5 ns"),
        (["--clock-period", "nan"], "error: --clock-period must be a positive number, got nan ns"),
        (["--latency-budget", "-1"], "error: --latency-budget must be a positive number, got -1.0 ns"),
        (["--latency-budget", "4", "--clock-period", "5"],
         "error: --latency-budget 4 ns is under one clock period (--clock-period 5 ns): no registered design can meet it"),
        (["--backend", "Quartus"], "error: --backend: backend 'Quartus' is not one of Vitis, Vivado"),
        (["--strategy", "resource"],
         "error: --strategy: strategy 'resource' is not one of distributed_arithmetic, latency"),
    ],
)  # fmt: skip
def test_bad_option_is_one_line_exit_1_and_nothing_written(quantized, tmp_path, args, message):
    line = _one_error_line(*_firmware(tmp_path, quantized, *args))
    assert line.startswith(message), line


def test_spec_with_types_the_project_cannot_carry_is_refused_before_anything_is_written(
    small, tmp_path
):
    spec, weights = small
    ae = spec.autoencoders[1]
    wide = FixedType(60, 40, False, "AP_TRN", "AP_SAT")
    bad = dataclasses.replace(
        spec,
        autoencoders=(
            spec.autoencoders[0],
            dataclasses.replace(ae, score=dataclasses.replace(ae.score, score=wide)),
        ),
    )
    qdir = tmp_path / "wide"
    bad.save(qdir, weights)
    line = _one_error_line(*_firmware(tmp_path, qdir))
    assert line.startswith(
        "error: FirmwareSpec field 'scores[1].nodes[2].score': ap_ufixed<60,40,AP_TRN,AP_SAT> is 60 bits wide; "
        "the testbench and C simulation read scores as doubles, so at most 53 bits"
    ), line
    assert f"(in {qdir / 'spec.json'})" in line


def _narrow_accumulator(spec):
    """``spec`` with ae1's first accumulator (and result, as QKeras keeps them equal) rounding and
    saturating: the Latency strategy and the emulator round there, distributed arithmetic would not."""
    ae = spec.autoencoders[0]
    narrow = FixedType(10, 4, True, "AP_RND", "AP_SAT")
    first = dataclasses.replace(ae.layers[0], accumulator=narrow, result=narrow)
    ae = dataclasses.replace(ae, layers=(first, *ae.layers[1:]))
    return dataclasses.replace(spec, autoencoders=(ae, spec.autoencoders[1]))


def test_an_accumulator_distributed_arithmetic_would_not_reproduce_is_named(small, tmp_path):
    spec, weights = small
    bad = _narrow_accumulator(spec)
    qdir = tmp_path / "narrow"
    bad.save(qdir, weights)
    line = _one_error_line(*_firmware(tmp_path, qdir))
    assert line.startswith(
        "error: FirmwareSpec field 'scores[0].nodes[0].accumulator': layer ae1_dense0: "
        "ap_fixed<10,4,AP_RND,AP_SAT> does not hold every weighted sum exactly"
    ), line
    assert "use strategy latency" in line and f"(in {qdir / 'spec.json'})" in line
    # the Latency strategy rounds in the accumulator as the emulator does: accepted
    check_spec_types(bad, strategy="latency")
    check_spec_types(spec, strategy="distributed_arithmetic")  # exact accumulators pass


def test_weights_wider_than_a_double_are_refused(small):
    spec, _ = small
    ae = spec.autoencoders[0]
    layer = dataclasses.replace(ae.layers[0], weight=FixedType(54, 2, True, "AP_TRN", "AP_WRAP"))
    bad = dataclasses.replace(spec, autoencoders=(dataclasses.replace(ae, layers=(layer, *ae.layers[1:])),
                                                  spec.autoencoders[1]))  # fmt: skip
    with pytest.raises(
        SpecError, match=r"'scores\[0\]\.nodes\[0\]\.weight': .* 54 bits wide; hls4ml writes"
    ):
        check_spec_types(bad)
    check_spec_types(spec)  # the default types pass


def test_library_check_returns_settings_and_names_the_option_as_the_caller_spells_it():
    settings = check_options("Vivado", "xcvu9p-flga2104-2L-e", 4.0, 4.0, names=CLI_NAMES)
    assert (settings.backend, settings.part, settings.clock_period_ns) == (
        "Vivado",
        "xcvu9p-flga2104-2L-e",
        4.0,
    )
    names = {k: f"firmware.{k}" for k in CLI_NAMES}
    with pytest.raises(
        ValueError, match=r"^firmware\.latency_budget_ns 2 ns is under one clock period"
    ):
        check_options("Vitis", "xcvu13p", 5.0, 2.0, names=names)
    with pytest.raises(
        ValueError, match=r"^firmware\.clock_period_ns must be a number, got 'fast'"
    ):
        check_options("Vitis", "xcvu13p", "fast", 50.0, names=names)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^reuse factor: reuse factor 9 must be in 1\.\.5"):
        check_options("Vitis", "xcvu13p", 5.0, 50.0, reuse_factor=9)
    assert check_options("Vitis", "xcvu13p", 5.0, 50.0).strategy == "distributed_arithmetic"
    assert check_options("Vitis", "xcvu13p", 5.0, 50.0, 5, "latency").reuse_factor == 5
    with pytest.raises(ValueError, match=r"^firmware\.strategy: strategy 'da' is not one of"):
        check_options("Vitis", "xcvu13p", 5.0, 50.0, strategy="da", names=names)
    with pytest.raises(
        ValueError, match=r"^reuse factor: reuse factor 2: the distributed_arithmetic"
    ):
        check_options("Vitis", "xcvu13p", 5.0, 50.0, reuse_factor=2)


@pytest.mark.hls
def test_a_build_that_fails_after_writing_leaves_no_project(small, tmp_path, monkeypatch):
    import firmware.build as build
    from firmware.convert import ConversionSettings
    from firmware.example import toy_words

    spec, weights = small
    quantized = build.QuantizedModel(
        spec, weights, build.qkeras_pair_from_spec(spec, weights), "keras", "test"
    )

    def broken_compiler(*args, **kwargs):
        raise ValueError("building the C simulation failed: g++ exploded")

    monkeypatch.setattr(build, "CSim", broken_compiler)
    with pytest.raises(ValueError, match="g\\+\\+ exploded"):
        build.build_firmware(
            quantized, tmp_path / "hls_projects" / "p", ConversionSettings(), toy_words(30, 1)
        )
    assert list((tmp_path / "hls_projects").iterdir()) == [], (
        "neither the project nor a partial directory is left"
    )
