"""Latency margin of the default trigger and of other choices, from da4ml's adder depth.

For the default firmware model (``firmware.example.default_model``: PRESETS["firmware"]
57-16-4-16-57 twice, ``QuantConfig()``, random on-grid weights), the previous default
(57-32-16-4-16-32-57, 55 ns) and other architectures, score-feature counts and weight widths,
traces the whole trigger with da4ml (minimal-depth constant-matrix solutions,
``firmware.trace.SOLVER_OPTIONS``) and prints the adder levels, the pipeline stages at the clock
(``firmware.cost.adders_per_cycle`` levels per stage: da4ml's own default of 5 levels per 5 ns,
an uncalibrated assumption) and the latency, against the 40 ns margin target and the 50 ns slot.
These figures describe da4ml's distributed-arithmetic RTL; the hls4ml Latency project's own
count (``firmware.latency_project``) is printed beside them for each architecture. It also counts
the levels that rounding (``AP_RND_CONV``: one adder per cast) and saturation (one multiplexer
per bound) add to the default, by tracing the same network with those casts made
truncating/wrapping (not a design: a measure). Writes ``benchmarks/results/firmware_margin.json``.

    python benchmarks/bench_firmware_margin.py [--clock 5.0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware import trace
from firmware.cost import da4ml_latency
from firmware.example import default_model
from firmware.latency_project import trigger_cost
from offline.ad.model import AEConfig
from quantize.precision import QuantConfig

RESULT = Path(__file__).resolve().parent / "results" / "firmware_margin.json"
TARGET_NS, SLOT_NS = 40.0, 50.0

WIDE = AEConfig(hidden=(32, 16), latent=4, bias=True)  # the default until the 40 ns margin
CHOICES: dict[str, dict[str, Any]] = {
    "default (57-16-4, 4-bit weights, score over 57)": {},
    "default, score over 16 features": {"score_outputs": tuple(range(16))},
    "57-32-4 autoencoders": {"ae_config": AEConfig(hidden=(32,), latent=4, bias=True)},
    "57-16-8 autoencoders": {"ae_config": AEConfig(hidden=(16,), latent=8, bias=True)},
    "57-32-16-4 autoencoders (previous default)": {"ae_config": WIDE},
    "57-32-16-4, score over 16 features": {"ae_config": WIDE, "score_outputs": tuple(range(16))},
    "57-32-16-4, 3-bit weights": {"ae_config": WIDE, "quant_config": QuantConfig().uniform(3, 8)},
}


def spec_widths(spec) -> tuple[int, ...]:
    layers = spec.autoencoders[0].layers
    return (layers[0].n_in, *(d.n_out for d in layers))


def _without(rounding: bool, saturation: bool):
    original = trace._cast_var

    def cast_var(v, t):
        if rounding and t.rounding == "AP_RND_CONV":
            t = dataclasses.replace(t, rounding="AP_TRN")
        if saturation and t.overflow.startswith("AP_SAT"):
            t = dataclasses.replace(t, overflow="AP_WRAP")
        return original(v, t)

    return original, cast_var


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clock", type=float, default=5.0, help="clock period in ns")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()

    rows = []
    for name, kwargs in CHOICES.items():
        spec, weights = default_model(**kwargs)
        lat = da4ml_latency(spec, weights, args.clock)
        hls = trigger_cost(spec, weights, args.clock)
        rows.append({"choice": name, "widths": list(spec_widths(spec)), "adder_levels": lat.adder_levels,
                     "cycles": lat.cycles, "latency_ns": lat.latency_ns, "luts": lat.luts,
                     "meets_40ns": lat.latency_ns <= TARGET_NS,
                     "hls4ml_latency_model": {"cycles": hls.latency_cycles,
                                              "latency_ns": hls.latency_cycles * args.clock,
                                              "luts": hls.luts, "dsps": hls.dsps}})  # fmt: skip
        print(f"{name:45s} {lat.adder_levels:4.0f} levels {lat.cycles:3d} cycles {lat.latency_ns:5.0f} ns "
              f"{lat.luts:8.0f} LUTs  {'meets' if lat.latency_ns <= TARGET_NS else 'misses'} {TARGET_NS:g} ns"
              f"  (hls4ml Latency model: {hls.latency_cycles} cycles)")  # fmt: skip
    spec, weights = default_model()
    parts = {}
    for label, flags in (
        ("without rounding adders", (True, False)),
        ("without rounding or saturation", (True, True)),
    ):
        original, patched = _without(*flags)
        trace._cast_var = patched
        try:
            parts[label] = da4ml_latency(spec, weights, args.clock).adder_levels
        finally:
            trace._cast_var = original
        print(
            f"default {label:40s} {parts[label]:4.0f} levels (measure only; not the trigger's arithmetic)"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"clock_period_ns": args.clock, "levels_per_cycle_assumed": 5, "target_ns": TARGET_NS,
                                       "slot_ns": SLOT_NS,
                                       "implementation": "da4ml distributed-arithmetic RTL (adder levels); "
                                                         "hls4ml_latency_model: firmware.latency_project",
                                       "choices": rows, "default_levels_measures": parts},
                                      indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
