"""Keras model files are untrusted input: their config is checked before anything is deserialised.

Why our own check: Keras' ``safe_mode`` covers only the ``.keras`` zip format. A legacy
``.h5`` file (what QKeras and hls4ml 1.3 use) can hold a ``Lambda`` layer whose marshalled
bytecode runs as it loads, and a ``TFOpLambda`` calls any TensorFlow op by name. So every
class named anywhere in the model's config (layers, initializers, constraints,
regularizers, quantizers) must be one of the plain Keras/QKeras classes below, every
``module`` a Keras/QKeras one, and quantizer/activation strings a known name with
literal arguments; only then is the file loaded, with ``safe_mode=True`` (``.keras``)
or inside Keras' safe-mode scope (``.h5``).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from offline.artifacts import FileFormatError
from quantize.keras_compat import import_qkeras, use_legacy_keras

__all__ = ["ALLOWED_CLASSES", "check_model_config", "load_keras_model", "read_model_config"]

_LAYERS = {
    # models and plumbing
    "Functional",
    "Model",
    "Sequential",
    "InputLayer",
    # Keras layers hls4ml converts (no layer here runs code from the file)
    "Dense",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ThresholdedReLU",
    "Softmax",
    "BatchNormalization",
    "LayerNormalization",
    "Dropout",
    "Flatten",
    "Reshape",
    "Permute",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
    "Conv1D",
    "Conv2D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "UpSampling1D",
    "UpSampling2D",
    "Cropping1D",
    "Cropping2D",
    "Embedding",
    "SimpleRNN",
    "LSTM",
    "GRU",
    # QKeras layers
    "QDense",
    "QActivation",
    "QAdaptiveActivation",
    "QBatchNormalization",
    "QConv1D",
    "QConv2D",
    "QConv2DTranspose",
    "QDepthwiseConv2D",
    "QSeparableConv1D",
    "QSeparableConv2D",
    "QConv2DBatchnorm",
    "QDepthwiseConv2DBatchnorm",
    "QAveragePooling2D",
    "QGlobalAveragePooling2D",
    "QSimpleRNN",
    "QSimpleRNNCell",
    "QLSTM",
    "QLSTMCell",
    "QGRU",
    "QGRUCell",
}
_QUANTIZERS = {
    "quantized_bits",
    "quantized_relu",
    "quantized_tanh",
    "quantized_sigmoid",
    "quantized_po2",
    "quantized_relu_po2",
    "quantized_ulaw",
    "binary",
    "stochastic_binary",
    "ternary",
    "stochastic_ternary",
    "bernoulli",
}
_HELPERS = {
    # initializers
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "Orthogonal",
    "Identity",
    "QInitializer",
    # constraints and regularizers
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "RadialConstraint",
    "Clip",
    "L1",
    "L2",
    "L1L2",
    # dtype policies (mixed precision)
    "Policy",
    "DTypePolicy",
}
ALLOWED_CLASSES = frozenset(_LAYERS | _QUANTIZERS | _HELPERS)
_ACTIVATIONS = {
    "linear",
    "relu",
    "relu6",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "softplus",
    "softsign",
    "elu",
    "selu",
    "exponential",
    "swish",
    "silu",
    "gelu",
    "leaky_relu",
}
_MODULES = ("keras", "tf_keras", "qkeras")
_NAMED = re.compile(r"(?P<head>[A-Za-z_]\w*)(?:\((?P<args>[\w\s.,=+\-'\"]*)\))?")


def read_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model config stored in a ``.h5`` (``model_config`` attribute) or ``.keras`` (``config.json``)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "Keras model file does not exist")
    try:
        if path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                raw = z.read("config.json")
        else:
            raise FileFormatError(path, "a Keras model must be a .h5 or .keras file")
    except (OSError, zipfile.BadZipFile, KeyError) as err:
        raise FileFormatError(path, f"not a readable Keras model file ({err})") from None
    if raw is None:
        raise FileFormatError(path, "holds no model config (weights only?)")
    if not isinstance(raw, str | bytes):
        raise FileFormatError(path, f"model config must be JSON text, got {type(raw).__name__}")
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FileFormatError(path, f"model config is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise FileFormatError(
            path, f"model config must be a JSON object, got {type(config).__name__}"
        )
    return config


_LAYER_KEYS = ("", "layers", "layer", "cell", "forward_layer", "backward_layer")
_CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")


def check_model_config(config: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse (``FileFormatError`` naming the layer) anything in the config that could run code."""
    _check(config, Path(path), "", "")


def _check(obj: Any, path: Path, layer: str, key: str) -> None:
    where = f"layer {layer!r}" if layer else "model"
    if isinstance(obj, list):
        for value in obj:
            _check(value, path, layer, key)
        return
    if isinstance(obj, str):
        if key.endswith("quantizer") or key in ("activation", "recurrent_activation"):
            match = _NAMED.fullmatch(obj.replace(" ", ""))
            if match is None or match["head"] not in _QUANTIZERS | _ACTIVATIONS:
                raise FileFormatError(
                    path,
                    f"{where}: {key} {obj!r} is not a known Keras/QKeras quantizer or activation",
                )
        return
    if not isinstance(obj, dict):
        return
    if "class_name" in obj:
        cls, inner = obj["class_name"], obj.get("config")
        is_layer = key in _LAYER_KEYS
        if is_layer and isinstance(inner, dict) and isinstance(inner.get("name"), str):
            layer = inner["name"]
            where = f"layer {layer!r}"
        if cls in _CODE_LAYERS:
            raise FileFormatError(
                path,
                f"{where} is a {cls} layer (code inside a model file): refused, model files never run code",
            )
        if cls == "function":  # the .keras format's reference to a built-in activation, by name
            if (
                not isinstance(inner, str)
                or inner not in _ACTIVATIONS
                or "activations" not in str(obj.get("module", ""))
            ):
                raise FileFormatError(
                    path,
                    f"{where}: {key} refers to function {inner!r}, not a Keras activation: refused",
                )
        elif not isinstance(cls, str) or cls not in ALLOWED_CLASSES:
            what = "has" if is_layer else f"{key} has"
            raise FileFormatError(
                path, f"{where} {what} class {cls!r}, not an allowed Keras/QKeras class: refused"
            )
        module = obj.get("module")
        if module is not None and (
            not isinstance(module, str) or module.split(".")[0] not in _MODULES
        ):
            raise FileFormatError(
                path, f"{where}: {cls} comes from module {module!r}, not Keras/QKeras: refused"
            )
    for k, value in obj.items():
        if k not in ("class_name", "module", "registered_name"):
            _check(value, path, layer, k)


def load_keras_model(path: str | os.PathLike[str]) -> Any:
    """A tf_keras model from an untrusted ``.h5``/``.keras`` file: checked first, loaded in safe mode."""
    path = Path(path)
    check_model_config(read_model_config(path), path)
    keras = use_legacy_keras()
    import_qkeras()
    from qkeras.utils import _add_supported_quantized_objects
    from tf_keras.src.saving import serialization_lib

    objects: dict[str, Any] = {}
    _add_supported_quantized_objects(objects)
    try:
        with serialization_lib.SafeModeScope(
            True
        ):  # .h5 loading ignores safe_mode=; the scope is what Lambda checks
            return keras.models.load_model(
                path, custom_objects=objects, compile=False, safe_mode=True
            )
    except (TypeError, KeyError, AttributeError) as err:
        raise FileFormatError(
            path, f"cannot rebuild the Keras model ({type(err).__name__}: {err})"
        ) from None
