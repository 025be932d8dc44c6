"""Bit widths of the quantized pair, and the FirmwareSpec they imply.

The types are chosen so that Brevitas (power-of-two fixed-point quantizers), QKeras
(``quantized_bits``/``quantized_relu``) and hls4ml all compute the same numbers:

- weights ``ap_fixed<4,1>`` and biases ``ap_fixed<6,3>`` by default (QKeras ``quantized_bits(W, I-1, alpha=1)``,
  Brevitas ``Int{W}`` fixed point, scale ``2**(I-W)``, full range ``[-2**(W-1), 2**(W-1)-1]``);
- hidden activations ``ap_ufixed<W,I,AP_RND_CONV,AP_SAT>`` after ReLU: both frameworks round
  half to even (``torch.round``/``tf.round``) and clip, the modes hls4ml infers for
  ``quantized_relu``;
- dense results are the exact accumulator (no rounding before the activation), so the
  only roundings in the network are the activation casts;
- the input ``ap_fixed<12,5,AP_RND_CONV,AP_SAT>`` holds the preprocessed features
  ``(x - offset) * 2**-shift`` exactly when its fractional bits cover the largest shift
  (``build_spec`` widens it when they do not);
  the output layer is linear and keeps its exact accumulator;
- the score: ``difference`` (x - xhat), ``square`` and the sum ``score`` are casts with
  truncation and saturation (cheap in firmware; saturating sums of non-negative squares
  equal ``min(sum, max)`` in any order).

The defaults are chosen for the latency goal (<= 50 ns, estimated by da4ml at 1 ns per adder
level, ``firmware.cost``) at >= 95 % of the float trigger efficiency at 400 kHz, together with
``QATConfig.sparsity = 0.5``. Measured on the default events (``runs/check1`` float pair, 3 QAT seeds):
the previous defaults (weights <8,3>, input <16,8>, difference <12,6>, square <16,10>, score
<18,12>, no pruning) took 88 adder levels (90 ns, 123k LUTs); these take 47 (50 ns, 51k LUTs)
with quantized/float TPR 1.00-1.09. Features after the shifts are O(1): the input saturates at
+-16, differences at +-8 (squares <= 64, whose 8-bit operand makes a shallow ROM instead of a
12-level multiplier), scores at 4096 (thresholds are ~150). Trained weights stay below 1 in
magnitude, so 4-bit weights need one integer bit.

Every type is given as ``(width, integer)``, integer bits counting the sign bit as in
``ap_fixed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from offline.preprocess import Preprocessing
from quantize.spec import (
    AutoencoderSpec,
    DenseSpec,
    FirmwareSpec,
    FixedType,
    ScoreSpec,
    TriggerSpec,
    exact_accumulator,
    weight_key,
)

if TYPE_CHECKING:
    from offline.ad.model import AEConfig  # torch: only for annotations

__all__ = [
    "LayerPrecision",
    "QuantConfig",
    "build_spec",
    "layer_name",
    "random_quantized_weights",
    "snap_to_grid",
]

Bits = tuple[int, int]


def layer_name(ae: int, layer: int) -> str:
    """hls4ml/Keras layer name of dense layer ``layer`` of autoencoder ``ae`` (0-based): ``ae1_dense0``."""
    return f"ae{ae + 1}_dense{layer}"


@dataclass(frozen=True)
class LayerPrecision:
    """(width, integer bits) of one dense layer's weights, bias and (ReLU) activation."""

    weight: Bits = (4, 1)
    bias: Bits = (6, 3)
    activation: Bits = (8, 3)

    def to_dict(self) -> dict[str, list[int]]:
        return {
            "weight": list(self.weight),
            "bias": list(self.bias),
            "activation": list(self.activation),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerPrecision:
        if not isinstance(data, dict):
            raise ValueError(
                f"quantization config: a layer's precision must be an object, got {type(data).__name__}"
            )
        base = cls()
        return cls(
            **{k: _bits(data.get(k, getattr(base, k)), k) for k in ("weight", "bias", "activation")}
        )


@dataclass(frozen=True)
class QuantConfig:
    """Precision of the whole trigger; ``layers`` overrides ``default`` for layer index k (both AEs)."""

    default: LayerPrecision = LayerPrecision()
    layers: dict[int, LayerPrecision] = field(default_factory=dict)
    input: Bits = (12, 5)
    hardware_input: int = 16
    difference: Bits = (8, 4)
    square: Bits = (12, 7)
    score: Bits = (17, 12)

    def __post_init__(self) -> None:
        for name in ("input", "difference", "square", "score"):
            _bits(getattr(self, name), name)
        for p in (self.default, *self.layers.values()):
            for name in ("weight", "bias", "activation"):
                _bits(getattr(p, name), name)

    def layer(self, k: int) -> LayerPrecision:
        return self.layers.get(k, self.default)

    def uniform(self, weight_bits: int, activation_bits: int | None = None) -> QuantConfig:
        """Same integer bits, other widths for every layer (the scan's knob)."""
        activation_bits = weight_bits if activation_bits is None else activation_bits
        d = self.default
        new = LayerPrecision(
            (weight_bits, d.weight[1]), (weight_bits, d.bias[1]), (activation_bits, d.activation[1])
        )
        return replace(self, default=new, layers={})

    # ---- types ------------------------------------------------------------
    @property
    def input_type(self) -> FixedType:
        return FixedType(*self.input, True, "AP_RND_CONV", "AP_SAT")

    @property
    def hardware_input_type(self) -> FixedType:
        return FixedType(self.hardware_input, self.hardware_input, True)

    def weight_type(self, k: int) -> FixedType:
        return FixedType(*self.layer(k).weight, True)

    def bias_type(self, k: int) -> FixedType:
        return FixedType(*self.layer(k).bias, True)

    def activation_type(self, k: int) -> FixedType:
        return FixedType(*self.layer(k).activation, False, "AP_RND_CONV", "AP_SAT")

    def score_spec(self) -> ScoreSpec:
        return ScoreSpec(
            difference=FixedType(*self.difference, True, "AP_TRN", "AP_SAT"),
            square=FixedType(*self.square, False, "AP_TRN", "AP_SAT"),
            score=FixedType(*self.score, False, "AP_TRN", "AP_SAT"),
        )

    # ---- config files -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "default": self.default.to_dict(),
            "layers": {str(k): v.to_dict() for k, v in sorted(self.layers.items())},
            "input": list(self.input),
            "hardware_input": self.hardware_input,
            "difference": list(self.difference),
            "square": list(self.square),
            "score": list(self.score),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> QuantConfig:
        if data is not None and not isinstance(data, dict):
            raise ValueError(f"quantization config must be an object, got {type(data).__name__}")
        data = dict(data or {})
        base = cls()
        known = {"default", "layers", "input", "hardware_input", "difference", "square", "score"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"quantization config: unknown keys {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(
            default=LayerPrecision.from_dict(data.get("default", {})),
            layers={
                int(k): LayerPrecision.from_dict(v) for k, v in (data.get("layers") or {}).items()
            },
            input=_bits(data.get("input", base.input), "input"),
            hardware_input=int(data.get("hardware_input", base.hardware_input)),
            difference=_bits(data.get("difference", base.difference), "difference"),
            square=_bits(data.get("square", base.square), "square"),
            score=_bits(data.get("score", base.score), "score"),
        )


def _bits(value: Any, name: str) -> Bits:
    try:
        width, integer = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"quantization config: {name} must be [width, integer bits], got {value!r}"
        ) from None
    if not 1 <= width <= 32:
        raise ValueError(f"quantization config: {name} width {width} must be in 1..32")
    if integer > width:
        raise ValueError(
            f"quantization config: {name} width {width} is below its {integer} integer bits"
        )
    return (width, integer)


