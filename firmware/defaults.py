"""Default firmware settings, kept apart so the CLI can show them without loading hls4ml."""

from __future__ import annotations

BACKENDS = ("Vitis", "Vivado")
DEFAULT_PART = "xcvu13p-flga2577-2-e"
# L1 goal for this algorithm
DEFAULT_LATENCY_BUDGET_NS = 50.0
DEFAULT_BACKEND = "Vitis"
DEFAULT_CLOCK_PERIOD_NS = 5.0
# how hls4ml implements the dense layers: da4ml's shift-and-add logic (what the headline cost
# estimate describes) or hls4ml's Latency strategy (products and adder trees Vitis schedules)
STRATEGIES = ("distributed_arithmetic", "latency")
DEFAULT_STRATEGY = "distributed_arithmetic"
# events C-simulated and compared with the emulator (plus edge-value events)
DEFAULT_CSIM_EVENTS = 10_000
