"""Load (or build) the quantized autoencoder pair as ONE two-output model for hls4ml.

Both networks go into one hls4ml project as one model with a shared input and two
outputs (``ae1`` and ``ae2`` branches), so hls4ml writes one network function
``trigger_nets(x, xhat1, xhat2)`` and the trigger wrapper calls it once; the HLS
scheduler runs the two independent branches side by side.

Keras (QKeras) frontend: a ``.h5``/``.keras`` file holding either the pair (two
outputs) or one network per file. QONNX frontend (Brevitas): one ``.onnx`` with two
outputs, or one per network, merged here with ``onnx.compose``.
:func:`qkeras_pair_from_spec` builds the QKeras pair straight from a FirmwareSpec and
its weights (used by tests and when only the spec is at hand).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quantize.keras_compat import import_qkeras, use_legacy_keras
from quantize.qkeras_model import qkeras_quantizer
from quantize.safe_keras import load_keras_model
from quantize.spec import FirmwareSpec, weight_key


def qkeras_pair_from_spec(spec: FirmwareSpec, weights: dict[str, np.ndarray]) -> Any:
    """A tf_keras functional model: input ``x`` -> (``ae1`` output, ``ae2`` output), QKeras layers named as the spec."""
    keras = use_legacy_keras()
    qkeras = import_qkeras()
    inp = keras.Input(shape=(spec.autoencoders[0].layers[0].n_in,), name="x")
    outputs = []
    for a, ae in enumerate(spec.autoencoders):
        h = inp
        for k, d in enumerate(ae.layers):
            dense = qkeras.QDense(
                d.n_out,
                name=d.name,
                kernel_quantizer=qkeras_quantizer(d.weight),
                bias_quantizer=qkeras_quantizer(d.bias) if d.bias is not None else None,
                use_bias=d.bias is not None,
            )
            h = dense(h)
            w = [np.asarray(weights[weight_key(a, k, "weight")]).T]
            if d.bias is not None:
                w.append(np.asarray(weights[weight_key(a, k, "bias")]))
            dense.set_weights(w)
            quant = qkeras_quantizer(d.activation_result, relu=d.activation == "relu")
            h = qkeras.QActivation(quant, name=f"{d.name}_act")(h)
        outputs.append(h)
    return keras.Model(inp, outputs, name="trigger_nets")


def load_keras_pair(paths: Sequence[str | os.PathLike[str]]) -> Any:
    """One two-output tf_keras model from one file holding the pair or two files holding one network each."""
    keras = use_legacy_keras()
    models = [
        load_keras_model(p) for p in paths
    ]  # checked, safe mode: a model file never runs code
    if len(models) == 1:
        if len(models[0].outputs) != 2:
            raise ValueError(
                f"{paths[0]}: expected a two-output model (the AE pair), got {len(models[0].outputs)}"
            )
        return models[0]
    if len(models) != 2:
        raise ValueError(f"expected 1 or 2 Keras model files, got {len(models)}")
    # rebuild both sequential stacks on one shared input, layer by layer (hls4ml cannot parse nested models)
    inp = keras.Input(shape=models[0].input_shape[1:], name="x")
    outs = []
    for m in models:
        h = inp
        for layer in m.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            clone = layer.__class__.from_config(layer.get_config())
            h = clone(h)
            clone.set_weights(layer.get_weights())
        outs.append(h)
    return keras.Model(inp, outs, name="trigger_nets")


def _load_onnx(path: str | os.PathLike[str]) -> Any:
    """One ONNX model, checked; a missing, truncated or foreign file (a pickle) is a ValueError naming it."""
    import onnx
    from google.protobuf.message import DecodeError

    if not Path(path).is_file():
        raise ValueError(f"{path}: QONNX file does not exist")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except (
        DecodeError,
        onnx.checker.ValidationError,
        OSError,
        ValueError,
        UnicodeDecodeError,
    ) as err:
        detail = " ".join(str(err).split())
        raise ValueError(
            f"{path}: not a valid ONNX model (truncated or corrupt?): {detail}"
        ) from None
    return proto


def load_qonnx_pair(paths: Sequence[str | os.PathLike[str]]) -> Any:
    """One two-output ONNX ModelProto (QONNX) from one file with the pair or two single-network files."""
    protos = [_load_onnx(p) for p in paths]
    if len(protos) == 1:
        if len(protos[0].graph.output) != 2:
            raise ValueError(
                f"{paths[0]}: expected a two-output QONNX model, got {len(protos[0].graph.output)}"
            )
        return protos[0]
    if len(protos) != 2:
        raise ValueError(f"expected 1 or 2 QONNX files, got {len(protos)}")
    from onnx import compose

    a = compose.add_prefix(protos[0], "ae1_")
    b = compose.add_prefix(protos[1], "ae2_")
    # one shared input: feed ae2's input from ae1's
    b_in = b.graph.input[0].name
    merged = compose.merge_models(a, b, io_map=[], prefix1="", prefix2="")
    shared = a.graph.input[0].name
    for node in merged.graph.node:
        for i, name in enumerate(node.input):
            if name == b_in:
                node.input[i] = shared
    keep = [x for x in merged.graph.input if x.name != b_in]
    del merged.graph.input[:]
    merged.graph.input.extend(keep)
    return merged