def build_spec(
    ae_config: AEConfig,
    quant_config: QuantConfig,
    preprocessing: Preprocessing,
    thresholds: tuple[float, float] = (0.0, 0.0),
    fire_on: tuple[str, ...] = ("A",),
    metadata: dict[str, Any] | None = None,
) -> FirmwareSpec:
    """The FirmwareSpec of ``ae_config`` at ``quant_config``'s precision, with exact accumulators.

    Both autoencoders share the layer precisions. When the preprocessing shifts need more
    fractional bits than ``quant_config.input`` has, the input type is widened to hold them
    exactly (same integer bits). Raises SpecError when a threshold is off the score grid.
    """
    input_type = quant_config.input_type
    if input_type.fractional < preprocessing.fractional_bits:
        # the shifts are fitted on data: widen rather than round the inputs (integer bits kept)
        extra = preprocessing.fractional_bits - input_type.fractional
        input_type = replace(input_type, width=input_type.width + extra)
    widths = ae_config.widths
    n_layers = len(widths) - 1
    score = quant_config.score_spec()
    aes = []
    for i in range(2):
        layers = []
        layer_input = input_type
        for k in range(n_layers):
            weight = quant_config.weight_type(k)
            bias = quant_config.bias_type(k) if ae_config.bias else None
            acc = exact_accumulator(weight, layer_input, widths[k], bias)
            last = k == n_layers - 1
            act = acc if last else quant_config.activation_type(k)
            layers.append(
                DenseSpec(
                    name=layer_name(i, k),
                    n_in=widths[k],
                    n_out=widths[k + 1],
                    weight=weight,
                    bias=bias,
                    accumulator=acc,
                    result=acc,
                    activation="linear" if last else "relu",
                    activation_result=act,
                )
            )
            layer_input = act
        aes.append(AutoencoderSpec(f"ae{i + 1}", tuple(layers), score))
    meta = {
        "quant_config": quant_config.to_dict(),
        "ae_config": ae_config.to_dict(),
        **(metadata or {}),
    }
    return FirmwareSpec(
        hardware_input=quant_config.hardware_input_type,
        preprocessing=preprocessing,
        input=input_type,
        autoencoders=(aes[0], aes[1]),
        trigger=TriggerSpec(float(thresholds[0]), float(thresholds[1]), tuple(fire_on)),
        metadata=meta,
    )


