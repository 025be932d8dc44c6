"""Bad input through the CLI: one clear line naming what is wrong, a non-zero exit, nothing left behind.

Each case is a regression test of issue 18 (items 3, 4 and 8): the input is named in the test,
the message is checked for the file/option/field, and the output path must not exist afterwards.
"""

from __future__ import annotations

import copy
import json
import pickle

import h5py
import numpy as np
import pytest
from conftest import make_toy_events
from typer.testing import CliRunner

from l1ad.cli import app
from l1ad.errors import report_error
from l1ad.pipeline import resolve_config
from offline.ad.model import preset
from offline.events import Events, read_events, write_events
from offline.events.io import EventFileError
from offline.preprocess import Preprocessing
from quantize import QuantConfig, build_spec
from quantize.spec import FirmwareSpec, SpecError, load_spec

runner = CliRunner()


def _fails(args: list[str], code: int = 1, *needles: str) -> str:
    """Run the CLI; it must exit with ``code``, print no traceback, and mention every needle."""
    result = runner.invoke(app, args)
    output = " ".join(result.output.split())  # typer's usage box wraps and frames lines
    assert result.exit_code == code, result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in output, (needle, result.output)
    return output


def _toy(tmp_path, name="events.h5", n=300, seed=3):
    return write_events(tmp_path / name, make_toy_events(n, seed))


def _bad_events(tmp_path, column: int, value: float, event: int = 5, obj: int = 9) -> tuple:
    """A file with one impossible value, written with plain h5py (write_events refuses it)."""
    ev = make_toy_events(50, seed=1)
    particles = ev.particles.copy()
    particles[event, obj, column] = value
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("Particles", data=particles)
    return path


# ---- item 4: physically impossible event values -------------------------------------------------

IMPOSSIBLE = [
    pytest.param(0, -5.0, "pT -5 of object 9 is negative", id="negative-pT"),
    pytest.param(1, 1e30, "eta 1e+30 of object 9 is outside", id="eta-1e30"),
    pytest.param(2, 4.0, "phi 4 of object 9 is outside [-pi, pi]", id="phi-4"),
    pytest.param(2, -3.2, "phi -3.2 of object 9 is outside [-pi, pi]", id="phi-minus-3.2"),
    pytest.param(3, 7.0, "class 7 of object 9 is not one of", id="class-7"),
]


@pytest.mark.parametrize(("column", "value", "message"), IMPOSSIBLE)
def test_reader_refuses_impossible_event_values_naming_file_event_and_field(
    tmp_path, column, value, message
):
    path = _bad_events(tmp_path, column, value)
    with pytest.raises(EventFileError) as err:
        read_events(path)
    assert str(path) in str(err.value) and "event 5" in str(err.value) and message in str(err.value)


def test_reader_accepts_phi_at_float32_pi(tmp_path):
    path = _bad_events(
        tmp_path, 2, float(np.float32(np.pi))
    )  # 3.1415927 > pi: float32 rounding, not an error
    assert len(read_events(path)) == 50


@pytest.mark.parametrize(("column", "value", "message"), IMPOSSIBLE[:3])
def test_commands_refuse_impossible_events(tmp_path, column, value, message):
    path = _bad_events(tmp_path, column, value)
    _fails(["inspect", str(path)], 1, str(path), "event 5", message)
    out = tmp_path / "model"
    _fails(
        ["train", str(path), "--out", str(out), "--epochs", "1", "--no-progress"],
        1,
        "event 5",
        message,
    )
    assert not out.exists()


def test_write_events_refuses_impossible_values(tmp_path):
    ev = make_toy_events(20, seed=2)
    particles = ev.particles.copy()
    particles[3, 0, 0] = -1.0
    with pytest.raises(ValueError, match="event 3: pT -1 of object 0 is negative"):
        write_events(tmp_path / "x.h5", Events(particles))
    assert not (tmp_path / "x.h5").exists()


