"""The quantized pair in QKeras (legacy Keras 2, TensorFlow 2.21), built from a FirmwareSpec.

One Keras model per autoencoder (what hls4ml converts): ``{ae}_in`` (never ``input``, a
reserved hls4ml name), an input ``QActivation(quantized_bits)``, then per layer a
``QDense`` named as the spec's ``DenseSpec.name`` (so hls4ml's per-layer precision keys
match) and a ``QActivation(quantized_relu)`` ``{ae}_relu{k}`` after hidden layers.

Type mapping (:func:`qkeras_quantizer`; ``ap_fixed<W,I>`` counts the sign in I, QKeras does not):
``quantized_bits(W, I-1, alpha=1)`` for signed types, ``quantized_relu(W, I)`` for
``ap_ufixed<W,I>``; both round half to even (``tf.round``) and clip (``AP_RND_CONV,
AP_SAT``, what hls4ml infers for them).

Training mirrors :mod:`quantize.brevitas_model`: the loss of ``offline.ad.train.pair_loss``
(mean weighted R1 + R2 + λ·DisCo²) with DisCo² in TensorFlow (:func:`disco_sq`, checked
against ``offline.ad.disco.disco_sq`` in the tests) and the same numpy magnitude pruning.
TensorFlow is imported lazily, through :mod:`quantize.keras_compat`.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from quantize.keras_compat import import_qkeras, use_legacy_keras
from quantize.qat import QATConfig, magnitude_mask, sparsity_at
from quantize.spec import (
    AutoencoderSpec,
    FirmwareSpec,
    FixedType,
    require_reconstruction,
    weight_key,
)

__all__ = [
    "QKerasPair",
    "disco_sq",
    "finetune",
    "load_keras",
    "qkeras_quantizer",
    "quantized_weights",
    "save_keras",
]

_EXACT_ACT = ("AP_RND_CONV", "AP_SAT")


def _tf():
    use_legacy_keras()
    import tensorflow as tf

    return tf


def qkeras_quantizer(t: FixedType, relu: bool | None = None) -> Any:
    """The QKeras quantizer of ``t``, the one FixedType -> QKeras mapping (QAT and firmware).

    ``ap_fixed<W,I>`` counts the sign in I, QKeras does not: ``quantized_bits(W, I-1, alpha=1)``
    for signed types, ``quantized_relu(W, I)`` for unsigned ones. ``relu`` picks the kind for an
    activation instead of the sign (hls4ml reads ``quantized_relu`` as a ReLU, ``quantized_bits``
    as linear): True after a ReLU layer, False after a linear one.
    """
    qkeras = import_qkeras()
    if relu is None:
        relu = not t.signed
    if relu:
        return qkeras.quantized_relu(t.width, t.integer)
    return qkeras.quantized_bits(t.width, t.integer - 1, alpha=1)


def _act_quantizer(t: FixedType, where: str) -> Any:
    if (t.rounding, t.overflow) != _EXACT_ACT:
        raise ValueError(
            f"{where}: QKeras activations round half to even and saturate; {t} is not {_EXACT_ACT}"
        )
    return qkeras_quantizer(t)


def build_autoencoder(spec: AutoencoderSpec, input_type: FixedType) -> Any:
    """The Keras model of one autoencoder (input -> reconstruction)."""
    qkeras = import_qkeras()
    keras = use_legacy_keras()
    inp = keras.Input((spec.layers[0].n_in,), name=f"{spec.name}_in")
    x = qkeras.QActivation(_act_quantizer(input_type, "input"), name=f"{spec.name}_input_quant")(
        inp
    )
    for k, d in enumerate(spec.layers):
        if d.result != d.accumulator:
            raise ValueError(f"{d.name}: QKeras keeps the exact accumulator as the dense result")
        x = qkeras.QDense(
            d.n_out,
            kernel_quantizer=qkeras_quantizer(d.weight),
            bias_quantizer=qkeras_quantizer(d.bias) if d.bias is not None else None,
            use_bias=d.bias is not None,
            name=d.name,
        )(x)
        if d.activation == "relu":
            x = qkeras.QActivation(
                _act_quantizer(d.activation_result, d.name), name=f"{spec.name}_relu{k}"
            )(x)
        elif d.activation_result != d.result:
            raise ValueError(
                f"{d.name}: a linear layer's result must be its exact accumulator in QKeras"
            )
    return keras.Model(inp, x, name=spec.name)


class QKerasPair:
    """The two Keras autoencoders of a spec; ``__call__`` returns (R1, R2) tensors."""

    def __init__(self, spec: FirmwareSpec, models: tuple[Any, Any] | None = None) -> None:
        require_reconstruction(spec, "the QKeras pair")
        self.spec = spec
        self.models = models or tuple(build_autoencoder(ae, spec.input) for ae in spec.autoencoders)

    def dense(self, ae: int) -> list[Any]:
        return [self.models[ae].get_layer(d.name) for d in self.spec.autoencoders[ae].layers]

    def __call__(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        tf = _tf()
        x = tf.convert_to_tensor(x, tf.float32)
        # inputs are already on the input grid (quantize.workflow.model_inputs), so x is its own quantization
        return tuple(
            tf.reduce_sum((x - m(x, training=training)) ** 2, axis=-1) for m in self.models
        )

    @property
    def trainable_variables(self) -> list[Any]:
        return [v for m in self.models for v in m.trainable_variables]

    def load_float(self, state: dict[str, np.ndarray]) -> QKerasPair:
        """Weights from a torch state dict (``ae{i}.layers.{k}.weight`` (out, in)), float or on-grid."""
        for i in range(2):
            for k, layer in enumerate(self.dense(i)):
                w = [np.asarray(state[weight_key(i, k, "weight")], dtype=np.float32).T]
                if layer.use_bias:
                    w.append(np.asarray(state[weight_key(i, k, "bias")], dtype=np.float32))
                layer.set_weights(w)
        return self

    load_quantized = load_float

    def predict(self, x: np.ndarray, ae: int) -> np.ndarray:
        return self.models[ae](np.asarray(x, dtype=np.float32), training=False).numpy()

    def trace(self, x: np.ndarray, ae: int) -> list[np.ndarray]:
        """Every activation of autoencoder ``ae`` (input quantizer, then each layer's last op)."""
        keras = use_legacy_keras()
        m = self.models[ae]
        names = [f"{m.name}_input_quant"]
        for k, d in enumerate(self.spec.autoencoders[ae].layers):
            names.append(f"{m.name}_relu{k}" if d.activation == "relu" else d.name)
        probe = keras.Model(m.inputs, [m.get_layer(n).output for n in names])
        return [o.numpy() for o in probe(np.asarray(x, dtype=np.float32), training=False)]


def quantized_weights(pair: QKerasPair) -> dict[str, np.ndarray]:
    """Weights and biases through their quantizers, torch layout (out, in): exact grid values."""
    out = {}
    for i in range(2):
        for k, layer in enumerate(pair.dense(i)):
            out[weight_key(i, k, "weight")] = np.asarray(
                layer.kernel_quantizer_internal(layer.kernel)
            ).T.astype(np.float64)
            if layer.use_bias:
                out[weight_key(i, k, "bias")] = np.asarray(
                    layer.bias_quantizer_internal(layer.bias)
                ).astype(np.float64)
    return out


def disco_sq(x: Any, y: Any, weights: Any) -> Any:
    """Event-weighted DisCo² in TensorFlow (the formula of ``offline.ad.disco.disco_sq``)."""
    tf = _tf()
    w = weights * (tf.cast(tf.size(weights), tf.float32) / tf.reduce_sum(weights))

    def centred(v):
        a = tf.abs(v[:, None] - v[None, :])
        row = tf.reduce_mean(a * w[None, :], axis=1)
        grand = tf.reduce_mean(row * w)
        return a - row[:, None] - row[None, :] + grand

    a, b = centred(x), centred(y)
    ww = w[:, None] * w[None, :]
    ab = tf.reduce_mean(a * b * ww)
    aa = tf.reduce_mean(a * a * ww)
    bb = tf.reduce_mean(b * b * ww)
    return ab / tf.sqrt(aa * bb + np.finfo(np.float32).tiny)


def _loss(r1: Any, r2: Any, w: Any, lam: float) -> Any:
    tf = _tf()
    total = tf.reduce_sum(w * r1) / tf.reduce_sum(w) + tf.reduce_sum(w * r2) / tf.reduce_sum(w)
    return total + lam * disco_sq(r1, r2, w) if lam > 0 else total


def finetune(
    pair: QKerasPair,
    train_x: np.ndarray,
    train_w: np.ndarray,
    val_x: np.ndarray,
    val_w: np.ndarray,
    config: QATConfig,
    lam: float,
) -> list[dict[str, float]]:
    """QAT as :func:`quantize.brevitas_model.finetune` (same loss, schedule, pruning, best-epoch choice)."""
    tf = _tf()
    tf.random.set_seed(config.seed)
    keras = use_legacy_keras()
    rng = np.random.default_rng(config.seed)
    x = np.asarray(train_x, dtype=np.float32)
    w = np.asarray(train_w, dtype=np.float32)
    batch = min(config.batch_size, len(x))
    per_epoch = max(len(x) // batch, 1)
    total = per_epoch * config.epochs
    opt = keras.optimizers.Adam(learning_rate=config.lr)
    variables = pair.trainable_variables
    kernels = [layer.kernel for i in range(2) for layer in pair.dense(i)]
    masks: dict[int, np.ndarray] = {}

    @tf.function
    def step(xb, wb):
        with tf.GradientTape() as tape:
            r1, r2 = pair(xb, training=True)
            loss = _loss(r1, r2, wb, lam)
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    history, best, best_weights, n = [], math.inf, None, 0
    bar = tqdm(range(config.epochs), desc="QAT (QKeras)", disable=not config.progress, leave=False)
    for epoch in bar:
        order = rng.permutation(len(x))
        losses = []
        for b in range(per_epoch):
            idx = order[b * batch : (b + 1) * batch]
            losses.append(float(step(tf.constant(x[idx]), tf.constant(w[idx]))))
            n += 1
            target = sparsity_at(config, n, total)
            if target > 0:
                for j, kern in enumerate(kernels):
                    masks[j] = magnitude_mask(kern.numpy(), target, masks.get(j))
                    kern.assign(kern.numpy() * masks[j])
        r1, r2 = pair(val_x)
        val = float(_loss(r1, r2, tf.constant(np.asarray(val_w, dtype=np.float32)), lam))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val})
        bar.set_postfix(val=f"{val:.4g}")
        if sparsity_at(config, n, total) >= config.sparsity and val < best:
            best, best_weights = val, [m.get_weights() for m in pair.models]
    if best_weights is not None:
        for m, wts in zip(pair.models, best_weights, strict=True):
            m.set_weights(wts)
    return history


