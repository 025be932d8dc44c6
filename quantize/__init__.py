"""Quantization-aware training (Brevitas, QKeras) and the FirmwareSpec."""

from quantize.precision import (
    LayerPrecision,
    QuantConfig,
    build_spec,
    layer_name,
    random_quantized_weights,
    snap_to_grid,
)
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
]