def snap_to_grid(value: float, ftype: FixedType) -> float:
    """The largest value of ``ftype`` not above ``value`` (clipped to its range): a threshold on its grid."""
    mant = math.floor(math.ldexp(float(value), ftype.fractional))
    return math.ldexp(min(max(mant, ftype.min_int), ftype.max_int), -ftype.fractional)


def random_quantized_weights(
    spec: FirmwareSpec, seed: int, sparsity: float = 0.0
) -> dict[str, np.ndarray]:
    """Random weights and biases on the spec's grids (for firmware/emulation tests).

    Weights ~ N(0, 2/n_in) (He scale, keeps activations in range), biases ~ N(0, 0.25),
    rounded to the grid and clipped to the type; ``sparsity`` zeroes exactly that fraction
    of each weight matrix (largest-remainder rounding of the count).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} must be in [0, 1)")
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i, ae in enumerate(spec.autoencoders):
        for k, d in enumerate(ae.layers):
            w = rng.normal(0.0, math.sqrt(2.0 / d.n_in), (d.n_out, d.n_in))
            w = _on_grid(w, d.weight)
            n_zero = round(sparsity * w.size)
            if n_zero:
                w.flat[rng.choice(w.size, n_zero, replace=False)] = 0.0
            out[weight_key(i, k, "weight")] = w
            if d.bias is not None:
                out[weight_key(i, k, "bias")] = _on_grid(rng.normal(0.0, 0.5, d.n_out), d.bias)
    return out


def _on_grid(values: np.ndarray, ftype: FixedType) -> np.ndarray:
    mant = np.clip(np.rint(np.ldexp(values, ftype.fractional)), ftype.min_int, ftype.max_int)
    return np.ldexp(mant, -ftype.fractional)