# ---- items 3/4: damaged checkpoints -------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    bkg = write_events(root / "bkg.h5", make_toy_events(600, seed=11))
    result = runner.invoke(
        app,
        [
            "train",
            str(bkg),
            "--out",
            str(root / "model"),
            "--epochs",
            "1",
            "--batch-size",
            "200",
            "--no-progress",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "model", bkg


def _copy_checkpoint(checkpoint, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(checkpoint[0], model)
    return model


WEIGHTS_DAMAGE = {
    "truncated": lambda b: b[: len(b) // 2],
    "empty": lambda b: b"",
    "pickle": lambda b: pickle.dumps({"ae1.layers.0.weight": [1.0]}),
}


@pytest.mark.parametrize("damage", sorted(WEIGHTS_DAMAGE))
def test_score_refuses_damaged_model_safetensors(tmp_path, checkpoint, damage):
    model = _copy_checkpoint(checkpoint, tmp_path)
    weights = model / "model.safetensors"
    weights.write_bytes(WEIGHTS_DAMAGE[damage](weights.read_bytes()))
    out = tmp_path / "scores.h5"
    _fails(
        ["score", str(model), str(checkpoint[1]), "--out", str(out)], 1, str(weights), "safetensors"
    )
    assert not out.exists()


def test_score_refuses_nan_weights(tmp_path, checkpoint):
    from safetensors.torch import load_file, save_file

    model = _copy_checkpoint(checkpoint, tmp_path)
    tensors = load_file(str(model / "model.safetensors"))
    tensors["ae1.layers.0.weight"][0, 0] = float("nan")
    save_file(tensors, str(model / "model.safetensors"))
    out = tmp_path / "scores.h5"
    _fails(
        ["score", str(model), str(checkpoint[1]), "--out", str(out)],
        1,
        "'ae1.layers.0.weight' holds NaN or inf",
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("null", "must hold a JSON object, got null"),
        ("[1, 2]", "must hold a JSON object, got a list"),
        ("{not json", "not valid JSON"),
        (
            '{"format_version": 1, "architecture": {"hidden": 5, "latent": 4, "bias": true, "n_inputs": 57},'
            ' "train": {}}',
            "architecture.hidden must be a list of positive integers",
        ),
        (
            '{"format_version": 1, "architecture": {"hidden": [8], "latent": "4", "bias": true, "n_inputs": 57},'
            ' "train": {}}',
            "architecture.latent must be a positive integer",
        ),
        (
            '{"format_version": 1, "architecture": {"hidden": [8], "latent": 4, "bias": true, "n_inputs": 57},'
            ' "train": {"epochs": "ten"}}',
            "training setting 'epochs' has the wrong type",
        ),
    ],
    ids=["null", "list", "invalid-json", "hidden-int", "latent-str", "epochs-str"],
)
def test_score_refuses_malformed_config_json_naming_it(tmp_path, checkpoint, text, message):
    model = _copy_checkpoint(checkpoint, tmp_path)
    (model / "config.json").write_text(text)
    out = tmp_path / "scores.h5"
    _fails(
        ["score", str(model), str(checkpoint[1]), "--out", str(out)],
        1,
        str(model / "config.json"),
        message,
    )
    assert not out.exists()


def test_score_names_an_invalid_preprocessing_json(tmp_path, checkpoint):
    model = _copy_checkpoint(checkpoint, tmp_path)
    (model / "preprocessing.json").write_text("{oops")
    _fails(
        ["score", str(model), str(checkpoint[1]), "--out", str(tmp_path / "s.h5")],
        1,
        str(model / "preprocessing.json"),
        "not valid JSON",
    )
    assert not (tmp_path / "s.h5").exists()


def test_quantize_refuses_damaged_weights_and_names_a_bad_precision_file(tmp_path, checkpoint):
    model = _copy_checkpoint(checkpoint, tmp_path)
    (model / "model.safetensors").write_bytes(b"")
    out = tmp_path / "q"
    _fails(
        ["quantize", "--checkpoint", str(model), "--out", str(out), "--no-progress"],
        1,
        str(model / "model.safetensors"),
    )
    (model / "model.safetensors").write_bytes((checkpoint[0] / "model.safetensors").read_bytes())
    (model / "config.json").write_text("[1, 2]")
    _fails(
        ["quantize", "--checkpoint", str(model), "--out", str(out), "--no-progress"],
        1,
        str(model / "config.json"),
        "must hold a JSON object, got a list",
    )
    precision = tmp_path / "p.json"
    precision.write_text("{bad")
    _fails(
        [
            "quantize",
            "--checkpoint",
            str(checkpoint[0]),
            "--out",
            str(out),
            "--precision",
            str(precision),
        ],
        1,
        str(precision),
        "not valid JSON",
    )
    _fails(
        ["quantize", "--checkpoint", str(checkpoint[0]), "--out", str(out), "--weight-bits", "2"],
        1,
        "--weight-bits 2",
        "below its 3 integer bits",
    )
    assert not out.exists()


# ---- options validated at parse time -----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["train", "{events}", "--device", "tpu:0"],
        ["train", "{events}", "--device", "cuda:99"],
        ["score", "{model}", "{events}", "--device", "gpu"],
        [
            "shower",
            "sample",
            "--model",
            "{model}",
            "--out",
            "{out}",
            "--events",
            "3",
            "--device",
            "nope",
        ],
    ],
    ids=["train-tpu", "train-cuda99", "score-gpu", "shower-sample"],
)
def test_unknown_device_is_refused_at_parse_time(tmp_path, args):
    events = _toy(tmp_path)
    fill = {
        "events": str(events),
        "model": str(tmp_path / "model"),
        "out": str(tmp_path / "out.h5"),
    }
    _fails([a.format(**fill) for a in args], 2, "--device")
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["unfold", "--example", "gaussian", "--bootstrap", "-1"], "--bootstrap"),
        (["emulate", "--model", "{d}", "--events", "{events}", "--workers", "0"], "--workers"),
        (["emulate", "--model", "{d}", "--events", "{events}", "--workers", "-2"], "--workers"),
        (
            ["abcd", "{events}", "--min-region-events", "-1", "--out", "{d}/abcd"],
            "--min-region-events",
        ),
        (["quantize", "--checkpoint", "{d}", "--weight-bits", "0"], "--weight-bits"),
        (["train", "{events}", "--lr", "0"], "--lr"),
        (["shower", "train", "--data", "{events}", "--out", "{d}/m", "--steps", "-4"], "--steps"),
        (["shower", "train", "--data", "{events}", "--out", "{d}/m", "--steps", "0"], "--steps"),
        (
            ["shower", "train", "--data", "{events}", "--out", "{d}/m", "--voxel-width", "0"],
            "--voxel-width",
        ),
        (["shower", "train", "--data", "{events}", "--out", "{d}/m", "--lr", "0"], "--lr"),
        (
            ["shower", "train", "--data", "{events}", "--out", "{d}/m", "--max-events", "-5"],
            "--max-events",
        ),
        (["shower", "sample", "--model", "{d}", "--out", "{d}/s.h5", "--events", "0"], "--events"),
    ],
)
def test_out_of_range_options_are_refused_at_parse_time(tmp_path, args, option):
    events = _toy(tmp_path)
    before = set(tmp_path.iterdir())
    _fails([a.format(d=tmp_path, events=events) for a in args], 2, option)
    assert set(tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("distill", ["16", "3", "x"])
def test_shower_train_refuses_unreachable_distillation_targets(tmp_path, distill):
    events = _toy(tmp_path)
    _fails(
        [
            "shower",
            "train",
            "--data",
            str(events),
            "--out",
            str(tmp_path / "m"),
            "--steps",
            "8",
            "--distill",
            distill,
        ],
        1,
        "--distill",
    )
    assert not (tmp_path / "m").exists()


# ---- rich markup never eats user text -----------------------------------------------------------


@pytest.mark.parametrize("name", ["run[b]2.h5", "x[/bold].h5", "[red]y.h5"])
def test_file_names_with_markup_are_printed_verbatim(tmp_path, name):
    missing = tmp_path / name
    _fails(["inspect", str(missing)], 1, f"{missing}: file does not exist")
    good = _toy(tmp_path, name)
    result = runner.invoke(app, ["inspect", str(good)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert name in result.output


def test_error_printer_prints_brackets_verbatim(capsys):
    report_error(ValueError("weight must be [ap_fixed<4,1>], got 'ap_fixed<4,1>' in run[b]2.h5"))
    assert (
        capsys.readouterr().err.strip()
        == "error: weight must be [ap_fixed<4,1>], got 'ap_fixed<4,1>' in run[b]2.h5"
    )


# ---- run and unfold configs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events:\n  signal_files: [a.h5]\n", "events.signal_files must be a mapping, got list"),
        ("quantize:\n  qat: 5\n", "quantize.qat must be a mapping, got int 5"),
        ("ad:\n  epochs: ten\n", "ad.epochs must be an integer, got str 'ten'"),
        ("ad:\n  epochs: true\n", "ad.epochs must be an integer, got bool True"),
        ("ad:\n  split: [0.5, x, 0.2]\n", "ad.split[1] must be a number, got str 'x'"),
        ("seed: null\n", "seed must be an integer, got null"),
    ],
)
def test_run_config_type_errors_name_the_key(tmp_path, text, message):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    with pytest.raises(ValueError) as err:
        resolve_config(config)
    assert str(config) in str(err.value) and message in str(err.value)
    runs = tmp_path / "runs"
    _fails(["run", "--config", str(config), "--name", "x"], 1, message)
    assert not runs.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unfold:\n  hidden: {a: 1}\n", "unfold.hidden must be a list, got dict"),
        ("unfold:\n  hidden: [64, wide]\n", "unfold.hidden[1] must be an integer, got str 'wide'"),
        ("unfold: 7\n", "unfold must be a mapping, got int 7"),
        (
            "unfold:\n  bootstrap: -1\n  example: gaussian\n",
            "unfold.bootstrap must be >= 0, got -1",
        ),
    ],
)
def test_unfold_config_errors_name_the_key(tmp_path, text, message):
    config = tmp_path / "u.yaml"
    config.write_text(text)
    before = set(tmp_path.iterdir())
    _fails(["unfold", "--config", str(config)], 1, message)
    assert set(tmp_path.iterdir()) == before


