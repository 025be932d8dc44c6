"""Bit-accurate emulation of the trigger: the FirmwareSpec (:mod:`emulation.spec`), ap_fixed arithmetic,
the emulator, and what ``l1ad emulate`` runs on files (:mod:`emulation.workflow`).

The bottom of the toolkit's stack above ``offline``: ``quantize`` and ``firmware`` import it, it
imports neither (the C-simulation bridges are ``firmware.csim`` and ``firmware.trigger_csim``).
Public names load their submodule on first use (PEP 562), so ``import emulation.spec`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offline.lazy import lazy_exports

if TYPE_CHECKING:
    from emulation.events import (
        EventsEmulation,
        binomial_efficiency,
        emulate_events,
        find_spec,
        load_trigger,
        trigger_rate,
    )
    from emulation.fixed import (
        OVERFLOW_MODES,
        QUANTIZATION_MODES,
        FixedType,
        OverflowCounter,
        add,
        cast,
        from_float,
        mantissa_dtype,
        multiply,
        plus_type,
        product_type,
        to_float,
    )
    from emulation.hls_project import (
        ActivationLayer,
        DenseLayer,
        HLSProject,
        Port,
        load_hls_project,
    )
    from emulation.hls_text import resolve_size
    from emulation.network import (
        EmulationResult,
        dense_latency,
        emulate_project,
        linear,
        relu,
        run_layers,
    )
    from emulation.spec import FirmwareSpec, SpecError, load_spec, load_weights
    from emulation.trigger import (
        TriggerEmulator,
        TriggerOutputs,
        emulate_trigger,
        input_mantissas,
        place_thresholds,
        score_mantissas,
        threshold_mantissas,
    )
    from emulation.workflow import emulate_plain, emulate_trigger_files, load_inputs, overflow_table

__all__ = [
    "OVERFLOW_MODES",
    "QUANTIZATION_MODES",
    "ActivationLayer",
    "DenseLayer",
    "EmulationResult",
    "EventsEmulation",
    "FirmwareSpec",
    "FixedType",
    "HLSProject",
    "OverflowCounter",
    "Port",
    "SpecError",
    "TriggerEmulator",
    "TriggerOutputs",
    "add",
    "binomial_efficiency",
    "cast",
    "dense_latency",
    "emulate_events",
    "emulate_plain",
    "emulate_project",
    "emulate_trigger",
    "emulate_trigger_files",
    "find_spec",
    "from_float",
    "input_mantissas",
    "linear",
    "load_hls_project",
    "load_inputs",
    "load_spec",
    "load_trigger",
    "load_weights",
    "mantissa_dtype",
    "multiply",
    "overflow_table",
    "place_thresholds",
    "plus_type",
    "product_type",
    "relu",
    "resolve_size",
    "run_layers",
    "score_mantissas",
    "threshold_mantissas",
    "to_float",
    "trigger_rate",
]

_EXPORTS = {
    "EventsEmulation": "emulation.events",
    "binomial_efficiency": "emulation.events",
    "emulate_events": "emulation.events",
    "find_spec": "emulation.events",
    "load_trigger": "emulation.events",
    "trigger_rate": "emulation.events",
    "OVERFLOW_MODES": "emulation.fixed",
    "QUANTIZATION_MODES": "emulation.fixed",
    "FixedType": "emulation.fixed",
    "OverflowCounter": "emulation.fixed",
    "add": "emulation.fixed",
    "cast": "emulation.fixed",
    "from_float": "emulation.fixed",
    "mantissa_dtype": "emulation.fixed",
    "multiply": "emulation.fixed",
    "plus_type": "emulation.fixed",
    "product_type": "emulation.fixed",
    "to_float": "emulation.fixed",
    "ActivationLayer": "emulation.hls_project",
    "DenseLayer": "emulation.hls_project",
    "HLSProject": "emulation.hls_project",
    "Port": "emulation.hls_project",
    "load_hls_project": "emulation.hls_project",
    "resolve_size": "emulation.hls_text",
    "EmulationResult": "emulation.network",
    "dense_latency": "emulation.network",
    "emulate_project": "emulation.network",
    "linear": "emulation.network",
    "relu": "emulation.network",
    "run_layers": "emulation.network",
    "FirmwareSpec": "emulation.spec",
    "SpecError": "emulation.spec",
    "load_spec": "emulation.spec",
    "load_weights": "emulation.spec",
    "TriggerEmulator": "emulation.trigger",
    "TriggerOutputs": "emulation.trigger",
    "emulate_trigger": "emulation.trigger",
    "input_mantissas": "emulation.trigger",
    "place_thresholds": "emulation.trigger",
    "score_mantissas": "emulation.trigger",
    "threshold_mantissas": "emulation.trigger",
    "emulate_plain": "emulation.workflow",
    "emulate_trigger_files": "emulation.workflow",
    "load_inputs": "emulation.workflow",
    "overflow_table": "emulation.workflow",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
