"""Quantization-aware training (Brevitas, QKeras) and the FirmwareSpec.

Light imports only here; the frameworks load on use: ``quantize.brevitas_model``,
``quantize.qkeras_model`` (through ``quantize.keras_compat``), ``quantize.workflow``
(checkpoint -> spec), ``quantize.scan``. The FirmwareSpec and its exact executor are ``emulation``'s
(the package below this one): ``quantize.spec`` re-exports the spec, ``quantize.workflow`` runs the
trigger emulator for the QAT inputs, thresholds and quantized scores.
"""

from quantize.precision import (
    LayerPrecision,
    QuantConfig,
    build_spec,
    layer_name,
    random_quantized_weights,
    snap_to_grid,
)
from quantize.qat import QATConfig, weight_sparsity
from quantize.spec import (
    AutoencoderSpec,
    DenseSpec,
    FirmwareSpec,
    FixedType,
    ScoreSpec,
    SpecError,
    TriggerSpec,
    exact_accumulator,
    load_spec,
    load_weights,
    product_type,
    sum_type,
    weight_key,
)

__all__ = [
    "AutoencoderSpec",
    "DenseSpec",
    "FirmwareSpec",
    "FixedType",
    "LayerPrecision",
    "QATConfig",
    "QuantConfig",
    "ScoreSpec",
    "SpecError",
    "TriggerSpec",
    "build_spec",
    "exact_accumulator",
    "layer_name",
    "load_spec",
    "load_weights",
    "product_type",
    "random_quantized_weights",
    "snap_to_grid",
    "sum_type",
    "weight_key",
    "weight_sparsity",
]