def test_run_config_reads_yaml_exponents_as_numbers(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("ad:\n  lr: 1e-3\n")  # PyYAML reads 1e-3 (no dot) as a string
    assert resolve_config(config)["ad"]["lr"] == 1e-3


@pytest.mark.parametrize(
    ("dataset", "values", "message"),
    [
        (
            "sim_reco",
            np.array([b"a", b"b", b"c"]),
            "dataset 'sim_reco' has dtype |S1, expected real numbers",
        ),
        (
            "data_reco",
            np.array([1 + 2j, 3j, 1]),
            "dataset 'data_reco' has dtype complex128, expected real numbers",
        ),
    ],
    ids=["strings", "complex"],
)
def test_unfold_refuses_non_real_inputs(tmp_path, dataset, values, message):
    path = tmp_path / "in.h5"
    with h5py.File(path, "w") as f:
        for name in ("sim_reco", "sim_gen", "data_reco"):
            f.create_dataset(name, data=values if name == dataset else np.arange(3.0))
    config = tmp_path / "u.yaml"
    out = tmp_path / "unfolded"
    config.write_text(f"unfold:\n  input: {path}\n  out: {out}\n")
    _fails(["unfold", "--config", str(config)], 1, str(path), message)
    assert not out.exists()


# ---- item 8: one spec validation for emulate and firmware ---------------------------------------


@pytest.fixture(scope="module")
def spec():
    return build_spec(
        preset("firmware"),
        QuantConfig(),
        Preprocessing(tuple(range(57)), tuple([6] * 57)),
        thresholds=(12.5, 7.25),
    )


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (
            lambda d: d["preprocessing"]["features"][4].update(shift=99),
            "preprocessing",
            "more than the 53",
        ),
        (
            lambda d: d["preprocessing"]["features"][4].update(shift=-99),
            "preprocessing",
            "more than the 53",
        ),
        (lambda d: d.update(input="ap_fixed<12,-5>"), "input", "at least 1 integer bit"),
        (lambda d: d.update(input="ap_ufixed<12,5>"), "input", "must be signed"),
        (
            lambda d: d["trigger"].update(threshold_r1=10**400),
            "trigger.threshold_r1",
            "finite number",
        ),
        (
            lambda d: d["scores"][0]["nodes"][-1].update(outputs=[[1]]),
            "scores[0].nodes[4].outputs",
            "distinct output indices",
        ),
    ],
    ids=[
        "shift-99",
        "shift-minus-99",
        "negative-integer-input",
        "unsigned-input",
        "huge-threshold",
        "list-output",
    ],
)
def test_spec_loader_refuses_what_the_firmware_cannot_build(tmp_path, spec, edit, field, message):
    data = copy.deepcopy(spec.to_dict())
    edit(data)
    (tmp_path / "spec.json").write_text(json.dumps(data))
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path)
    assert (
        err.value.field == field and message in str(err.value) and str(tmp_path) in str(err.value)
    )
    with pytest.raises(SpecError):
        FirmwareSpec.from_dict(data)  # the same check, whoever builds the spec
    out = tmp_path / "emulated.h5"
    _fails(
        ["emulate", "--model", str(tmp_path), "--events", str(_toy(tmp_path)), "--out", str(out)],
        1,
        field,
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"{", pickle.dumps({"version": 1}), b"[1, 2]", b"null"],
    ids=["empty", "truncated", "pickle", "list", "null"],
)
def test_spec_loader_refuses_malformed_json_naming_the_file(tmp_path, content):
    (tmp_path / "spec.json").write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_spec(tmp_path)
    assert str(tmp_path / "spec.json") in str(err.value)


