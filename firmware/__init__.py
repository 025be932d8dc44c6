"""hls4ml firmware for the trigger: conversion, wrapper, projects, hardware cost, budget, and the
C-simulation bridges the emulator is checked against (``firmware.csim``, ``firmware.trigger_csim``).

Imports stay lazy-friendly: hls4ml/TensorFlow load only when a conversion runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offline.lazy import lazy_exports

if TYPE_CHECKING:
    from firmware.budget import PARTS, BudgetError, BudgetVerdict, check_budget, part_capacity
    from firmware.build import FirmwareResult, QuantizedModel, build_firmware, load_quantized
    from firmware.convert import BACKENDS, ConversionSettings, convert
    from firmware.cost import CostReport, Da4mlLatency, da4ml_latency, estimate
    from firmware.csim import (
        CSimulation,
        build_qkeras_dense,
        compare_plain_csim,
        write_qkeras_project,
    )
    from firmware.latency_scan import scan_latency, scan_latency_files
    from firmware.project import (
        CSim,
        CSimOutputs,
        Project,
        TriggerBits,
        build_testbench,
        write_project,
    )
    from firmware.trigger_csim import (
        CSimComparison,
        check_emulation,
        compare_trigger_csim,
        compare_trigger_files_csim,
        find_trigger_project,
        write_trigger_project,
    )

__all__ = [
    "BACKENDS",
    "PARTS",
    "BudgetError",
    "BudgetVerdict",
    "CSim",
    "CSimComparison",
    "CSimOutputs",
    "CSimulation",
    "ConversionSettings",
    "CostReport",
    "Da4mlLatency",
    "FirmwareResult",
    "Project",
    "QuantizedModel",
    "TriggerBits",
    "build_firmware",
    "build_qkeras_dense",
    "build_testbench",
    "check_budget",
    "check_emulation",
    "compare_plain_csim",
    "compare_trigger_csim",
    "compare_trigger_files_csim",
    "convert",
    "da4ml_latency",
    "estimate",
    "find_trigger_project",
    "load_quantized",
    "part_capacity",
    "scan_latency",
    "scan_latency_files",
    "write_project",
    "write_qkeras_project",
    "write_trigger_project",
]

# public names load their submodule on first use (PEP 562), so `import firmware.x` stays light
_EXPORTS = {
    "PARTS": "firmware.budget",
    "BudgetError": "firmware.budget",
    "BudgetVerdict": "firmware.budget",
    "check_budget": "firmware.budget",
    "part_capacity": "firmware.budget",
    "FirmwareResult": "firmware.build",
    "QuantizedModel": "firmware.build",
    "build_firmware": "firmware.build",
    "load_quantized": "firmware.build",
    "BACKENDS": "firmware.convert",
    "ConversionSettings": "firmware.convert",
    "convert": "firmware.convert",
    "CostReport": "firmware.cost",
    "estimate": "firmware.cost",
    "Da4mlLatency": "firmware.cost",
    "da4ml_latency": "firmware.cost",
    "CSimulation": "firmware.csim",
    "build_qkeras_dense": "firmware.csim",
    "compare_plain_csim": "firmware.csim",
    "write_qkeras_project": "firmware.csim",
    "scan_latency": "firmware.latency_scan",
    "scan_latency_files": "firmware.latency_scan",
    "CSim": "firmware.project",
    "CSimOutputs": "firmware.project",
    "Project": "firmware.project",
    "TriggerBits": "firmware.project",
    "build_testbench": "firmware.project",
    "write_project": "firmware.project",
    "CSimComparison": "firmware.trigger_csim",
    "check_emulation": "firmware.trigger_csim",
    "compare_trigger_csim": "firmware.trigger_csim",
    "compare_trigger_files_csim": "firmware.trigger_csim",
    "find_trigger_project": "firmware.trigger_csim",
    "write_trigger_project": "firmware.trigger_csim",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
