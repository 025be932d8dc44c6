"""Hardware cost of the default firmware model without vendor tools.

Traces the whole trigger (preprocessing, both ``PRESETS["firmware"]`` autoencoders (57-16-4-16-57) at the default
QuantConfig, scores, thresholds, ABCD and trigger bits) with da4ml, pipelines it for the clock,
checks the RTL with Verilator against the integer emulator (``emulation``) and synthesises it with Yosys.
Prints the cost table and the ratio da4ml estimate / Yosys mapped cells (the baseline,
measured in the same run). Weights are random on the spec's grids (cost depends on the
weights' digit counts; trained weights are usually sparser, so cheaper).

    python benchmarks/bench_firmware.py [--clock 5.0] [--events 2000] [--no-yosys]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from emulation.events import edge_words
from firmware.budget import check_budget
from firmware.cost import estimate
from firmware.example import default_model, toy_words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clock", type=float, default=5.0, help="clock period in ns")
    parser.add_argument(
        "--events", type=int, default=2000, help="events for the RTL bit-exactness check"
    )
    parser.add_argument("--no-yosys", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    spec, weights = default_model()
    rng = np.random.default_rng(1)
    words = np.concatenate(
        [toy_words(args.events, 2), edge_words(spec, rng, max(4, args.events // 4))]
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_firmware_"))
    t0 = time.perf_counter()
    report = estimate(
        spec, weights, args.clock, workdir, check_words=words, use_yosys=not args.no_yosys
    )
    seconds = time.perf_counter() - t0
    print(report.table().to_string())
    for note in report.notes:
        print("note:", note)
    if report.rtl_mismatches is not None:
        print(
            f"RTL (Verilator) vs integer emulator: {report.rtl_mismatches} mismatches in {report.rtl_events} events"
        )
    luts = [
        (f.source, f.value) for f in report.figures if f.metric == "luts" and f.value is not None
    ]
    da4ml_luts = next(v for s, v in luts if s.startswith("da4ml"))
    yosys = [v for s, v in luts if s.startswith("yosys")]
    if yosys:
        print(f"LUT ratio da4ml estimate / Yosys mapped: {da4ml_luts / yosys[0]:.2f}")
    verdict = check_budget(report, latency_budget_ns=50.0, part="xcvu13p")
    print(verdict.summary())
    print(f"estimate took {seconds:.1f} s (workdir {workdir})")


if __name__ == "__main__":
    main()