# ---- damaged ONNX exports (firmware) -------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "pickle", "empty"])
def test_firmware_refuses_damaged_onnx(tmp_path, spec, damage):
    from firmware.models import load_qonnx_pair

    path = tmp_path / "ae1.onnx"
    path.write_bytes(
        {"truncated": b"\x08\x07\x12\x05onnx", "pickle": pickle.dumps([1, 2]), "empty": b""}[damage]
    )
    with pytest.raises(ValueError, match="not a valid ONNX model") as err:
        load_qonnx_pair([path, tmp_path / "ae2.onnx"] if damage == "empty" else [path])
    assert str(path) in str(err.value)


def test_firmware_command_refuses_a_pickle_in_place_of_the_onnx_export(tmp_path):
    from firmware.example import default_model
    from offline.ad.model import AEConfig

    spec, weights = default_model(
        seed=2,
        n_fit=500,
        quantile=0.9,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4),
        score_outputs=(0, 3, 6),
    )
    qdir = tmp_path / "quantized"
    spec.save(qdir, weights)
    (qdir / "ae1.onnx").write_bytes(pickle.dumps({"graph": "evil"}))
    (qdir / "ae2.onnx").write_bytes(pickle.dumps({"graph": "evil"}))
    root = tmp_path / "hls_projects"
    _fails(
        [
            "firmware",
            "--quantized",
            str(qdir),
            "--framework",
            "brevitas",
            "--output-root",
            str(root),
            "--no-yosys",
            "--no-verilator",
        ],
        1,
        str(qdir / "ae1.onnx"),
        "not a valid ONNX model",
    )
    assert not root.exists() or not any(root.iterdir())


