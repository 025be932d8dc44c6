"""Default firmware settings, kept apart so the CLI can show them without loading hls4ml."""

from __future__ import annotations

BACKENDS = ("Vitis", "Vivado")
DEFAULT_PART = "xcvu13p-flga2577-2-e"
# L1 goal for this algorithm
DEFAULT_LATENCY_BUDGET_NS = 50.0
DEFAULT_BACKEND = "Vitis"
DEFAULT_CLOCK_PERIOD_NS = 5.0
# events C-simulated and compared with the emulator (plus edge-value events)
DEFAULT_CSIM_EVENTS = 10_000
