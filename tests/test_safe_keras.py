"""Keras model files never run code: Lambda and unknown classes are refused before anything is deserialised."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from l1ad.cli import app
from offline.artifacts import FileFormatError
from quantize.keras_compat import import_qkeras, use_legacy_keras
from quantize.safe_keras import check_model_config, load_keras_model, read_model_config


def _lambda_model(marker):
    """A model whose Lambda layer creates ``marker`` whenever it is built or called."""
    keras = use_legacy_keras()
    payload = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inp = keras.Input((4,), name="x")
    out = keras.layers.Lambda(payload, name="innocent_looking")(
        keras.layers.Dense(4, name="d")(inp)
    )
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def evil_h5(tmp_path_factory):
    root = tmp_path_factory.mktemp("evil")
    marker = root / "pwned"
    path = root / "ae1.h5"
    _lambda_model(marker).save(path)
    assert marker.exists()  # the payload does run whenever the layer is built
    marker.unlink()
    return path, marker


def test_a_lambda_layer_in_an_h5_file_is_refused_naming_it_and_its_code_never_runs(evil_h5):
    path, marker = evil_h5
    with pytest.raises(
        FileFormatError, match=r"ae1\.h5: layer 'innocent_looking' is a Lambda layer"
    ) as err:
        load_keras_model(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_plain_keras_would_have_run_the_payload(evil_h5):
    # why the check exists: Keras' own loader runs the bytecode of an .h5 Lambda (safe_mode covers .keras only)
    path, marker = evil_h5
    keras = use_legacy_keras()
    keras.models.load_model(path, compile=False)
    assert marker.exists()
    marker.unlink()


def test_a_qkeras_model_written_by_l1ad_loads_with_its_quantizers(tmp_path):
    keras = use_legacy_keras()
    q = import_qkeras()
    inp = keras.Input((4,), name="x")
    h = q.QActivation(q.quantized_relu(8, 3), name="a0")(inp)
    h = q.QDense(
        3,
        kernel_quantizer=q.quantized_bits(6, 0, alpha=1),
        bias_quantizer=q.quantized_bits(6, 0, alpha=1),
        name="d",
    )(h)
    h = q.QActivation(q.quantized_relu(6, 2), name="a1")(h)
    model = keras.Model(inp, h)
    model.save(tmp_path / "m.h5")
    loaded = load_keras_model(tmp_path / "m.h5")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def _config(*layers):
    return {"class_name": "Functional", "config": {"name": "m", "layers": list(layers)}}


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"class_name": "TFOpLambda", "config": {"name": "op", "function": "io.write_file"}},
            "layer 'op' is a TFOpLambda layer",
        ),
        (
            {"class_name": "MyCustomLayer", "config": {"name": "c"}},
            "layer 'c' has class 'MyCustomLayer', not an allowed Keras/QKeras class",
        ),
        (
            {
                "class_name": "Dense",
                "config": {"name": "d", "kernel_initializer": {"class_name": "Evil", "config": {}}},
            },
            "layer 'd' kernel_initializer has class 'Evil'",
        ),
        (
            {"class_name": "Dense", "module": "os", "config": {"name": "d"}},
            "layer 'd': Dense comes from module 'os'",
        ),
        (
            {
                "class_name": "QActivation",
                "config": {"name": "a", "activation": "system('touch x')"},
            },
            "layer 'a': activation \"system('touch x')\" is not a known",
        ),
    ],
    ids=["tfoplambda", "custom-class", "nested-class", "foreign-module", "quantizer-string"],
)
def test_anything_that_could_run_code_is_refused_naming_the_layer(tmp_path, layer, message):
    with pytest.raises(FileFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_model_config(
            _config({"class_name": "InputLayer", "config": {"name": "x"}}, layer), tmp_path / "m.h5"
        )


def test_files_without_a_model_config_or_of_another_format_are_refused(tmp_path):
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f["w"] = np.zeros(3)
    with pytest.raises(FileFormatError, match="holds no model config"):
        read_model_config(tmp_path / "weights.h5")
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(FileFormatError, match=r"must be a \.h5 or \.keras file"):
        read_model_config(tmp_path / "m.pkl")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.attrs["model_config"] = json.dumps([1, 2])
    with pytest.raises(FileFormatError, match="must be a JSON object"):
        read_model_config(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.attrs["model_config"] = np.arange(3)
    with pytest.raises(FileFormatError, match="must be JSON text, got ndarray"):
        read_model_config(tmp_path / "bad.h5")
    (tmp_path / "garbage.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(FileFormatError, match=r"garbage\.h5: not a readable Keras model file"):
        read_model_config(tmp_path / "garbage.h5")


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory):
    from firmware.example import default_model
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    spec, weights = default_model(
        seed=2,
        n_fit=500,
        quantile=0.9,
        ae_config=AEConfig(hidden=(), latent=2, bias=True),
        quant_config=QuantConfig().uniform(4),
        score_outputs=(0, 3),
    )
    qdir = tmp_path_factory.mktemp("spec") / "quantized"
    spec.save(qdir, weights)
    return qdir


def test_firmware_refuses_a_quantized_directory_whose_keras_model_holds_a_lambda(
    spec_dir, evil_h5, tmp_path
):
    evil, marker = evil_h5
    qdir = tmp_path / "quantized"
    shutil.copytree(spec_dir, qdir)
    shutil.copy(evil, qdir / "ae1.h5")
    shutil.copy(evil, qdir / "ae2.h5")
    root = tmp_path / "hls_projects"
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app,
        [
            "firmware",
            "--quantized",
            str(qdir),
            "--output-root",
            str(root),
            "--name",
            "p",
            "--no-yosys",
            "--no-verilator",
        ],
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "ae1.h5: layer 'innocent_looking' is a Lambda layer" in lines[0], (
        result.output
    )
    assert not marker.exists() and not root.exists()


def test_the_keras_zip_format_is_checked_the_same_way(tmp_path):
    keras = use_legacy_keras()
    inp = keras.Input((4,), name="x")
    plain = keras.Model(inp, keras.layers.Dense(3, activation="relu", name="d")(inp))
    plain.save(tmp_path / "plain.keras")
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        load_keras_model(tmp_path / "plain.keras").predict(x, verbose=0),
        plain.predict(x, verbose=0),
    )
    marker = tmp_path / "pwned"
    _lambda_model(marker).save(tmp_path / "evil.keras")
    marker.unlink()
    with pytest.raises(
        FileFormatError, match=r"evil\.keras: layer 'innocent_looking' is a Lambda layer"
    ):
        load_keras_model(tmp_path / "evil.keras")
    assert not marker.exists()