# ---- damaged shower models (shower sample / evaluate) -------------------------------------------


@pytest.fixture(scope="module")
def shower_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("shower")
    data, model = root / "showers.h5", root / "model"
    for args in (
        ["shower", "simulate", "--events", "64", "--out", str(data), "--e-max", "2e4"],
        [
            "shower",
            "train",
            "--data",
            str(data),
            "--out",
            str(model),
            "--epochs",
            "1",
            "--steps",
            "2",
            "--distill",
            "",
            "--voxel-width",
            "8",
            "--voxel-depth",
            "1",
            "--batch-size",
            "32",
            "--device",
            "cpu",
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return model, data


def _resave(path, edit_tensors=None, edit_meta=None):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    save_file(tensors, str(path), metadata=meta)


def _wrong_shape(tensors):
    key = next(k for k in tensors if k.startswith("model.") and k.endswith("weight"))
    tensors[key] = tensors[key][:, :1].contiguous()


TEACHER_DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "empty": lambda p: p.write_bytes(b""),
    "pickle": lambda p: p.write_bytes(pickle.dumps({"config": "{}"})),
    "nan": lambda p: _resave(
        p, lambda t: t[next(k for k in t if k.startswith("model."))].fill_(float("nan"))
    ),
    "wrong-shape": lambda p: _resave(p, _wrong_shape),
    "garbage-config": lambda p: _resave(p, edit_meta=lambda m: m.update(config="{not json")),
    "config-list": lambda p: _resave(p, edit_meta=lambda m: m.update(config="[1]")),
    "unknown-setting": lambda p: _resave(p, edit_meta=lambda m: m.update(config='{"colour": 1}')),
    "bad-width": lambda p: _resave(p, edit_meta=lambda m: m.update(config='{"voxel_width": -3}')),
    "garbage-steps": lambda p: _resave(p, edit_meta=lambda m: m.update(steps="many")),
    "missing-table": lambda p: _resave(p, lambda t: t.pop("transform.scalars")),
}


@pytest.mark.parametrize("damage", sorted(TEACHER_DAMAGE))
def test_shower_sample_and_evaluate_refuse_a_damaged_teacher(tmp_path, shower_model, damage):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(shower_model[0], model)
    TEACHER_DAMAGE[damage](model / "teacher.safetensors")
    out = tmp_path / "sampled.h5"
    _fails(
        [
            "shower",
            "sample",
            "--model",
            str(model),
            "--out",
            str(out),
            "--events",
            "4",
            "--device",
            "cpu",
        ],
        1,
        str(model / "teacher.safetensors"),
    )
    assert not out.exists()
    _fails(
        [
            "shower",
            "evaluate",
            "--reference",
            str(shower_model[1]),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "eval"),
            "--device",
            "cpu",
        ],
        1,
        str(model / "teacher.safetensors"),
    )
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize(
    ("args", "code", "option"),
    [
        (
            ["--latency-budget", "-1"],
            1,
            "--latency-budget",
        ),  # clock and budget: firmware.options, one line
        (["--clock-period", "0"], 1, "--clock-period"),
        (["--csim-events", "-5"], 2, "--csim-events"),  # refused while parsing
    ],
)
def test_firmware_options_are_checked_before_anything_is_written(tmp_path, args, code, option):
    root = tmp_path / "hls_projects"
    _fails(
        ["firmware", "--quantized", str(tmp_path), "--output-root", str(root), *args], code, option
    )
    assert not root.exists()


