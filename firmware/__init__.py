"""hls4ml firmware for the trigger: conversion, wrapper, projects, hardware cost, budget.

Imports stay lazy-friendly: hls4ml/TensorFlow load only when a conversion runs.
"""

from firmware.budget import PARTS, BudgetError, BudgetVerdict, check_budget, part_capacity
from firmware.build import FirmwareResult, QuantizedModel, build_firmware, load_quantized
from firmware.convert import BACKENDS, ConversionSettings, convert
from firmware.cost import CostReport, estimate
from firmware.project import (
    CSim,
    CSimOutputs,
    Project,
    Reference,
    TriggerBits,
    build_testbench,
    write_project,
)

__all__ = [
    "BACKENDS",
    "PARTS",
    "BudgetError",
    "BudgetVerdict",
    "CSim",
    "CSimOutputs",
    "ConversionSettings",
    "CostReport",
    "FirmwareResult",
    "Project",
    "QuantizedModel",
    "Reference",
    "TriggerBits",
    "build_firmware",
    "build_testbench",
    "check_budget",
    "convert",
    "estimate",
    "load_quantized",
    "part_capacity",
    "write_project",
]