def save_keras(pair: QKerasPair, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Each autoencoder as ``{ae}.h5`` (legacy Keras HDF5, what hls4ml 1.3 reads best)."""
    from offline.artifacts import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for m in pair.models:
        target = directory / f"{m.name}.h5"
        with atomic_path(target) as tmp:
            h5 = tmp.with_name(tmp.name + ".h5")
            with warnings.catch_warnings():
                # HDF5 is what hls4ml reads best (not "legacy" for us); QKeras serialises its
                # quantizers through keras.constraints, which warns about the type.
                warnings.filterwarnings(
                    "ignore", message="You are saving your model as an HDF5 file"
                )
                warnings.filterwarnings(
                    "ignore", message=r"The `keras\.constraints\.serialize\(\)` API"
                )
                m.save(str(h5))
            os.replace(h5, tmp)
        paths[m.name] = target
    return paths


def load_keras(spec: FirmwareSpec, directory: str | os.PathLike[str]) -> QKerasPair:
    """Load ``ae1.h5``/``ae2.h5`` written by :func:`save_keras` (QKeras custom objects)."""
    from quantize.safe_keras import load_keras_model

    directory = Path(directory)
    models = [load_keras_model(directory / f"{ae.name}.h5") for ae in spec.autoencoders]
    return QKerasPair(spec, (models[0], models[1]))
