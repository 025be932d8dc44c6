"""Bit-accurate emulation of the trigger: ap_fixed arithmetic, emulator, C-simulation bridge."""

from emulation.csim import CSimulation, build_qkeras_dense, write_qkeras_project
from emulation.fixed import (
    OVERFLOW_MODES,
    QUANTIZATION_MODES,
    FixedType,
    OverflowCounter,
    add,
    cast,
    from_float,
    multiply,
    plus_type,
    product_type,
    to_float,
)
from emulation.hls_project import ActivationLayer, DenseLayer, HLSProject, load_hls_project
from emulation.network import (
    EmulationResult,
    dense_latency,
    emulate_project,
    linear,
    relu,
    run_layers,
)

__all__ = [
    "OVERFLOW_MODES",
    "QUANTIZATION_MODES",
    "ActivationLayer",
    "CSimulation",
    "DenseLayer",
    "EmulationResult",
    "FixedType",
    "HLSProject",
    "OverflowCounter",
    "add",
    "build_qkeras_dense",
    "cast",
    "dense_latency",
    "emulate_project",
    "from_float",
    "linear",
    "load_hls_project",
    "multiply",
    "plus_type",
    "product_type",
    "relu",
    "run_layers",
    "to_float",
    "write_qkeras_project",
]