def test_negative_counts_in_a_run_config_name_the_key(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("events:\n  background_events: -5\n")
    _fails(
        ["run", "--config", str(config)],
        1,
        str(config),
        "events.background_events must be >= 0, got -5",
    )
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory, spec):
    from quantize import random_quantized_weights

    directory = tmp_path_factory.mktemp("spec")
    spec.save(directory, random_quantized_weights(spec, seed=1, sparsity=0.5))
    return directory


@pytest.mark.parametrize(("column", "value", "message"), IMPOSSIBLE[:3])
def test_emulate_and_score_refuse_impossible_events(
    tmp_path, spec_dir, checkpoint, column, value, message
):
    path = _bad_events(tmp_path, column, value)
    out = tmp_path / "emulated.h5"
    _fails(
        ["emulate", "--model", str(spec_dir), "--events", str(path), "--out", str(out)],
        1,
        str(path),
        "event 5",
        message,
    )
    assert not out.exists()
    _fails(
        ["score", str(checkpoint[0]), str(path), "--out", str(out)],
        1,
        str(path),
        "event 5",
        message,
    )
    assert not out.exists()


def test_resume_names_an_invalid_state_json(tmp_path, checkpoint):
    model = _copy_checkpoint(checkpoint, tmp_path)
    (model / "state.json").write_text("{truncated")
    _fails(
        [
            "train",
            str(checkpoint[1]),
            "--out",
            str(model),
            "--resume",
            "--epochs",
            "2",
            "--batch-size",
            "200",
            "--no-progress",
            "--device",
            "cpu",
        ],
        1,
        str(model / "state.json"),
        "not valid JSON",
    )


def test_run_unfold_refuses_negative_bootstrap_from_python(tmp_path):
    from l1ad.steps.unfold import DEFAULTS
    from offline.unfold.workflow import run_unfold

    settings = {
        **copy.deepcopy(DEFAULTS),
        "example": "gaussian",
        "bootstrap": -1,
        "out": str(tmp_path / "u"),
    }
    with pytest.raises(ValueError, match="unfold: bootstrap must be >= 0, got -1"):
        run_unfold(settings)
    assert not (tmp_path / "u").exists()


def test_precision_error_keeps_its_brackets(tmp_path, checkpoint):
    precision = tmp_path / "p.json"
    precision.write_text(json.dumps({"default": {"weight": "ap_fixed<4,1>"}}))
    out = tmp_path / "q"
    _fails(
        [
            "quantize",
            "--checkpoint",
            str(checkpoint[0]),
            "--out",
            str(out),
            "--precision",
            str(precision),
        ],
        1,
        "weight must be [width, integer bits], got 'ap_fixed<4,1>'",
    )
    assert not out.exists()
