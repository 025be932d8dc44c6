"""Quantization-aware training (Brevitas, QKeras) and the FirmwareSpec."""

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
    "ScoreSpec",
    "SpecError",
    "TriggerSpec",
    "exact_accumulator",
    "load_spec",
    "load_weights",
    "product_type",
    "sum_type",
    "weight_key",
]
